"""`automod project` as the other image commands: the pixel MSE on [0, 1] intensities, its JSON naming the distance
measured, the crop following the model's training data, the model / trained-on lines, the warning about inputs unlike
the training data, `--align/--no-align`, and output errors that name the option that chose the path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import TinyDistance, tiny_model

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.features import weights
from automod_cli.features.crop import crop
from automod_cli.features.nets import pixel_mse
from data_prep import align
from data_prep.builtin import generate
from data_prep.images import NO_FACE, SkipImage

R = 32
BUILTIN_RUN = {"train_config": {"preset": "builtin", "data": None}}
FFHQ_RUN = {"train_config": {"preset": "ffhq", "data": "data/ffhq-train-256.h5"}}
MSE = ["--distance", "mse", "--steps", "2", "--device", "cpu"]


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A model trained on the built-in data, one trained on FFHQ, built-in pictures and a noise picture."""
    monkeypatch.chdir(tmp_path)
    save_model(tmp_path / "builtin.safetensors", tiny_model(), BUILTIN_RUN)
    save_model(tmp_path / "faces.safetensors", tiny_model(), FFHQ_RUN)
    for i, picture in enumerate(generate(2, seed=3)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"shape{i}.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(
        tmp_path / "noise.png"
    )
    return tmp_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def projected(capsys, *args: str) -> dict:
    code, out, err = run(capsys, "project", *args, "--json")
    assert code == 0, err
    return json.loads(out)  # stdout holds the JSON alone


def encoder_mse(checkpoint: str, image: str, window: str) -> float:
    """The encoder's pixel MSE on [0, 1] intensities, written out: mean over the window of ((x̃ + 1)/2 − (x + 1)/2)²."""
    model = ops.load_model(Path(checkpoint))
    x = ops.load_images([Path(image)], R)
    with torch.no_grad():
        fitted = model.decode(model.encode(x), noise=False).clamp(-1, 1)
    return float(((crop(fitted, window) + 1) / 2 - (crop(x, window) + 1) / 2).pow(2).mean())


def test_pixel_mse_is_measured_on_unit_intensities():
    x, y = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    expected = torch.stack([(((a + 1) / 2 - (b + 1) / 2) ** 2).mean() for a, b in zip(x, y)])
    torch.testing.assert_close(pixel_mse(x, y), expected)
    black, white = -torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert pixel_mse(black, white).item() == pytest.approx(1.0)  # at most 1, as reconstruct's MSE


def test_mse_json_names_the_distance_and_matches_the_formula(work, capsys):
    result = projected(capsys, "shape0.png", "--model", "builtin.safetensors", *MSE)
    assert result["distance"] == "mse" and result["net"] is None
    assert all("mse" in p and "lpips" not in p for p in result["curve"])
    encoder = result["curve"][0]
    assert encoder["method"] == "encoder"
    assert encoder["mse"] == pytest.approx(encoder_mse("builtin.safetensors", "shape0.png", "none"), rel=1e-4)


def test_lpips_json_keeps_the_lpips_key(work, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(work / "torch"))
    for weight in (weights.ALEXNET, weights.VGG16):
        monkeypatch.delenv(weight.env_var, raising=False)
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    for weight in (weights.ALEXNET, weights.VGG16):
        (cache / weight.name).write_bytes(b"placeholder")
    distance = TinyDistance()
    monkeypatch.setattr("automod_cli.features.nets.lpips_distance", lambda net, path, device: distance)
    result = projected(
        capsys, "shape0.png", "--model", "builtin.safetensors", "--steps", "1", "--device", "cpu"
    )
    assert result["distance"] == "lpips" and result["net"] == "alex"
    assert all("lpips" in p and "mse" not in p for p in result["curve"])


