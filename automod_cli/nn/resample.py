"""Resolution changes: nearest 2× upsampling, 2× average pooling and the binomial blur filter."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2× upsampling (the fade-in skip path of the decoder)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2× average pooling (the encoder's downsampling and its fade-in skip path)."""
    return F.avg_pool2d(x, kernel_size=2)


class BinomialBlur(nn.Module):
    """Depthwise 3×3 binomial low-pass ([1, 2, 1] ⊗ [1, 2, 1] / 16) with zero padding, as in the authors' code
    (so the border pixels lose some of their mean)."""

    def __init__(self):
        super().__init__()
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        return F.conv2d(x, self.kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)
