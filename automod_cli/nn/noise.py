"""Layer noise (Supp. Fig. 6b): fresh per-pixel Gaussian noise in every activation map, with a learned strength
per channel (the authors' code)."""

from __future__ import annotations

import torch
from torch import nn


class LayerNoise(nn.Module):
    """Adds `strength[c] · N(0, 1)` to every activation of channel c; the strengths start at 0 (authors' code)."""

    def __init__(self, channels: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, enabled: bool) -> torch.Tensor:
        if not enabled:
            return x
        return x + torch.randn_like(x) * self.strength.view(1, -1, 1, 1)
