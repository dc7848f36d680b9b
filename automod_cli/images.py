"""Images in and out of the toolkit: tensor ↔ uint8 conversion, grids, atomic image writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from automod_cli.errors import AutomodError
from automod_cli.outputs import atomic_write, image_format, refuse_overwrite


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1], (N, 3, H, W) or (3, H, W), to uint8 HWC arrays (N, H, W, 3) or (H, W, 3)."""
    scaled = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.movedim(-3, -1).numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """uint8 HWC (or NHWC) to float CHW (or NCHW) in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)).float().movedim(-1, -3)
    return tensor / 127.5 - 1.0


def enlarge(images: torch.Tensor, min_size: int) -> torch.Tensor:
    """Nearest-neighbour upscaling by a whole factor so small images stay visible (and pixel-exact) in a grid."""
    factor = max(1, -(-min_size // images.shape[-1]))
    return F.interpolate(images, scale_factor=factor, mode="nearest") if factor > 1 else images


def make_grid(
    images: torch.Tensor, columns: int, padding: int = 2, min_cell: int = 96, background: float = 1.0
) -> torch.Tensor:
    """Tile (N, 3, H, W) images row by row into one (3, H', W') image with a light border between cells.

    torchvision's make_grid lays cells out the same way, but importing torchvision adds seconds to every image
    command's start-up (3.7 s measured on the 2-core machine beside torch's own), for a dozen lines."""
    if images.dim() != 4 or images.shape[0] == 0:
        raise AutomodError("a grid needs a non-empty (N, 3, H, W) batch of images.")
    images = enlarge(images, min_cell)
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = images.new_full(
        (c, rows * (h + padding) + padding, columns * (w + padding) + padding), background
    )
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top : top + h, left : left + w] = images[i]
    return canvas


def save_image(path: Path, image: torch.Tensor | np.ndarray, overwrite: bool = False) -> Path:
    """Write one image ((3, H, W) tensor in [-1, 1] or uint8 HWC array) atomically, in the format its suffix names
    (`outputs.IMAGE_FORMATS`: PNG, JPEG, WebP, BMP, TIFF; any other suffix is refused).

    An existing file is kept unless `overwrite`: outputs never silently replace a user's files. A failed write
    (disk full, permissions: OSError) leaves any earlier file under that name as it was.
    """
    path = Path(path)
    fmt = image_format(path)
    refuse_overwrite(path, overwrite)
    array = to_uint8(image) if isinstance(image, torch.Tensor) else image
    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format=fmt))
    return path
