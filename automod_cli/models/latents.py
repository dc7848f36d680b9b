"""Latents and which decoder layers they drive.

A decoder "layer" for mixing is a resolution block (both convs of a block take the same latent; the authors'
code and DESIGN §8). Block i works at resolution 4·2^i, except in a decoder with a support block
(ModelConfig.block_levels), where the blocks after it sit one index later. Named scales (NeurIPS Sec. 4, Supp.
App. F) go by each block's resolution: coarse = 4²–8², mid = 16²–32², fine = 64² and up.

A per-layer assignment is a tensor of shape (N, B, D): row b drives block b.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from automod_cli.config import level_resolution
from automod_cli.errors import AutomodError

SCALES: dict[str, tuple[int, int | None]] = {"coarse": (4, 8), "mid": (16, 32), "fine": (64, None)}


def normalize(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Project latents onto the unit sphere along the last dimension."""
    return z / z.norm(dim=-1, keepdim=True).clamp_min(eps)


def random_latents(n: int, dim: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Gaussian latents normalised to the unit sphere (NeurIPS Sec. 3.1)."""
    return normalize(torch.randn(n, dim, generator=generator, device=device))


def prior_latents(
    n: int, dim: int, latent: str, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Draws from a model's latent prior: unit-sphere latents for latent='sphere', N(0, I) for 'gaussian' (the VAE
    and WAE baselines)."""
    z = torch.randn(n, dim, generator=generator, device=device)
    return normalize(z) if latent == "sphere" else z


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Points at fractions `t` (T,) along the great circle from a to b: (T, D) for endpoints (D,) each, or one
    point per row for endpoints (T, D). t=0 gives exactly a and t=1 exactly b; where a and b are (anti)parallel
    (sin of their angle < eps) the great circle is not defined by them and the path is a straight line."""
    t = t.to(a)[:, None]
    cos = (a * b).sum(-1, keepdim=True) / (
        a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)
    ).clamp_min(1e-12)
    angle = torch.arccos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(angle)
    straight = sin < eps
    safe = torch.where(straight, torch.ones_like(sin), sin)
    weight_a = torch.where(straight, 1 - t, torch.sin((1 - t) * angle) / safe)
    weight_b = torch.where(straight, t, torch.sin(t * angle) / safe)
    return weight_a * a + weight_b * b


def block_resolution(block: int, levels: Sequence[int] | None = None) -> int:
    """The resolution of `block`, whose level is levels[block] (default: block i on level i)."""
    return level_resolution(block if levels is None else levels[block])


def scale_blocks(spec: str, num_blocks: int, levels: Sequence[int] | None = None) -> range:
    """The blocks named by `spec`: 'coarse' | 'mid' | 'fine' | 'i:j' (blocks i..j-1) | 'i' (one block).

    Index ranges follow Python slices and may omit either end ('2:' = block 2 to the last). Named scales pick the
    blocks by resolution; `levels` gives each block's level (ModelConfig.block_levels; default: block i on level i).
    """
    spec = spec.strip().lower()
    if spec in SCALES:
        low, high = SCALES[spec]
        resolutions = [block_resolution(b, levels) for b in range(num_blocks)]
        blocks = [b for b, res in enumerate(resolutions) if res >= low and (high is None or res <= high)]
        if not blocks:
            raise AutomodError(
                f"a {resolutions[-1]}² model has no '{spec}' layers; use coarse/mid or an index range."
            )
        return range(blocks[0], blocks[-1] + 1)
    try:
        if ":" in spec:
            start_s, stop_s = spec.split(":", 1)
            start = int(start_s) if start_s else 0
            stop = int(stop_s) if stop_s else num_blocks
        else:
            start = int(spec)
            stop = start + 1
    except ValueError:
        raise AutomodError(
            f"cannot read layer range '{spec}': use coarse, mid, fine, 'i:j' or a block index."
        ) from None
    if 0 <= start and stop <= num_blocks and start >= stop:
        raise AutomodError(
            f"layer range '{spec}' is empty: 'i:j' takes blocks i to j-1, so j must be greater than i "
            f"(this model's blocks are 0..{num_blocks - 1}; e.g. '{start}:{start + 1}')."
        )
    if not 0 <= start < stop <= num_blocks:
        raise AutomodError(f"layer range '{spec}' is outside the model's blocks 0..{num_blocks - 1}.")
    return range(start, stop)


def per_block(z: torch.Tensor, num_blocks: int) -> torch.Tensor:
    """Broadcast (N, D) latents to an (N, B, D) assignment; an (N, B', D) assignment with B' ≥ B is cut to B."""
    if z.dim() == 2:
        return z[:, None, :].expand(-1, num_blocks, -1)
    if z.dim() == 3 and z.shape[1] >= num_blocks:
        return z[:, :num_blocks]
    raise AutomodError(f"latents must be (N, D) or (N, ≥{num_blocks}, D), got shape {tuple(z.shape)}.")


def assign(base: torch.Tensor, other: torch.Tensor, blocks: range, num_blocks: int) -> torch.Tensor:
    """`other` drives `blocks`, `base` drives every other block: the style-mixing one-liner."""
    mask = torch.zeros(num_blocks, dtype=torch.bool, device=base.device)
    mask[blocks.start : blocks.stop] = True
    return torch.where(mask[None, :, None], per_block(other, num_blocks), per_block(base, num_blocks))


def split_at(z_a: torch.Tensor, z_b: torch.Tensor, j: int, num_blocks: int) -> torch.Tensor:
    """z_a drives blocks 0..j-1 and z_b the rest (NeurIPS Sec. 3.2: x̂_AB = θ_{j+1:N}(θ_{1:j}(ξ0, z_A), z_B))."""
    if not 0 <= j <= num_blocks:
        raise AutomodError(f"split point {j} is outside 0..{num_blocks}.")
    return assign(z_b, z_a, range(0, j), num_blocks)
