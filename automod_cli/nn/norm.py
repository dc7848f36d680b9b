"""Pixelwise feature normalisation (PGGAN), used by the classic decoder in place of AdaIN."""

from __future__ import annotations

import torch
from torch import nn


class PixelNorm(nn.Module):
    """Scale the feature vector at every pixel to unit root-mean-square over channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)
