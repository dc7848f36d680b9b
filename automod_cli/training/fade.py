"""The real images during a fade-in as the authors' loader gives them (Recipe.real_fade = "blended").

While a new resolution R fades in, the decoder's image is α·(its new toRGB) + (1 − α)·(the upsampled image of
the level below). The authors' loader makes the real images alike: each image x at R×R (8-bit, after mirroring) is
shrunk to R/2 with PIL's bilinear filter, blown up again by repeating every pixel 2×2, blended as
α·x + (1 − α)·up(down(x)) in float32 on [0, 1], and truncated back to 8 bits (torchvision's ToPILImage). The result
equals theirs bit for bit (tests/test_parity.py, on their recorded fade-in batches).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_bytes(x: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] (N, 3, H, W) as the uint8 array they were made from."""
    return ((x.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def half_size(images: np.ndarray) -> np.ndarray:
    """PIL's bilinear downscale of each uint8 image (N, 3, H, W) to half its side (their Resize(R/2))."""
    out = []
    for image in images:
        picture = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))
        small = picture.resize((image.shape[2] // 2, image.shape[1] // 2), Image.BILINEAR)
        out.append(np.asarray(small).transpose(2, 0, 1))
    return np.stack(out)


def blend_bytes(hi: np.ndarray, lo: np.ndarray, alpha: float) -> torch.Tensor:
    """α·hi + (1 − α)·(lo with every pixel repeated 2×2) on [0, 1] in float32, truncated to 8 bits, then
    normalised to [-1, 1]: the faded real batch (float32)."""
    sharp = torch.from_numpy(hi).float() / 255
    coarse = torch.from_numpy(lo).float() / 255
    coarse = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    quantised = (sharp * alpha + coarse * (1 - alpha)) * 255
    return (quantised.to(torch.uint8).float() / 255 - 0.5) / 0.5


def blended_real(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """The real batch `x` (in [-1, 1]; on the host, as the loader gives it) as the authors' loader fades it in at
    `alpha`."""
    hi = to_bytes(x)
    return blend_bytes(hi, half_size(hi), alpha).to(x.device)
