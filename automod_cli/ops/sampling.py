"""Random samples (Supp. App. D) and conditional samples (Supp. App. H).

Random latents come from the model's prior (`model.sample_latents`): Gaussian draws projected onto the unit
sphere for the automodulator and PIONEER (NeurIPS Sec. 3.1), N(0, I) for the VAE and WAE, and y = φ⁻¹(z) of
z ~ N(0, I) for LIA. Conditional sampling fixes some scales to an input's latent z_A and lets a random z_B
drive all the others, so every sample shares the input's features at those scales (e.g. pose and layout for
'coarse').
"""

from __future__ import annotations

import torch

from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.ops.reconstruct import decode, model_device
from automod_cli.ops.scales import require_mixing


def sample(
    model: Automodulator, n: int, generator: torch.Generator | None = None, noise: bool = False
) -> torch.Tensor:
    """n random images θ(z), z from the model's prior (drawn on the CPU, so a seed gives the same latents on every
    device)."""
    return decode(model, model.sample_latents(n, generator), noise)


def conditional_latents(
    model: Automodulator,
    z_fixed: torch.Tensor,
    blocks: range,
    n: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, B, D) assignments: `z_fixed` (one latent, (D,) or (1, D)) on `blocks`, a fresh random latent elsewhere."""
    require_mixing(model, "conditional sampling")
    fixed = z_fixed.reshape(1, -1).to(model_device(model)).expand(n, -1)
    return assign(model.sample_latents(n, generator), fixed, blocks, model.num_active_blocks)


def conditional_sample(
    model: Automodulator,
    z_fixed: torch.Tensor,
    blocks: range,
    n: int,
    generator: torch.Generator | None = None,
    noise: bool = False,
) -> torch.Tensor:
    """n images that keep `z_fixed`'s features at `blocks` and vary everywhere else."""
    return decode(model, conditional_latents(model, z_fixed, blocks, n, generator), noise)
