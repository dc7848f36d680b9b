"""Layer noise (Supp. Fig. 6b): fresh per-pixel Gaussian noise in every activation map, with a learned strength
per channel (the authors' code)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class LayerNoise(nn.Module):
    """Adds `strength[c] · N(0, 1)` to every activation of channel c; the strengths start at 0 (authors' code)."""

    def __init__(self, channels: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: bool | Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """`noise`: False (none), True (drawn here) or a function that gives the standard normal noise for x
        (training/draws.py: the step's draws)."""
        if noise is False:
            return x
        draw = torch.randn_like(x) if noise is True else noise(x)
        return x + draw * self.strength.view(1, -1, 1, 1)
