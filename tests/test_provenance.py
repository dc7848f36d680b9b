"""What a model was trained on (its provenance): read from checkpoints, shown by `automod info` and the image commands,
recorded at import; the warning when inputs look unlike that data (both directions); and face alignment by default
for models trained on aligned faces, with a stand-in for dlib's detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import random_h5, tiny_model

from automod_cli import authors, ops, pretrained
from automod_cli import provenance as recorded
from automod_cli.checkpoint import read_meta, save_model
from automod_cli.cli import main
from automod_cli.ops import provenance
from data_prep import align
from data_prep.builtin import generate
from data_prep.hdf5 import H5Writer, pyramid
from data_prep.images import NO_FACE, SkipImage

R = 32
BUILTIN_RUN = {"train_config": {"preset": "builtin", "data": None}}
FFHQ_RUN = {"train_config": {"preset": "ffhq", "data": "data/ffhq-train-256.h5"}}


def photos() -> list[np.ndarray]:
    """Photographs shipped with scikit-image (no download): a portrait, a cup, a cat, a rocket launch."""
    data = pytest.importorskip("skimage.data")
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]


def noise_picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (80, 80, 3), dtype=np.uint8)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A built-in model, an FFHQ-trained one, one without a record, built-in pictures in pics/ and photos in photos/."""
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "builtin.safetensors", tiny_model(), BUILTIN_RUN)
    save_model(tmp_path / "faces.safetensors", tiny_model(), FFHQ_RUN)
    save_model(tmp_path / "plain.safetensors", tiny_model())
    (tmp_path / "pics").mkdir()
    for i, picture in enumerate(generate(4, seed=3)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / "pics" / f"{i}.png")
    (tmp_path / "photos").mkdir()
    for i, picture in enumerate(photos()):
        Image.fromarray(picture).save(tmp_path / "photos" / f"{i}.jpg")
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


# --- provenance from checkpoint metadata -------------------------------------------------------------------------


def test_provenance_is_read_from_the_training_config():
    builtin = recorded.from_meta(BUILTIN_RUN, 32)
    assert builtin.dataset == "builtin" and not builtin.aligned_faces and builtin.data_file is None
    assert "built-in shapes" in builtin.describe() and "32²" in builtin.describe()
    ffhq = recorded.from_meta(FFHQ_RUN, 256)
    assert ffhq.dataset == "ffhq" and ffhq.aligned_faces and ffhq.data_file == "data/ffhq-train-256.h5"
    celeba = recorded.from_meta({"train_config": {"preset": "celebahq", "data": "c.h5"}}, 128)
    assert celeba.aligned_faces
    bedrooms = recorded.from_meta({"train_config": {"preset": "lsun-bedroom", "data": "b.h5"}}, 256)
    assert bedrooms.dataset == "lsun-bedroom" and not bedrooms.aligned_faces
    unknown = recorded.from_meta({"model_config": {}}, 32)
    assert not unknown.known and not unknown.aligned_faces and "not recorded" in unknown.describe()


def test_a_custom_data_file_says_what_it_holds_and_how_faces_were_framed(tmp_path):
    loose = random_h5(tmp_path / "loose.h5", 2, "train", 0)
    custom = recorded.from_meta({"train_config": {"preset": "custom", "data": str(loose)}}, 32)
    assert custom.dataset == "test" and custom.alignment == "none" and not custom.aligned_faces

    record = {
        "source": "folder",
        "source_path": "me/",
        "split": "train",
        "alignment": "ffhq procedure on dlib 68 landmarks of the largest face",
    }
    writer = H5Writer(tmp_path / "faces.h5", 32, record, "faces")
    writer.add(pyramid(noise_picture(0)[:32, :32]))
    aligned = recorded.from_meta({"train_config": {"preset": "custom", "data": str(writer.commit())}}, 32)
    assert aligned.dataset == "folder" and aligned.aligned_faces and "aligned at prep" in aligned.describe()
    moved = recorded.from_meta({"train_config": {"preset": "custom", "data": str(tmp_path / "gone.h5")}}, 32)
    assert moved.dataset == "custom" and moved.data_file.endswith("gone.h5")


