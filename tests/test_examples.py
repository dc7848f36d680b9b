"""The scripts in examples/ run against a small checkpoint (as a user would: separate processes, cwd elsewhere)
and write the figures they describe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from automod_cli import ops
from automod_cli.checkpoint import save_model
from automod_cli.config import ModelConfig
from automod_cli.models import Automodulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CELL = 98  # a 32² cell enlarged ×3 plus its 2 px border


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = Automodulator(ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8)))
    with torch.no_grad():
        for module in model.decoder.modules():
            if hasattr(module, "affine"):
                module.affine.weight.normal_()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, model)
    return path


def run_example(name: str, cwd: Path, *args: str, code: int = 0) -> str:
    """The example's stdout (exit code `code`), or its stderr when it is expected to fail."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(EXAMPLES.parent)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == code, result.stderr
    return result.stdout if code == 0 else result.stderr


def grid_shape(path: Path) -> tuple[int, int]:
    """(rows, columns) of a captioned figure of 32² cells, from its width and the height under the caption."""
    width, height = Image.open(path).size
    columns = (width - 2) // CELL
    assert columns * CELL + 2 == width
    rows = max(r for r in range(1, 20) if r * CELL + 2 < height)
    return rows, columns


def test_mix_two_photos(checkpoint, tmp_path):
    out = run_example("mix_two_photos.py", tmp_path, str(checkpoint))
    assert "wrote mix-two-photos.png" in out
    assert grid_shape(tmp_path / "mix-two-photos.png") == (
        1,
        6,
    )  # A, B, 2 reconstructions, coarse and mid mixes
    for i, colour in enumerate(((250, 10, 10), (10, 10, 250))):
        Image.new("RGB", (48, 40), colour).save(tmp_path / f"{i}.png")
    run_example("mix_two_photos.py", tmp_path, str(checkpoint), "0.png", "1.png", "--out", "photos.png")
    strip = np.asarray(Image.open(tmp_path / "photos.png"))
    first_cell = strip[-CELL:-2, 2:CELL]  # the input A, enlarged
    assert (np.abs(first_cell.astype(int) - [250, 10, 10]) <= 1).all()


def test_conditional_sampling(checkpoint, tmp_path):
    out = run_example("conditional_sampling.py", tmp_path, str(checkpoint), "--n", "4")
    assert "wrote conditional-sampling.png" in out
    assert grid_shape(tmp_path / "conditional-sampling.png") == (2, 5)  # coarse and mid rows


def test_attribute_vector(checkpoint, tmp_path):
    out = run_example("attribute_vector.py", tmp_path, str(checkpoint))
    assert "attribute-vector/edits.png" in out
    vector, info = ops.load_vector(tmp_path / "attribute-vector" / "attribute.safetensors", 16)
    assert info["positives"] == info["negatives"] == "4" and vector.abs().max() > 0
    assert grid_shape(tmp_path / "attribute-vector" / "edits.png") == (2, 6)


@pytest.mark.parametrize(
    "name, output",
    [
        ("mix_two_photos.py", "mix-two-photos.png"),
        ("conditional_sampling.py", "conditional-sampling.png"),
        ("attribute_vector.py", "attribute-vector/attribute.safetensors"),
    ],
)
def test_a_second_run_is_one_line_before_any_work(checkpoint, tmp_path, name, output):
    run_example(name, tmp_path, str(checkpoint))
    written = (tmp_path / output).read_bytes()
    # the outputs are checked before the model is read: a missing checkpoint is not even noticed
    err = run_example(name, tmp_path, str(tmp_path / "no-such-model.safetensors"), code=2)
    assert (
        err.strip().splitlines() == [err.strip()] and err.startswith("error:") and "already exists" in err
    ), err
    assert output.split("/")[-1] in err and "--force" in err and "Traceback" not in err
    assert (tmp_path / output).read_bytes() == written
    run_example(name, tmp_path, str(checkpoint), "--force")
