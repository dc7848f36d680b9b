"""Perceptual path length (StyleGAN, Karras et al. 2019; NeurIPS Sec. 4, Supp. App. A).

For random latent pairs (z₀, z₁) on the unit sphere and t ~ U(0, 1), decode the points t and t + ε of the
spherical interpolation between them, crop both images to the face window, and take LPIPS / ε². PPL is the
mean of these values after discarding those below the 1st and above the 99th percentile, as StyleGAN's code
does. ε = 1e-4 and 100,000 pairs (Supp. App. A). Latents are interpolated in float64 so the ε step is not lost
to rounding; images are decoded with layer noise off, so both ends of a pair see the same (no) noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from automod_cli.metrics.crop import crop
from automod_cli.metrics.data import Progress
from automod_cli.metrics.features import DistanceNet
from automod_cli.models.latents import normalize, random_latents

EPSILON = 1e-4  # Supp. App. A
DEFAULT_SAMPLES = 100_000  # Supp. App. A
TRIM_PERCENT = 1.0  # StyleGAN drops the lowest and highest 1% of the values
DEFAULT_BATCH = 32

Decode = Callable[[torch.Tensor], torch.Tensor]  # (N, D) latents → (N, 3, H, W) images in [-1, 1]


@dataclass(frozen=True)
class PPLResult:
    ppl: float
    samples: int
    epsilon: float
    crop: str


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between unit vectors a and b at fractions t (shape (N,) or (N, 1)), renormalised."""
    t = t.reshape(-1, 1)
    cos_angle = (a * b).sum(-1, keepdim=True).clamp(-1, 1)
    angle = torch.arccos(cos_angle)
    sin_angle = torch.sin(angle)
    nearly_parallel = sin_angle.abs() < 1e-12
    safe = torch.where(nearly_parallel, torch.ones_like(sin_angle), sin_angle)
    weight_a = torch.where(nearly_parallel, 1 - t, torch.sin((1 - t) * angle) / safe)
    weight_b = torch.where(nearly_parallel, t, torch.sin(t * angle) / safe)
    return normalize(weight_a * a + weight_b * b)


def path_lengths(decode: Decode, latent_dim: int, distance: DistanceNet, n: int = DEFAULT_SAMPLES,
                 epsilon: float = EPSILON, crop_mode: str = "face", batch_size: int = DEFAULT_BATCH,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                 progress: Progress | None = None) -> np.ndarray:
    """`n` values of LPIPS(G(slerp(z₀, z₁; t)), G(slerp(z₀, z₁; t + ε))) / ε², one per random pair."""
    values = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z0 = random_latents(count, latent_dim, generator=generator).double()
            z1 = random_latents(count, latent_dim, generator=generator).double()
            t = torch.rand(count, generator=generator, dtype=torch.float64)
            ends = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)]).float().to(device)
            images = crop(decode(ends), crop_mode)
            values.append((distance(images[:count], images[count:]).double() / epsilon**2).cpu())
            if progress is not None:
                progress("path lengths", start + count, n)
    return torch.cat(values).numpy()


def trimmed_mean(values: np.ndarray, percent: float = TRIM_PERCENT) -> float:
    """Mean of the values between the `percent` and 100 − `percent` percentiles (StyleGAN's PPL filter)."""
    low = np.percentile(values, percent, method="lower")
    high = np.percentile(values, 100 - percent, method="higher")
    return float(values[(values >= low) & (values <= high)].mean())


def perceptual_path_length(decode: Decode, latent_dim: int, distance: DistanceNet, n: int = DEFAULT_SAMPLES,
                           epsilon: float = EPSILON, crop_mode: str = "face", batch_size: int = DEFAULT_BATCH,
                           seed: int = 0, device: str | torch.device = "cpu", progress: Progress | None = None) -> PPLResult:
    """PPL of a decoder over `n` random latent pairs (pass `lambda z: model.decode(z, noise=False)`)."""
    generator = torch.Generator().manual_seed(seed)
    values = path_lengths(decode, latent_dim, distance, n, epsilon, crop_mode, batch_size, generator, device, progress)
    return PPLResult(trimmed_mean(values), n, epsilon, crop_mode)
