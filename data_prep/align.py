"""FFHQ-style face alignment from 68 landmarks, and dlib face detection to find those landmarks.

The alignment follows the procedure the FFHQ authors published with their dataset
(NVlabs/ffhq-dataset, used by Supp. App. A for FFHQ): an oriented square ("quad") is built from the
eye and mouth landmarks, the photo is pre-shrunk when the face is much larger than the output,
cropped around the quad, reflect-padded with a blurred border where the quad leaves the photo,
and resampled so the quad fills the output.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from automod_cli.errors import AutomodError
from data_prep.images import NO_FACE, TOO_SMALL, SkipImage

# Indices into the 68-point iBUG/dlib layout.
EYE_LEFT = slice(36, 42)  # the eye on the image's left
EYE_RIGHT = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54

# Constants of the FFHQ alignment (NVlabs/ffhq-dataset).
QUAD_EYE_SCALE = 2.0  # half-width of the quad >= 2 x eye-to-eye distance
QUAD_MOUTH_SCALE = 1.8  # ... and >= 1.8 x eye-to-mouth distance
CENTER_TOWARDS_MOUTH = 0.1  # quad centre: eye midpoint moved 0.1 of the way to the mouth
BORDER_FRACTION = 0.1  # crop margin around the quad, fraction of the quad size
PAD_FRACTION = 0.3  # reflect padding when the quad leaves the photo, fraction of the quad size
BLUR_FRACTION = 0.02  # Gaussian sigma of the padded border, fraction of the quad size
SUPERSAMPLE = 4  # the quad is resampled at 4x the output size, then reduced (FFHQ: 4096 -> 1024)

# HOG detector score below which a detection counts only if nothing scores higher: on scikit-image's
# astronaut (alone and in a collage) the faces score 0.85-1.6, the badge and patch false positives < 0.25.
CONFIDENT_SCORE = 0.5
SAME_FACE = 0.5  # boxes found at upsample 0 and 1 that overlap by more than this (IoU) are one face
SIMILAR_SIZE = (
    0.5  # faces of at least half the largest's area are ones a person may mean: the page lets them pick
)

ALIGN_EXTRA = "pip install 'automod[align]'"


def _perpendicular(v: np.ndarray) -> np.ndarray:
    """v rotated by 90 degrees in image coordinates: (x, y) -> (-y, x)."""
    return np.array([-v[1], v[0]])


def face_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The oriented square the aligned face fills: corners (top-left, bottom-left, bottom-right,
    top-right) as a (4, 2) array of x, y, and its side length in pixels."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) landmarks, got an array of shape {points.shape}")
    eye_left, eye_right = points[EYE_LEFT].mean(0), points[EYE_RIGHT].mean(0)
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (points[MOUTH_LEFT] + points[MOUTH_RIGHT]) / 2 - eye_mid
    # x axis: the eye line, tilted by the mouth direction turned sideways (robust to head roll).
    x = eye_to_eye - _perpendicular(eye_to_mouth)
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * QUAD_EYE_SCALE, np.hypot(*eye_to_mouth) * QUAD_MOUTH_SCALE)
    y = _perpendicular(x)
    center = eye_mid + eye_to_mouth * CENTER_TOWARDS_MOUTH
    quad = np.stack([center - x - y, center - x + y, center + x + y, center + x - y])
    return quad, float(np.hypot(*x) * 2)


def _bounds(quad: np.ndarray) -> tuple[int, int, int, int]:
    """Integer bounding box (left, top, right, bottom) of the quad."""
    return (
        int(np.floor(quad[:, 0].min())),
        int(np.floor(quad[:, 1].min())),
        int(np.ceil(quad[:, 0].max())),
        int(np.ceil(quad[:, 1].max())),
    )


def _pad_with_blurred_reflection(
    image: Image.Image, pad: tuple[int, int, int, int], qsize: float
) -> Image.Image:
    """Reflect-pad (left, top, right, bottom); blend the padding towards a blurred copy and then
    the median colour, more the farther from the photo, so mirrored content does not look real."""
    left, top, right, bottom = pad
    pixels = np.pad(
        np.asarray(image, dtype=np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect"
    )
    height, width = pixels.shape[:2]
    ys, xs = np.ogrid[:height, :width]
    inside_x = np.minimum(xs / left, (width - 1 - xs) / right).astype(np.float32)
    inside_y = np.minimum(ys / top, (height - 1 - ys) / bottom).astype(np.float32)
    mask = np.maximum(1.0 - inside_x, 1.0 - inside_y)[..., None]  # 0 inside the photo, up to 1 at the edge
    sigma = qsize * BLUR_FRACTION
    pixels += (gaussian_filter(pixels, [sigma, sigma, 0]) - pixels) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(mask, 0.0, 1.0)
    return Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), "RGB")


def align_face(image: Image.Image, landmarks: np.ndarray, size: int) -> Image.Image:
    """Crop and rotate an RGB photo so the face given by 68 landmarks fills a size x size square."""
    quad, qsize = face_quad(landmarks)
    # Shrink: pre-reduce photos where the face is over twice the output size.
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        width, height = image.size
        image = image.resize((round(width / shrink), round(height / shrink)), Image.Resampling.LANCZOS)
        quad, qsize = quad / shrink, qsize / shrink
    # Crop: the quad's bounding box plus a border, kept inside the photo.
    border = max(int(round(qsize * BORDER_FRACTION)), 3)
    left, top, right, bottom = _bounds(quad)
    width, height = image.size
    crop = (
        max(left - border, 0),
        max(top - border, 0),
        min(right + border, width),
        min(bottom + border, height),
    )
    if crop[2] - crop[0] < width or crop[3] - crop[1] < height:
        image = image.crop(crop)
        quad = quad - np.array(crop[:2])
    # Pad: where the quad (plus border) leaves the photo, extend it by blurred reflection.
    left, top, right, bottom = _bounds(quad)
    width, height = image.size
    pad = (
        max(border - left, 0),
        max(border - top, 0),
        max(right - width + border, 0),
        max(bottom - height + border, 0),
    )
    if max(pad) > border - 4:
        pad = tuple(max(p, int(round(qsize * PAD_FRACTION))) for p in pad)
        image = _pad_with_blurred_reflection(image, pad, qsize)
        quad = quad + np.array(pad[:2])
    # Transform: resample the quad to a supersampled square, then reduce to the output size.
    big = size * SUPERSAMPLE
    image = image.transform(
        (big, big), Image.Transform.QUAD, tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR
    )
    return image.resize((size, size), Image.Resampling.LANCZOS)


def shape_predictor_path() -> Path:
    """The 68-landmark model file shipped by face-recognition-models, found without importing the
    package (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AutomodError(f"Face alignment needs dlib and its landmark model: {ALIGN_EXTRA}.")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "models" / "shape_predictor_68_face_landmarks.dat"
        if candidate.is_file():
            return candidate
    version = importlib.metadata.version("face-recognition-models")
    raise AutomodError(
        f"face-recognition-models {version} lacks shape_predictor_68_face_landmarks.dat; reinstall it: {ALIGN_EXTRA}."
    )


@lru_cache(maxsize=1)
def _dlib_models() -> tuple[object, object]:
    """dlib's HOG face detector and 68-point shape predictor, loaded once per process."""
    try:
        import dlib  # noqa: PLC0415 -- the optional [align] extra
    except ImportError as exc:
        raise AutomodError(f"Face alignment needs dlib: {ALIGN_EXTRA}.") from exc
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(shape_predictor_path()))


