"""Layer noise (Supp. Fig. 6b): fresh per-pixel Gaussian noise in every activation map, one learned scale per layer."""

from __future__ import annotations

import torch
from torch import nn


class LayerNoise(nn.Module):
    """Adds `strength · N(0, 1)` to every activation; the single strength starts at 0 (authors' code)."""

    def __init__(self):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, enabled: bool) -> torch.Tensor:
        if not enabled:
            return x
        return x + self.strength * torch.randn_like(x)
