"""Interpolation between encoded images (NeurIPS Sec. 4, Supp. App. F, Fig. 13).

Latents live on the unit sphere, so paths follow great circles (spherical linear interpolation, slerp): every
point is again a unit latent like those the decoder was trained on, where a straight line would cut through
the sphere's inside. Endpoints are the inputs' own latents, so the ends of a strip and the corners of a grid
are exactly their reconstructions. Restricted to some blocks, the path drives only those blocks and the first
input drives the rest.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from automod_cli.checkpoint import atomic_write
from automod_cli.errors import AutomodError
from automod_cli.images import enlarge, to_uint8
from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.ops.reconstruct import decode, model_device
from automod_cli.ops.scales import require_mixing

DEGENERATE_EPS = 1e-6  # sin of the angle between endpoints below which slerp is a straight line
GIF_FRAME_MS = 80
GIF_MIN_SIZE = 192  # frames are enlarged (nearest) to at least this many pixels


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points at fractions `t` (T,) along the great circle from a to b ((D,) each): (T, D); t=0 gives exactly a,
    t=1 exactly b. (Anti)parallel pairs, where the great circle is not defined by a and b, fall back to a line."""
    t = t.to(a)[:, None]
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if torch.sin(omega) < DEGENERATE_EPS:
        return torch.lerp(a[None], b[None], t)
    weight_a = torch.sin((1 - t) * omega) / torch.sin(omega)
    weight_b = torch.sin(t * omega) / torch.sin(omega)
    return weight_a * a + weight_b * b


def fractions(steps: int) -> torch.Tensor:
    """`steps` evenly spaced fractions from 0 to 1, both ends included."""
    if steps < 2:
        raise AutomodError(f"interpolation needs at least 2 steps (both ends), got {steps}.")
    return torch.linspace(0.0, 1.0, steps)


def _restricted(model: Automodulator, base: torch.Tensor, path: torch.Tensor, blocks: range | None) -> torch.Tensor:
    if blocks is None:
        return path
    require_mixing(model, "interpolating chosen scales")
    return assign(base.expand_as(path), path, blocks, model.num_active_blocks)


def interpolate(model: Automodulator, z_a: torch.Tensor, z_b: torch.Tensor, steps: int,
                blocks: range | None = None, noise: bool = False) -> torch.Tensor:
    """A strip of `steps` images from A's reconstruction to B's ((D,) latents), (steps, 3, R, R)."""
    device = model_device(model)
    z_a, z_b = z_a.reshape(-1).to(device), z_b.reshape(-1).to(device)
    path = slerp(z_a, z_b, fractions(steps))
    return decode(model, _restricted(model, z_a[None], path, blocks), noise)


def interpolate_grid(model: Automodulator, corners: torch.Tensor, steps: int,
                     blocks: range | None = None, noise: bool = False) -> torch.Tensor:
    """A steps × steps grid, row by row, between four latents (4, D): top-left, top-right, bottom-left,
    bottom-right. Each row slerps between the left and right edges, which slerp down from the top corners."""
    if corners.shape[0] != 4:
        raise AutomodError(f"a 4-corner interpolation needs 4 images, got {corners.shape[0]}.")
    corners = corners.to(model_device(model))
    t = fractions(steps)
    left, right = slerp(corners[0], corners[2], t), slerp(corners[1], corners[3], t)
    path = torch.cat([slerp(left[i], right[i], t) for i in range(steps)])
    return decode(model, _restricted(model, corners[:1], path, blocks), noise)


def snake_order(rows: int, columns: int) -> list[int]:
    """Cell indices of a row-major grid visited row by row, every other row backwards: neighbours stay adjacent."""
    order: list[int] = []
    for r in range(rows):
        cells = list(range(r * columns, (r + 1) * columns))
        order.extend(cells if r % 2 == 0 else cells[::-1])
    return order


def write_gif(path: Path, frames: torch.Tensor, overwrite: bool = False, frame_ms: int = GIF_FRAME_MS) -> Path:
    """An endlessly looping GIF that plays `frames` (N, 3, R, R) forwards then backwards, enlarged to be seen."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise AutomodError(f"'{path}' already exists: choose another --out or pass --force to overwrite.")
    big = to_uint8(enlarge(frames.float().cpu(), GIF_MIN_SIZE))
    sequence = list(big) + list(big[-2:0:-1])  # forwards, then back without repeating the ends
    pictures = [Image.fromarray(frame) for frame in sequence]
    atomic_write(path, lambda tmp: pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:],
                                                    duration=frame_ms, loop=0))
    return path