def test_the_crop_follows_the_training_data_unless_given(work, capsys):
    builtin = projected(capsys, "shape0.png", "--model", "builtin.safetensors", *MSE, "-o", "a.png")
    assert builtin["crop"] == "none"
    faces = projected(capsys, "noise.png", "--model", "faces.safetensors", *MSE, "--no-align", "-o", "b.png")
    assert faces["crop"] == "face"
    assert faces["curve"][0]["mse"] == pytest.approx(
        encoder_mse("faces.safetensors", "noise.png", "face"), rel=1e-4
    )
    given = projected(
        capsys,
        "noise.png",
        "--model",
        "faces.safetensors",
        *MSE,
        "--no-align",
        "--crop",
        "none",
        "-o",
        "c.png",
    )
    assert given["crop"] == "none"
    assert given["curve"][0]["mse"] == pytest.approx(
        encoder_mse("faces.safetensors", "noise.png", "none"), rel=1e-4
    )
    code, out, _ = run(
        capsys,
        "project",
        "shape0.png",
        "--model",
        "builtin.safetensors",
        *MSE,
        "--crop",
        "center",
        "-o",
        "d.png",
    )
    assert code == 0 and "center crop" in out
    assert main(["project", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "aligned faces" in help_text and "--align" in help_text and "[0, 1]" in help_text


def test_project_says_what_the_model_was_trained_on_and_warns_about_unlike_inputs(work, capsys):
    code, out, err = run(
        capsys, "project", "shape0.png", "shape1.png", "--model", "builtin.safetensors", *MSE
    )
    assert code == 0 and "trained on: the built-in shapes dataset" in out and "warning" not in err
    (work / "run" / "checkpoints").mkdir(parents=True)
    save_model(work / "run" / "checkpoints" / "ckpt-0000000001.safetensors", tiny_model(), BUILTIN_RUN)
    code, out, err = run(capsys, "project", "shape0.png", "noise.png", "--model", "run", *MSE, "-o", "again")
    assert code == 0 and "model:" in out and "trained on:" in out
    assert "1 of 2 inputs do not look like the built-in shapes" in " ".join(err.split())
    result = projected(capsys, "noise.png", "--model", "run", *MSE, "-o", "n.png")  # the lines go to stderr
    assert (
        result["model"].endswith("ckpt-0000000001.safetensors")
        and result["trained_on"]["dataset"] == "builtin"
    )


@pytest.fixture
def detector(monkeypatch) -> list[int]:
    """dlib's detector replaced: no picture has a face. Returns the widths of the pictures it was asked about."""
    asked: list[int] = []

    def detect(image: Image.Image, face: int = 0):
        asked.append(image.width)
        raise SkipImage(NO_FACE)

    monkeypatch.setattr(align, "detector_available", lambda: True)
    monkeypatch.setattr(align, "require_dlib", lambda: None)
    monkeypatch.setattr(align, "detect_landmarks", detect)
    return asked


def test_align_works_as_in_the_other_image_commands(work, capsys, detector):
    # a face model aligns by default, and uses a file without a face unaligned
    code, out, err = run(capsys, "project", "noise.png", "--model", "faces.safetensors", *MSE)
    assert code == 0 and "aligning faces as in the training data" in out and detector == [48]
    assert "no face found in 'noise.png'" in err
    code, out, err = run(
        capsys, "project", "noise.png", "--model", "faces.safetensors", *MSE, "--no-align", "-o", "b.png"
    )
    assert code == 0 and "aligning" not in out and detector == [48]
    # other models align only when asked: then a file without a face cannot be used
    code, out, err = run(
        capsys, "project", "noise.png", "--model", "builtin.safetensors", *MSE, "-o", "c.png"
    )
    assert code == 0 and detector == [48]
    code, _, err = run(
        capsys, "project", "noise.png", "--model", "builtin.safetensors", *MSE, "--align", "-o", "d.png"
    )
    assert code == 2 and "no face" in err and detector == [48, 48] and not Path("d.png").exists()


def test_codes_output_errors_name_codes(work, capsys, monkeypatch):
    Path("taken.npz").write_bytes(b"")
    code, _, err = run(
        capsys, "project", "shape0.png", "--model", "builtin.safetensors", *MSE, "--codes", "taken.npz"
    )
    assert code == 2 and "taken.npz" in err and "another --codes" in err and "--out" not in err
    (work / "ro").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "ro" and real(path, mode))
    code, _, err = run(
        capsys, "project", "shape0.png", "--model", "builtin.safetensors", *MSE, "--codes", "ro/c.npz"
    )
    assert code == 2 and "not writable" in err and "another --codes" in err and "--out" not in err
    code, _, err = run(
        capsys, "project", "shape0.png", "--model", "builtin.safetensors", *MSE, "-o", "ro/p.png"
    )
    assert code == 2 and "not writable" in err and "another --out" in err
