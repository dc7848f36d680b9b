"""Which decoder blocks an operation touches, resolved against a loaded model.

A "layer" for mixing, conditional sampling and scale-restricted edits is a resolution block: both convs of a
block read the same latent (DESIGN §8). Named scales follow NeurIPS Sec. 4: coarse = 4²–8² (blocks 0–1, conv
layers 0..3), mid = 16²–32² (blocks 2–3), fine = 64² and up (blocks 4+); 'i:j' names blocks i..j-1. A model
trained with flip invariance has a support block (an extra 8² block 2 for J = 2): its scales go by resolution,
so there coarse = blocks 0–2 and mid = blocks 3–4 (`model.block_levels`).
"""

from __future__ import annotations

from collections.abc import Sequence

from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.models.latents import SCALES, block_resolution, scale_blocks


def require_mixing(model: Automodulator, what: str) -> None:
    """Refuse `what` on a classic (PIONEER) decoder, whose latent enters only at the first layer."""
    if not model.supports_mixing:
        raise AutomodError(
            f"{what} needs an AdaIN (automodulator) model; this checkpoint has a classic decoder, "
            "which takes one latent for all layers."
        )


def scale_range(model: Automodulator, spec: str, what: str = "choosing scales") -> range:
    """The blocks of `model` (at its trained resolution) named by 'coarse' | 'mid' | 'fine' | 'i:j' | 'i'."""
    require_mixing(model, what)
    return scale_blocks(spec, model.num_active_blocks, model.block_levels)


def describe(blocks: range, levels: Sequence[int] | None = None) -> str:
    """'blocks 0-1 (4x4 to 8x8)': the blocks and their resolutions, in plain ASCII (captions use PIL's font).
    `levels`: each block's level (`model.block_levels`; default: block i on level i)."""
    first, last = blocks.start, blocks.stop - 1
    low, high = block_resolution(first, levels), block_resolution(last, levels)
    if first == last:
        return f"block {first} ({low}x{low})"
    return f"blocks {first}-{last} ({low}x{low} to {high}x{high})"


def scale_label(spec: str, blocks: range, levels: Sequence[int] | None = None) -> str:
    """'the coarse scales (blocks 0-1, 4x4 to 8x8)' for a named scale, else just the blocks."""
    where = describe(blocks, levels)
    name = spec.strip().lower()
    return f"the {name} scales ({where.replace(' (', ', ')}" if name in SCALES else where
