"""Interpolation between encoded images (NeurIPS Sec. 4, Supp. App. F, Fig. 13).

Paths follow the model's latent space (`model.interpolate_latents`): automodulator and PIONEER latents live on
the unit sphere, so their paths follow great circles (spherical linear interpolation, slerp) and every point is
again a unit latent like those the decoder was trained on, where a straight line would cut through the
sphere's inside; the VAE's and WAE's Gaussian latents and LIA's y-space take straight lines. Endpoints are the
inputs' own latents, so the ends of a strip and the corners of a grid are exactly their reconstructions.
Restricted to some blocks, the path drives only those blocks and the first input drives the rest.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from automod_cli.outputs import atomic_write, refuse_overwrite
from automod_cli.errors import AutomodError
from automod_cli.images import enlarge, to_uint8
from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.ops.reconstruct import decode, model_device
from automod_cli.ops.scales import require_mixing

GIF_FRAME_MS = 80
GIF_MIN_SIZE = 192  # frames are enlarged (nearest) to at least this many pixels


def fractions(steps: int) -> torch.Tensor:
    """`steps` evenly spaced fractions from 0 to 1, both ends included."""
    if steps < 2:
        raise AutomodError(f"interpolation needs at least 2 steps (both ends), got {steps}.")
    return torch.linspace(0.0, 1.0, steps)


def _restricted(
    model: Automodulator, base: torch.Tensor, path: torch.Tensor, blocks: range | None
) -> torch.Tensor:
    if blocks is None:
        return path
    require_mixing(model, "interpolating chosen scales")
    return assign(base.expand_as(path), path, blocks, model.num_active_blocks)


def interpolate(
    model: Automodulator,
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    steps: int,
    blocks: range | None = None,
    noise: bool = False,
) -> torch.Tensor:
    """A strip of `steps` images from A's reconstruction to B's ((D,) latents), (steps, 3, R, R)."""
    device = model_device(model)
    z_a, z_b = z_a.reshape(-1).to(device), z_b.reshape(-1).to(device)
    path = model.interpolate_latents(z_a, z_b, fractions(steps))
    return decode(model, _restricted(model, z_a[None], path, blocks), noise)


def interpolate_grid(
    model: Automodulator, corners: torch.Tensor, steps: int, blocks: range | None = None, noise: bool = False
) -> torch.Tensor:
    """A steps × steps grid, row by row, between four latents (4, D): top-left, top-right, bottom-left,
    bottom-right. Each row interpolates between the left and right edges, which run down from the top corners."""
    if corners.shape[0] != 4:
        raise AutomodError(f"a 4-corner interpolation needs 4 images, got {corners.shape[0]}.")
    corners = corners.to(model_device(model))
    t = fractions(steps)
    left, right = (
        model.interpolate_latents(corners[0], corners[2], t),
        model.interpolate_latents(corners[1], corners[3], t),
    )
    path = torch.cat([model.interpolate_latents(left[i], right[i], t) for i in range(steps)])
    return decode(model, _restricted(model, corners[:1], path, blocks), noise)


def snake_order(rows: int, columns: int) -> list[int]:
    """Cell indices of a row-major grid visited row by row, every other row backwards: neighbours stay adjacent."""
    order: list[int] = []
    for r in range(rows):
        cells = list(range(r * columns, (r + 1) * columns))
        order.extend(cells if r % 2 == 0 else cells[::-1])
    return order


def write_gif(
    path: Path, frames: torch.Tensor, overwrite: bool = False, frame_ms: int = GIF_FRAME_MS
) -> Path:
    """An endlessly looping GIF that plays `frames` (N, 3, R, R) forwards then backwards, enlarged to be seen."""
    path = Path(path)
    refuse_overwrite(path, overwrite)
    big = to_uint8(enlarge(frames.float().cpu(), GIF_MIN_SIZE))
    sequence = list(big) + list(big[-2:0:-1])  # forwards, then back without repeating the ends
    pictures = [Image.fromarray(frame) for frame in sequence]
    atomic_write(
        path,
        lambda tmp: pictures[0].save(
            tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0
        ),
    )
    return path