def test_imported_models_record_their_dataset(tmp_path, monkeypatch):
    named = {
        "source": {"format": "authors", "file": "34740000_state.pth"}
    }  # ffhq256, converted before the field
    assert recorded.from_meta(named, 256).dataset == "ffhq" and recorded.from_meta(named, 256).aligned_faces
    bedrooms = {"source": {"format": "authors", "file": "27574284_state.pth"}}
    assert recorded.from_meta(bedrooms, 256).dataset == "lsun-bedroom"
    other = {"source": {"format": "authors", "file": "mine.pth"}}
    assert not recorded.from_meta(other, 64).known
    given = {"source": {"format": "authors", "file": "mine.pth", "dataset": "celebahq"}}
    assert recorded.from_meta(given, 64).dataset == "celebahq"
    fixture = Path(__file__).parent / "data" / "authors" / "official-small" / "checkpoint.pth"
    named_copy = tmp_path / "31877148_state.pth"  # celebahq256's file name
    named_copy.write_bytes(fixture.read_bytes())
    assert main(["import", str(named_copy), "--out", str(tmp_path / "a.safetensors")]) == 0
    assert read_meta(tmp_path / "a.safetensors")["source"]["dataset"] == "celebahq"
    assert main(["import", str(fixture), "--out", str(tmp_path / "b.safetensors"), "--dataset", "ffhq"]) == 0
    assert read_meta(tmp_path / "b.safetensors")["source"]["dataset"] == "ffhq"
    assert (
        "dataset" not in read_meta(authors.import_checkpoint(fixture, tmp_path / "c.safetensors"))["source"]
    )
    # a named model converted from the authors' file in torch's cache records its dataset
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("AUTOMOD_HOME", str(tmp_path / "automod"))
    monkeypatch.setenv("AUTOMOD_OFFLINE", "1")
    cached = pretrained.authors_path("lsunbedrooms256")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(fixture.read_bytes())
    assert read_meta(pretrained.resolve("lsunbedrooms256"))["source"]["dataset"] == "lsun-bedroom"


def test_info_says_what_the_model_was_trained_on(work, capsys):
    code, out, _ = run(capsys, "info", "builtin.safetensors", "--json")
    trained_on = json.loads(out)["trained_on"]
    assert code == 0 and trained_on["dataset"] == "builtin" and trained_on["aligned_faces"] is False
    code, out, _ = run(capsys, "info", "faces.safetensors")
    assert code == 0 and "trained on" in out and "FFHQ" in out and "ffhq-train-256.h5" in out
    code, out, _ = run(capsys, "info", "plain.safetensors", "--json")
    assert code == 0 and json.loads(out)["trained_on"]["dataset"] is None


# --- inputs unlike the training data -----------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_builtin_pictures_pass_and_photos_do_not(resolution, tmp_path):
    pictures = generate(24, seed=7)[0]
    for i, picture in enumerate(pictures):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"b{i}.png")
    builtin = ops.load_images(sorted(tmp_path.glob("b*.png")), resolution)
    assert provenance.looks_builtin(builtin).all()
    for i, picture in enumerate(photos() + [noise_picture(1)]):
        Image.fromarray(picture).save(tmp_path / f"p{i}.png")
    others = ops.load_images(sorted(tmp_path.glob("p*.png")), resolution)
    assert not provenance.looks_builtin(others).any()


def test_the_statistic_is_what_the_documentation_says():
    """Flat sky over flat ground, with a shape: passes; swap sky and ground (the sky darker), or scribble over most
    of the picture, and it does not."""
    picture = torch.zeros(1, 3, 32, 32)
    picture[:, :, :16] = 0.8  # sky: 0.9 on 0..1
    picture[:, :, 16:] = -0.6  # ground: 0.2
    picture[:, 0, 12:20, 12:20] = 1.0  # a red square
    share, step = provenance.builtin_share(picture)
    assert share.item() == pytest.approx(1 - 64 / 1024) and step.item() == pytest.approx(0.7)
    assert provenance.looks_builtin(picture).item()
    assert not provenance.looks_builtin(picture.flip(-2)).item()
    scribbled = picture.clone()
    scribbled[:, :, 2:30] = torch.rand(1, 3, 28, 32) * 2 - 1
    assert not provenance.looks_builtin(scribbled).item()


