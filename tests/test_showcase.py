"""What the end of `make demo` shows (metrics/builtin/showcase.py): its numbers are the held-out reconstruction
and mixing errors computed here from the images themselves, and its picture sets each held-out pair beside its
reconstructions, the renderer's truth and the model's mix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from automod_cli.checkpoint import save_model
from automod_cli.metrics.builtin import showcase
from automod_cli.models.latents import assign
from automod_cli.ops.figures import caption_height
from data_prep.builtin import SPLITS, BuiltinDataset, combine, sample_factors
from data_prep.builtin import downscale, render

R = 32
SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "demo_report.py"


def _as_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] model output → uint8, as an image file stores it."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def _reference(model, images: np.ndarray, b_images: np.ndarray | None = None) -> np.ndarray:
    """θ(φ(x)) or, given B, θ with φ(B) on blocks 0-1 (4², 8²) and φ(x) above them; uint8; noise off."""
    x = torch.from_numpy(images).float() / 127.5 - 1
    with torch.no_grad():
        z = model.encode(x)
        if b_images is None:
            return _as_uint8(model.decode(z, noise=False))
        z_b = model.encode(torch.from_numpy(b_images).float() / 127.5 - 1)
        return _as_uint8(model.decode(assign(z, z_b, range(0, 2), model.num_active_blocks), noise=False))


def _mse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((x.astype(np.float64) / 255 - y.astype(np.float64) / 255) ** 2))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_the_numbers_are_the_held_out_errors_computed_from_the_images(model):
    result = showcase.summary(model, images=10, pairs=6)
    test = BuiltinDataset(split="test", resolution=R, count=12).images
    assert result.reconstruction.reconstruction.mse == pytest.approx(
        _mse(_reference(model, test[:10]), test[:10]), rel=1e-6
    )
    a, b = test[0::2], test[1::2]
    factors = sample_factors(12, SPLITS["test"][0])
    truth = downscale(render(combine(factors[1::2], factors[0::2]), 64), R)  # B's layout in A's colours
    assert result.mixing.truth.mse == pytest.approx(_mse(_reference(model, a, b), truth), rel=1e-6)
    assert result.mixing.pairs == 6 and result.reconstruction.images == 10
    numbers = result.to_dict()
    assert numbers["recon_mse"] == result.reconstruction.reconstruction.mse and numbers["resolution"] == R
    assert 0 < numbers["mean_image_mse"] < 1 and numbers["mix_swapped_mse"] == result.mixing.swapped.mse
    text = "\n".join(result.lines())
    assert f"{numbers['recon_mse']:.4f}" in text and f"{numbers['mix_mse']:.4f}" in text
    assert f"{numbers['mean_image_mse']:.4f}" in text


def test_the_picture_sets_each_pair_beside_its_reconstructions_the_truth_and_the_mix(model):
    cells = showcase.figure_cells(model, rows=3).reshape(3, len(showcase.COLUMNS), 3, R, R)
    test = BuiltinDataset(split="test", resolution=R, count=6).images
    a, b = test[0::2], test[1::2]
    factors = sample_factors(6, SPLITS["test"][0])
    truth = downscale(render(combine(factors[1::2], factors[0::2]), 64), R)
    expected = (a, _reference(model, a), b, _reference(model, b), truth, _reference(model, a, b))
    for column, reference in enumerate(expected):
        np.testing.assert_array_equal(
            _as_uint8(cells[:, column]), reference, err_msg=showcase.COLUMNS[column]
        )
    picture = showcase.figure(model, rows=3)
    assert picture.shape[0] == 3 and picture.shape[2] > 6 * 96  # cells enlarged so they can be seen
    assert picture.shape[1] > 3 * 96 + caption_height("x", picture.shape[2]) - 1


def test_the_script_prints_the_numbers_and_writes_the_picture(model, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_model(run / "checkpoints" / "ckpt-0000000064.safetensors", model, {"train_config": {"data": None}})
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(run),
            "--json",
            str(tmp_path / "n.json"),
            "--images",
            "8",
            "--pairs",
            "4",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "held-out reconstruction at 32² (8 test images)" in done.stdout
        and "the mean training image" in done.stdout
    )
    assert "(4 held-out pairs)" in done.stdout
    assert "against the truth" in done.stdout and (run / "demo.png").is_file()
    assert '"mix_mse"' in (tmp_path / "n.json").read_text()
