"""FFHQ-style alignment: the quad from landmarks, where the eyes and mouth land, and dlib detection."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.errors import AutomodError
from automod_cli.images import to_uint8
from automod_cli.ops.inputs import Align, Faces
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


@pytest.mark.parametrize(
    "scale,angle,shift", [(1.0, 0.0, (0, 0)), (2.5, 0.6, (300, 200)), (0.7, -2.8, (-40, 90))]
)
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
    rotated, _ = align.detect_and_align(
        astronaut.rotate(20, resample=Image.BICUBIC, expand=True), 64, min_face=32
    )
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


class Box:
    """A dlib rectangle stand-in."""

    def __init__(self, left: int, top: int, right: int, bottom: int):
        self.box = (left, top, right, bottom)

    def left(self):
        return self.box[0]  # noqa: E704

    def top(self):
        return self.box[1]  # noqa: E704

    def right(self):
        return self.box[2]  # noqa: E704

    def bottom(self):
        return self.box[3]  # noqa: E704

    def width(self):
        return self.box[2] - self.box[0]  # noqa: E704

    def height(self):
        return self.box[3] - self.box[1]  # noqa: E704


def fake_dlib(monkeypatch, by_upsample: dict[int, list[tuple[Box, float]]]) -> list[int]:
    """dlib's detector and landmark predictor replaced: the detector finds `by_upsample[n]` at upsample n, and the
    predictor puts a face's 68 points at its box's centre. Returns the upsample levels asked for."""
    asked = []

    class Detector:
        def run(self, pixels, upsample, threshold):
            asked.append(upsample)
            found = by_upsample.get(upsample, [])
            return [box for box, _ in found], [score for _, score in found], [0] * len(found)

    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    def predictor(pixels, box):
        centre = ((box.left() + box.right()) // 2, (box.top() + box.bottom()) // 2)
        return type("Shape", (), {"part": lambda self, i: Point(*centre)})()

    monkeypatch.setattr(align, "_dlib_models", lambda: (Detector(), predictor))
    return asked


def test_a_face_found_only_when_upsampled_is_still_the_largest(monkeypatch):
    """The main face of a photo may be found only at upsample 1; a smaller one found at upsample 0 must not win."""
    small, large = Box(10, 10, 50, 50), Box(100, 20, 220, 140)
    asked = fake_dlib(monkeypatch, {0: [(small, 1.2)], 1: [(Box(11, 10, 51, 50), 1.0), (large, 0.9)]})
    landmarks, count = align.detect_landmarks(Image.new("RGB", (300, 200)))
    assert asked == [0, 1] and count == 2  # both upsamplings; the small face found twice counts once
    assert tuple(landmarks[0]) == (160, 80)  # the large face's centre
    landmarks, _ = align.detect_landmarks(Image.new("RGB", (300, 200)), face=1)
    assert tuple(landmarks[0]) == (30, 30)
    with pytest.raises(AutomodError, match=r"--face 2: 2 faces found, numbered from 0 \(the largest\) to 1"):
        align.detect_landmarks(Image.new("RGB", (300, 200)), face=2)


def test_weak_detections_count_only_without_a_confident_one(monkeypatch):
    weak_large, confident_small = Box(0, 0, 200, 200), Box(10, 10, 60, 60)
    fake_dlib(monkeypatch, {0: [(weak_large, 0.2)], 1: [(confident_small, 0.9)]})
    landmarks, count = align.detect_landmarks(Image.new("RGB", (300, 300)))
    assert count == 1 and tuple(landmarks[0]) == (35, 35)
    assert align.similar_faces([Box(0, 0, 100, 100), Box(0, 0, 80, 80), Box(0, 0, 30, 30)]) == 2


def two_faces(astronaut) -> Image.Image:
    collage = Image.new("RGB", (512 + 410, 512), (90, 90, 90))
    collage.paste(astronaut, (0, 0))
    collage.paste(astronaut.resize((410, 410), Image.LANCZOS), (512, 50))
    return collage


def test_face_picks_the_second_face_of_a_real_photo(astronaut):
    collage = two_faces(astronaut)
    second, note = align.detect_and_align(collage, 32, min_face=32, face=1)
    assert note == "2 faces found; aligned face 1 (0 is the largest)"
    alone, _ = align.detect_and_align(astronaut.resize((410, 410), Image.LANCZOS), 32, min_face=32)
    largest, _ = align.detect_and_align(collage, 32, min_face=32)
    close = np.abs(np.asarray(second, np.float64) - np.asarray(alone, np.float64)).mean()
    assert close < np.abs(np.asarray(second, np.float64) - np.asarray(largest, np.float64)).mean()


def test_the_image_commands_take_face_and_say_how_many_were_found(astronaut, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "m.safetensors", tiny_model())
    two_faces(astronaut).save("two.png")
    assert main(["reconstruct", "two.png", "--align", "--model", "m.safetensors", "-o", "r0.png"]) == 0
    assert "2 faces found; aligned the largest (--face N picks face N" in capsys.readouterr().out
    assert (
        main(["reconstruct", "two.png", "--face", "two.png=1", "--model", "m.safetensors", "-o", "r1.png"])
        == 0
    )
    assert "aligned face 1" in capsys.readouterr().out
    second = ops.load_images([tmp_path / "two.png"], 32, align=Align(Faces(1)))
    written = np.asarray(Image.open("r1.png").convert("RGB"))
    cell = written[written.shape[0] - 3 * 32 - 2 :][
        : 3 * 32 : 3, 2 : 2 + 3 * 32 : 3
    ]  # the input, shrunk back from ×3
    assert (cell == to_uint8(second[0])).all()
    assert main(["reconstruct", "two.png", "--face", "3", "--model", "m.safetensors", "-o", "r3.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--face 3: 2 faces found" in err and "two.png" in err
    assert main(["mix", "two.png", "two.png", "--no-align", "--face", "1", "--model", "m.safetensors"]) == 2
    assert "--no-align" in capsys.readouterr().err


def test_encode_and_project_take_face_too(astronaut, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = tiny_model()
    save_model(tmp_path / "m.safetensors", net)
    two_faces(astronaut).save("two.png")
    assert main(["encode", "two.png", "--face", "two.png=1", "--model", "m.safetensors", "-o", "c.npz"]) == 0
    assert "aligned face 1" in capsys.readouterr().out
    second = ops.load_images([tmp_path / "two.png"], 32, align=Align(Faces(1)))
    largest = ops.load_images([tmp_path / "two.png"], 32, align=Align(Faces(0)))
    stored = torch.as_tensor(np.load("c.npz")["codes"])
    with torch.no_grad():
        want, other = net.encode(second), net.encode(largest)
    assert torch.allclose(stored, want, atol=1e-5) and not torch.allclose(stored, other, atol=1e-3)
    args = [
        "project",
        "two.png",
        "--model",
        "m.safetensors",
        "--steps",
        "1",
        "--distance",
        "mse",
        "-o",
        "p.png",
    ]
    assert main([*args, "--face", "1"]) == 0
    assert "aligned face 1" in capsys.readouterr().out
    assert main([*args, "--face", "3", "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--face 3: 2 faces found" in err
    assert (
        main(["encode", "two.png", "--no-align", "--face", "1", "--model", "m.safetensors", "-o", "d.npz"])
        == 2
    )
    assert "--no-align" in capsys.readouterr().err and not (tmp_path / "d.npz").exists()
