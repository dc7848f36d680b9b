"""Style mixing: B's latent drives chosen decoder blocks, A's drives the rest (NeurIPS Sec. 4, Supp. App. F)."""

from __future__ import annotations

import torch

from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.ops.reconstruct import decode
from automod_cli.ops.scales import require_mixing


def mix_latents(model: Automodulator, z_a: torch.Tensor, z_b: torch.Tensor, blocks: range) -> torch.Tensor:
    """The (N, B, D) assignment with z_b on `blocks` and z_a elsewhere (z_a, z_b: (N, D) or (1, D))."""
    require_mixing(model, "style mixing")
    z_a, z_b = torch.broadcast_tensors(z_a, z_b)
    return assign(z_a, z_b, blocks, model.num_active_blocks)


def mix(
    model: Automodulator, z_a: torch.Tensor, z_b: torch.Tensor, blocks: range, noise: bool = False
) -> torch.Tensor:
    """Images of A whose `blocks` are driven by B: the scales of B replace those of A."""
    return decode(model, mix_latents(model, z_a, z_b, blocks), noise)


def mix_grid(
    model: Automodulator, z_rows: torch.Tensor, z_cols: torch.Tensor, blocks: range, noise: bool = False
) -> torch.Tensor:
    """The cells of a style-mixing figure (Supp. Figs. 14–15), row by row, ((R+1)·(C+1), 3, H, W).

    Cell (0, 0) is blank (white); the rest of row 0 holds the reconstructions of the B latents `z_cols`, the
    rest of column 0 those of the A latents `z_rows`, and cell (i, j) is A_i with B_j's `blocks`. When rows and
    columns are the same images the diagonal shows their reconstructions (mixing an image with itself).
    """
    rows, cols = len(z_rows), len(z_cols)
    row_images, col_images = decode(model, z_rows, noise), decode(model, z_cols, noise)
    z_a = z_rows.repeat_interleave(cols, dim=0)
    z_b = z_cols.repeat(rows, 1)
    mixed = mix(model, z_a, z_b, blocks, noise).view(rows, cols, *row_images.shape[1:])
    blank = torch.ones_like(row_images[:1])
    top = torch.cat([blank, col_images])
    body = torch.cat([row_images[:, None], mixed], dim=1).flatten(0, 1)
    return torch.cat([top, body])
