"""FFHQ-style alignment: the quad from landmarks, where the eyes and mouth land, and dlib detection."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
from PIL import Image

from automod_cli.errors import AutomodError
from data_prep import align, prep, sources
from data_prep.images import SkipImage

EYE_DISTANCE, MOUTH_DROP, MOUTH_WIDTH = 40.0, 36.0, 30.0  # canonical face: 2 * 40 > 1.8 * 36
HALF = max(2 * EYE_DISTANCE, 1.8 * MOUTH_DROP)  # half side of the FFHQ quad, canonical units
EYES = np.array([[-EYE_DISTANCE / 2, 0.0], [EYE_DISTANCE / 2, 0.0]])
MOUTH = np.array([0.0, MOUTH_DROP])


def canonical_landmarks(seed: int = 0) -> np.ndarray:
    """68 points of an upright face centred on the eye midpoint: eye contours around the two eye
    centres, mouth corners either side of the mouth centre, the other points anywhere."""
    points = np.random.default_rng(seed).uniform(-50, 50, (68, 2))
    ring = 6 * np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], axis=1)
    points[36:42], points[42:48] = EYES[0] + ring, EYES[1] + ring
    points[48], points[54] = MOUTH + [-MOUTH_WIDTH / 2, 0], MOUTH + [MOUTH_WIDTH / 2, 0]
    return points


def similarity(scale: float, angle: float, shift: tuple[float, float]):
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return lambda p: scale * np.asarray(p) @ rotation.T + np.asarray(shift)


@pytest.mark.parametrize("scale,angle,shift", [(1.0, 0.0, (0, 0)), (2.5, 0.6, (300, 200)), (0.7, -2.8, (-40, 90))])
def test_quad_follows_a_similarity_transform_of_the_face(scale, angle, shift):
    transform = similarity(scale, angle, shift)
    quad, qsize = align.face_quad(transform(canonical_landmarks()))
    # Closed form for the canonical face: a square of half side HALF around the eye midpoint moved
    # a tenth of the way to the mouth; corners top-left, bottom-left, bottom-right, top-right.
    centre = np.array([0.0, 0.1 * MOUTH_DROP])
    canonical = centre + HALF * np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
    np.testing.assert_allclose(quad, transform(canonical), atol=1e-9)
    assert qsize == pytest.approx(2 * HALF * scale)


def expected_output_position(point: np.ndarray, size: int) -> np.ndarray:
    """Where a canonical point lands in the aligned size x size output (pixel-edge coordinates)."""
    return size / 2 + (point - np.array([0.0, 0.1 * MOUTH_DROP])) * size / (2 * HALF)


def blob_photo(width: int, height: int, transform, radius: float) -> Image.Image:
    """Grey photo with a red left eye, green right eye and blue mouth at the transformed positions."""
    ys, xs = np.mgrid[:height, :width] + 0.5
    pixels = np.full((height, width, 3), 128, np.uint8)
    for point, color in ((EYES[0], (255, 0, 0)), (EYES[1], (0, 255, 0)), (MOUTH, (0, 0, 255))):
        cx, cy = transform(point)
        pixels[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = color
    return Image.fromarray(pixels)


def blob_centre(image: np.ndarray, channel: int, near: np.ndarray, window: float = 8.0) -> np.ndarray:
    """Centroid of one pure colour (that channel above the others) within a window around `near`."""
    pixels = image.astype(np.float64)
    others = np.delete(pixels, channel, axis=2).max(axis=2)
    weight = np.clip(pixels[..., channel] - others, 0, None)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]] + 0.5
    weight[(xs - near[0]) ** 2 + (ys - near[1]) ** 2 > window**2] = 0
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.mark.parametrize(
    "photo_size,scale,angle,shift",
    [
        ((300, 260), 1.2, 0.4, (150, 130)),  # rotated face inside the photo
        ((200, 200), 1.2, -0.3, (60, 70)),  # quad leaves the photo: reflect padding
        ((1200, 1000), 6.0, 0.2, (600, 500)),  # face far larger than the output: pre-shrink
    ],
)
def test_eyes_and_mouth_land_where_the_ffhq_procedure_puts_them(photo_size, scale, angle, shift):
    size = 64
    transform = similarity(scale, angle, shift)
    photo = blob_photo(*photo_size, transform, radius=8 * scale)
    aligned = np.asarray(align.align_face(photo, transform(canonical_landmarks()), size))
    assert aligned.shape == (size, size, 3)
    for point, channel in ((EYES[0], 0), (EYES[1], 1), (MOUTH, 2)):
        expected = expected_output_position(point, size)
        np.testing.assert_allclose(blob_centre(aligned, channel, expected), expected, atol=0.5)


def test_landmarks_must_be_68_points():
    with pytest.raises(ValueError, match="68"):
        align.face_quad(np.zeros((5, 2)))


def test_missing_align_extra_is_one_clear_error(monkeypatch):
    align._dlib_models.cache_clear()
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    with pytest.raises(AutomodError, match=r"pip install 'automod\[align\]'"):
        align.require_dlib()
    monkeypatch.setattr(align.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AutomodError, match=r"pip install 'automod\[align\]'"):
        align.shape_predictor_path()
    monkeypatch.undo()
    align._dlib_models.cache_clear()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(data.astronaut())


def test_dlib_aligns_a_real_photo_like_ffhq(astronaut):
    aligned, note = align.detect_and_align(astronaut, 128, min_face=64)
    assert note == ""
    # Detect again on the aligned face (enlarged for the detector): its quad is now the whole
    # picture, so the face is upright, centred and sized as the FFHQ procedure intends.
    landmarks, count = align.detect_landmarks(aligned.resize((256, 256), Image.LANCZOS))
    quad, qsize = align.face_quad(landmarks)
    eye_line = landmarks[42:48].mean(0) - landmarks[36:42].mean(0)
    assert count == 1 and abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))) < 3
    assert qsize == pytest.approx(256, rel=0.03)
    np.testing.assert_allclose(quad, [[0, 0], [0, 256], [256, 256], [256, 0]], atol=6)


def test_rotated_photo_aligns_to_the_same_face(astronaut):
    upright, _ = align.detect_and_align(astronaut, 64, min_face=32)
    rotated, _ = align.detect_and_align(astronaut.rotate(20, resample=Image.BICUBIC, expand=True), 64, min_face=32)
    shifted = np.roll(np.asarray(upright, np.float64), 1, axis=1)  # a one-pixel misalignment, for scale
    difference = np.abs(np.asarray(rotated, np.float64) - np.asarray(upright, np.float64)).mean()
    assert difference < 0.6 * np.abs(shifted - np.asarray(upright, np.float64)).mean()


def test_folder_align_reports_extra_faces_and_faceless_photos(astronaut, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    astronaut.save(root / "a_astronaut.png")
    collage = Image.new("RGB", (512 + 410, 512), (90, 90, 90))
    collage.paste(astronaut, (0, 0))
    collage.paste(astronaut.resize((410, 410), Image.LANCZOS), (512, 50))
    collage.save(root / "b_two_faces.png")
    Image.new("RGB", (300, 300), (128, 128, 128)).save(root / "c_wall.png")
    result = prep.prepare(sources.folder(root, align=True), tmp_path / "faces.h5", 32, workers=2)
    assert result.written == 2
    assert result.skipped_by_kind() == {"no face found": ["c_wall.png"]}
    assert result.notes == [("b_two_faces.png", "2 faces found; aligned the largest")]
    single, _ = align.detect_and_align(astronaut, 32, min_face=32)
    with h5py.File(result.output) as file:
        faces = file["levels/32"][:].astype(np.float64)
    reference = np.asarray(single, np.float64).transpose(2, 0, 1)
    assert np.abs(faces[0] - reference).max() == 0
    assert np.abs(faces[1] - reference).mean() < 4  # the larger of the two faces was aligned
    with pytest.raises(SkipImage, match="no face found"):
        align.detect_landmarks(Image.new("RGB", (100, 100)))
