"""Tiny models, tiny training settings and stand-ins shared by the tests (imported by them; pytest puts tests/ on
sys.path): a 32² automodulator with random style maps, the settings of a seconds-long training run, small random
networks in place of LPIPS and Inception (tests never load pretrained weights), and a random-image HDF5 file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from automod_cli.config import ModelConfig, TrainConfig
from automod_cli.models import Automodulator
from automod_cli.training import invariance
from automod_cli.training.schedule import PhaseState
from data_prep.hdf5 import H5Writer, pyramid

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

R = 32  # resolution of the tiny model: 4 blocks (4², 8², 16², 32²)

# A training run of seconds on the built-in data: a 16-d latent and 4 narrow blocks, 16 images a step, a log line
# every 4 steps and a checkpoint every 8. Tests add the resolution, schedule and learning rate they need.
TINY_RUN: dict[str, Any] = {
    "model.latent_dim": 16,
    "model.channels": [16, 16, 8, 8],
    "phase_images": 256,
    "batch_size": 16,
    "data_limit": 128,
    "log_every": 64,
    "checkpoint_every": 128,
    "keep_checkpoints": 10,
}


def tiny_model(decoder: str = "adain", support_block: int = 0) -> Automodulator:
    """A 32² model whose AdaIN maps have random weights, so every block's latent changes the image."""
    torch.manual_seed(0)
    config = ModelConfig(
        max_resolution=R, latent_dim=16, channels=(16, 16, 8, 8), decoder=decoder, support_block=support_block
    )
    model = Automodulator(config)
    with torch.no_grad():
        for module in model.decoder.modules():
            if hasattr(module, "affine"):
                module.affine.weight.normal_()
    return model.eval()


def cli_settings(overrides: dict[str, Any]) -> list[str]:
    """`overrides` as the `--set key=value` arguments of `automod train`."""
    return [item for key, value in overrides.items() for item in ("--set", f"{key}={json.dumps(value)}")]


def one_line_error(code: int, err: str, word: str) -> None:
    """Assert that a command failed as a user error (exit 2) with one line of stderr that names `word`."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and word in lines[0], err


def random_h5(path: Path, n: int, split: str, seed: int) -> Path:
    """An HDF5 data file of `n` random 32² images (with their pyramids), as `automod prep` writes them."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    writer = H5Writer(
        path, 32, {"source": "test", "source_path": "memory", "alignment": "none", "split": split}, str(path)
    )
    for image in images:
        writer.add(pyramid(image))
    return writer.commit()


class TinyDistance(nn.Module):
    """A stand-in for LPIPS: squared differences of fixed random conv features, per image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, x, y):
        return (self.conv(x) - self.conv(y)).pow(2).flatten(1).mean(1)


class TinyFeatures(nn.Module):
    """A stand-in for Inception: a fixed random projection of pooled pixels."""

    name = "tiny-features"

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 5)

    def forward(self, images):
        return self.linear(nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1))


def benchmark_module(name: str):
    """benchmarks/<name>.py imported as the module `name` (the benchmarks are scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def flip_invariance_loss(nets, x: torch.Tensor, phase: PhaseState, config: TrainConfig) -> torch.Tensor:
    """½(L_inv + L'_inv) for the pairs of the batch `x` (NeurIPS Eq. 10-11), encoding the pairs itself: the
    reference the tests hold the encoder step to (it passes the codes it has already computed)."""
    x_1, x_2 = invariance.flipped_pairs(x)
    z_1, z_2 = nets.encoder(torch.cat([x_1, x_2]), phase.level, phase.alpha).chunk(2)
    return invariance.swapped_reconstruction_loss(nets, x_1, x_2, z_1, z_2, phase, config)
