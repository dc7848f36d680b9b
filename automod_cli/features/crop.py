"""The image window a perceptual metric looks at.

The papers compare faces on a 128×128 window "in the middle of the face" of 256² images (Supp. App. A, G),
following StyleGAN's PPL code: rows 3/8..7/8 and columns 2/8..6/8 of the image, i.e. half the side, shifted
down to cover eyes, nose and mouth of an aligned face. `face` is that window at any resolution (64² of a 128²
model, as the supplement's "128×128 or 64×64"); `center` is the central half; `none` keeps the whole image
(LSUN and other non-face data). Windows wider than 256 pixels are box-downscaled to 256, as StyleGAN does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from automod_cli.errors import AutomodError

CROPS = ("face", "center", "none")
MAX_SIDE = 256  # StyleGAN's PPL downsamples larger crops to this


def crop_side(resolution: int, mode: str) -> int:
    """The width of the `mode` window of a resolution² image, before any downscaling."""
    sides = {"face": 4 * (resolution // 8), "center": resolution // 2, "none": resolution}
    if mode not in sides:
        raise AutomodError(f"unknown crop '{mode}': choose one of {', '.join(CROPS)}.")
    return sides[mode]


def crop(images: torch.Tensor, mode: str) -> torch.Tensor:
    """The `mode` window of (N, C, H, W) images, downscaled to at most 256 pixels wide."""
    height, width = images.shape[-2:]
    if mode == "face":
        row, col = height // 8, width // 8
        images = images[..., 3 * row : 7 * row, 2 * col : 6 * col]
    elif mode == "center":
        images = images[..., height // 4 : height // 4 + height // 2, width // 4 : width // 4 + width // 2]
    elif mode != "none":
        raise AutomodError(f"unknown crop '{mode}': choose one of {', '.join(CROPS)}.")
    if images.shape[-1] == 0:
        raise AutomodError(f"{height}×{width} images are too small for the '{mode}' crop: use --crop none.")
    factor = images.shape[-1] // MAX_SIDE
    return F.avg_pool2d(images, factor) if factor > 1 else images
