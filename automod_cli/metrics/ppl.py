"""Perceptual path length (StyleGAN, Karras et al. 2019; NeurIPS Sec. 4, Supp. App. A).

For random latent pairs (z₀, z₁) from the model's prior and t ~ U(0, 1), decode the points t and t + ε of the
interpolation between them, crop both images to the face window, and take LPIPS / ε². PPL is the mean of these
values after discarding those below the 1st and above the 99th percentile, as StyleGAN's code does. ε = 1e-4
and 100,000 pairs (Supp. App. A). Latents are interpolated in float64 so the ε step is not lost to rounding;
images are decoded with layer noise off, so both ends of a pair see the same (no) noise.

The path is the model's own (`model.interpolate_latents`): slerp on the unit sphere for the automodulator and
PIONEER (StyleGAN's PPL in Z), straight lines between N(0, I) draws for the VAE and WAE, and straight lines in
LIA's y-space between y = φ⁻¹(z) draws, as StyleGAN measures PPL in its intermediate space W.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from automod_cli.defaults import PPL_SAMPLES
from automod_cli.features.crop import crop
from automod_cli.features.nets import DistanceNet
from automod_cli.ops.reconstruct import ProgressCallback

EPSILON = 1e-4  # Supp. App. A
DEFAULT_SAMPLES = PPL_SAMPLES  # Supp. App. A
TRIM_PERCENT = 1.0  # StyleGAN drops the lowest and highest 1% of the values
DEFAULT_BATCH = 32


class LatentModel(Protocol):
    """What PPL needs of a model (Automodulator and LiaModel have it)."""

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def interpolate_latents(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor, noise: bool = False) -> torch.Tensor: ...


@dataclass(frozen=True)
class PPLResult:
    ppl: float
    samples: int
    epsilon: float
    crop: str


def path_lengths(
    model: LatentModel,
    distance: DistanceNet,
    n: int = DEFAULT_SAMPLES,
    epsilon: float = EPSILON,
    crop_mode: str = "face",
    batch_size: int = DEFAULT_BATCH,
    generator: torch.Generator | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """`n` values of LPIPS(G(path(z₀, z₁; t)), G(path(z₀, z₁; t + ε))) / ε², one per random pair."""
    values = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z0 = model.sample_latents(count, generator).double()
            z1 = model.sample_latents(count, generator).double()
            t = torch.rand(count, generator=generator, dtype=torch.float64)
            ends = torch.cat(
                [model.interpolate_latents(z0, z1, t), model.interpolate_latents(z0, z1, t + epsilon)]
            )
            images = crop(model.decode(ends.float(), noise=False), crop_mode)
            values.append((distance(images[:count], images[count:]).double() / epsilon**2).cpu())
            if progress is not None:
                progress("path lengths", start + count, n)
    return torch.cat(values).numpy()


def trimmed_mean(values: np.ndarray, percent: float = TRIM_PERCENT) -> float:
    """Mean of the values between the `percent` and 100 − `percent` percentiles (StyleGAN's PPL filter)."""
    low = np.percentile(values, percent, method="lower")
    high = np.percentile(values, 100 - percent, method="higher")
    return float(values[(values >= low) & (values <= high)].mean())


def perceptual_path_length(
    model: LatentModel,
    distance: DistanceNet,
    n: int = DEFAULT_SAMPLES,
    epsilon: float = EPSILON,
    crop_mode: str = "face",
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> PPLResult:
    """PPL of a model over `n` random latent pairs drawn from a generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    values = path_lengths(model, distance, n, epsilon, crop_mode, batch_size, generator, progress)
    return PPLResult(trimmed_mean(values), n, epsilon, crop_mode)