def test_a_builtin_model_given_photos_says_so_once(work, capsys):
    code, out, err = run(capsys, "reconstruct", "pics", "--model", "builtin.safetensors")
    assert code == 0 and "trained on: the built-in shapes dataset" in out and warnings(err) == []
    code, out, err = run(
        capsys, "reconstruct", "photos", "pics/0.png", "--model", "builtin.safetensors", "-o", "p.png"
    )
    assert code == 0 and Path("p.png").is_file()
    assert len(warnings(err)) == 1 and "4 of 5 inputs do not look like the built-in shapes" in err
    code, _, err = run(capsys, "mix", "photos/0.jpg", "photos/1.jpg", "--model", "builtin.safetensors")
    assert code == 0 and len(warnings(err)) == 1 and "built-in shapes" in err


def test_encode_warns_about_inputs_unlike_the_training_data_counted_over_all_batches(work, capsys):
    code, out, err = run(
        capsys, "encode", "photos", "pics/0.png", "--model", "builtin.safetensors", "--batch", "2"
    )
    assert code == 0 and "trained on: the built-in shapes dataset" in out and Path("codes.npz").is_file()
    assert len(warnings(err)) == 1 and "4 of 5 inputs do not look like the built-in shapes" in err
    code, _, err = run(capsys, "encode", "pics", "--model", "builtin.safetensors", "-o", "pics.npz")
    assert code == 0 and warnings(err) == []


def test_edit_counts_every_input_group_and_warns_once(work, capsys):
    code, _, err = run(
        capsys,
        "edit",
        "pics/0.png",
        "--pos",
        "photos/0.jpg",
        "--pos",
        "pics/1.png",
        "--neg",
        "photos/1.jpg",
        "--neg",
        "pics/2.png",
        "--model",
        "builtin.safetensors",
    )
    assert code == 0 and len(warnings(err)) == 1 and "2 of 5 inputs do not look like" in err, err
    code, _, err = run(capsys, "mix", "--rows", "photos", "--cols", "pics", "--model", "builtin.safetensors")
    assert code == 0 and len(warnings(err)) == 1 and "4 of 8 inputs do not look like" in err, err


def test_a_photo_model_given_builtin_pictures_says_so(work, capsys):
    code, _, err = run(capsys, "reconstruct", "pics", "--model", "faces.safetensors", "--no-align")
    assert code == 0 and len(warnings(err)) == 1 and "4 of 4 inputs look like the built-in shapes" in err
    assert "FFHQ" in err
    code, _, err = run(
        capsys, "reconstruct", "photos", "--model", "faces.safetensors", "--no-align", "-o", "f.png"
    )
    assert code == 0 and warnings(err) == []


def test_a_model_without_a_record_is_not_checked(work, capsys):
    code, out, err = run(capsys, "reconstruct", "photos", "--model", "plain.safetensors")
    assert code == 0 and "trained on: not recorded" in out and err == ""


# --- alignment by default for models trained on aligned faces -----------------------------------------------------


def face_landmarks(width: int, height: int) -> np.ndarray:
    """68 points of an upright face in the middle of a width × height photo (eyes and mouth are what the quad uses)."""
    points = np.tile([[width / 2, height / 2]], (68, 1))
    eye_y, eye_gap = height * 0.42, width * 0.16
    points[36:42] = [width / 2 - eye_gap, eye_y]
    points[42:48] = [width / 2 + eye_gap, eye_y]
    points[48], points[54] = (
        [width / 2 - eye_gap * 0.7, height * 0.62],
        [width / 2 + eye_gap * 0.7, height * 0.62],
    )
    return points