def require_dlib() -> None:
    """Fail early, in the calling process, when the [align] extra is missing."""
    _dlib_models()


def detector_available() -> bool:
    """Whether faces can be detected here (the [align] extra: dlib and its landmark model), without failing."""
    try:
        require_dlib()
    except AutomodError:
        return False
    return True


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes (left, top, right, bottom)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - width * height
    return width * height / union


def detect_faces(image: Image.Image) -> list:
    """dlib's face rectangles, largest first. Detects at upsample 0 and 1 (a face the detector finds only on the
    upsampled photo may be the largest) and keeps one detection per face (boxes overlapping by more than SAME_FACE,
    the higher score's). Weak detections count only when there is no confident one."""
    detector, _ = _dlib_models()
    pixels = np.asarray(image, dtype=np.uint8)
    found: list[tuple[object, float]] = []
    for upsample in (0, 1):
        faces, scores, _ = detector.run(pixels, upsample, 0.0)
        for face, score in zip(faces, scores):
            box = (face.left(), face.top(), face.right(), face.bottom())
            same = [
                i
                for i, (f, _) in enumerate(found)
                if _overlap(box, (f.left(), f.top(), f.right(), f.bottom())) > SAME_FACE
            ]
            if not same:
                found.append((face, score))
            elif score > found[same[0]][1]:
                found[same[0]] = (face, score)
    if not found:
        raise SkipImage(NO_FACE)
    confident = [face for face, score in found if score >= CONFIDENT_SCORE]
    faces = confident or [face for face, _ in found]
    return sorted(faces, key=lambda r: r.width() * r.height(), reverse=True)


def similar_faces(faces: list) -> int:
    """How many of `faces` (largest first) are at least SIMILAR_SIZE of the largest's area: the candidates a person
    may mean, among which the page lets them pick."""
    largest = faces[0].width() * faces[0].height()
    return sum(face.width() * face.height() >= SIMILAR_SIZE * largest for face in faces)


def detect_landmarks(image: Image.Image, face: int = 0) -> tuple[np.ndarray, int]:
    """68 landmarks of face number `face` (0: the largest, `detect_faces`), and how many faces were found."""
    _, predictor = _dlib_models()
    faces = detect_faces(image)
    if not 0 <= face < len(faces):
        found = f"{len(faces)} face{'s' if len(faces) != 1 else ''} found"
        raise AutomodError(f"--face {face}: {found}, numbered from 0 (the largest) to {len(faces) - 1}.")
    shape = predictor(np.asarray(image, dtype=np.uint8), faces[face])
    landmarks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
    return landmarks, len(faces)


def detect_and_align(image: Image.Image, size: int, min_face: int, face: int = 0) -> tuple[Image.Image, str]:
    """Align face number `face` (0: the largest) to size x size; the second value notes extra faces (or is '').
    Faces whose quad is below `min_face` pixels are skipped rather than upscaled."""
    landmarks, count = detect_landmarks(image, face)
    _, qsize = face_quad(landmarks)
    if qsize < min_face:
        raise SkipImage(TOO_SMALL, f"face region {qsize:.0f} px, below {min_face}")
    which = "the largest" if face == 0 else f"face {face} (0 is the largest)"
    note = f"{count} faces found; aligned {which}" if count > 1 else ""
    return align_face(image, landmarks, size), note