@pytest.fixture
def detector(monkeypatch) -> list[str]:
    """dlib's detector replaced: files whose name starts with 'face' have a face in the middle, others none. Returns
    the log of pictures it was asked about (by width)."""
    asked: list[str] = []

    def detect(image: Image.Image, face: int = 0):
        asked.append(f"{image.width}")
        if image.width == 200:  # the face photos are 200 pixels wide, the others not
            return face_landmarks(image.width, image.height), 1
        raise SkipImage(NO_FACE)

    monkeypatch.setattr(align, "detector_available", lambda: True)
    monkeypatch.setattr(align, "require_dlib", lambda: None)
    monkeypatch.setattr(align, "detect_landmarks", detect)
    return asked


def face_files(folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(5)
    paths = []
    for i in range(2):
        picture = np.full((240, 200, 3), 40, np.uint8)
        picture[60:180, 50:150] = rng.integers(120, 255, 3)  # a "face" in the middle, on a dark background
        path = folder / f"face{i}.png"
        Image.fromarray(picture).save(path)
        paths.append(path)
    return paths


def test_a_face_model_aligns_by_default_and_goes_on_without_a_face(work, capsys, detector):
    faces = face_files(Path("faces"))
    Image.fromarray(noise_picture(2)).save("faces/scenery.png")
    code, out, err = run(capsys, "reconstruct", "faces", "--model", "faces.safetensors")
    assert code == 0 and "aligning faces as in the training data" in out and "FFHQ" in out
    assert [line for line in warnings(err) if "no face" in line] == [
        "warning: no face found in 'faces/scenery.png': used it unaligned (centre crop)."
    ]
    assert len(detector) == 3
    aligned = ops.load_images(faces, R, align=True)
    plain = ops.load_images(faces, R)
    assert not torch.equal(aligned, plain)
    written = np.asarray(Image.open("reconstructions.png").convert("RGB"))
    cell = written[written.shape[0] - 3 * R - 2 :][
        : 3 * R : 3, 2 : 2 + 3 * R : 3
    ]  # the first input, shrunk back
    assert np.array_equal(cell, ((aligned[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy())
    rows = Path("reconstructions.png.errors.csv").read_text().splitlines()
    assert len(rows) == 4  # the header and all three files, the faceless one included


def test_no_align_skips_the_detector_and_align_keeps_its_old_meaning(work, capsys, detector):
    face_files(Path("faces"))
    Image.fromarray(noise_picture(2)).save("faces/scenery.png")
    code, out, err = run(capsys, "reconstruct", "faces", "--model", "faces.safetensors", "--no-align")
    assert code == 0 and detector == [] and "aligning" not in out and "no face" not in err
    # a model of other data is not aligned unless asked
    assert run(capsys, "reconstruct", "faces", "--model", "builtin.safetensors", "-o", "b.png")[0] == 0
    assert detector == []
    # --align as before: the faceless file is skipped with its reason, whatever the model
    code, _, err = run(
        capsys, "reconstruct", "faces", "--model", "plain.safetensors", "--align", "-o", "a.png"
    )
    assert code == 0 and len(detector) == 3 and "skipped 'faces/scenery.png'" in err
    assert "'faces/scenery.png' (no face found to align; --no-align uses it as it is)" in err  # said once
    assert err.count("no face") == 1, err
    assert len(Path("a.png.errors.csv").read_text().splitlines()) == 3


def test_without_the_align_extra_a_face_model_says_once_how_to_install_it(work, capsys, monkeypatch):
    monkeypatch.setattr(align, "detector_available", lambda: False)
    code, _, err = run(capsys, "mix", "photos/0.jpg", "photos/1.jpg", "--model", "faces.safetensors")
    assert code == 0 and Path("mix.png").is_file()
    hints = [line for line in warnings(err) if "automod[align]" in line]
    assert len(hints) == 1 and "unaligned" in hints[0]
    code, _, err = run(capsys, "reconstruct", "photos", "--model", "faces.safetensors", "--no-align")
    assert code == 0 and "automod[align]" not in err
