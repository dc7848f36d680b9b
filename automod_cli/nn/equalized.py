"""Equalised learning rate (Karras et al., PGGAN): weights stored ~N(0, 1), scaled by He's constant at run time.

Scaling at run time instead of at initialisation makes Adam's per-parameter step sizes comparable across
layers of different fan-in; every decoder conv uses it (DESIGN §3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def he_constant(fan_in: int, gain: float = math.sqrt(2.0)) -> float:
    """He et al.'s std for a layer with `fan_in` inputs: gain / sqrt(fan_in)."""
    return gain / math.sqrt(fan_in)


class EqualConv2d(nn.Module):
    """Conv with 'same' padding whose weight is multiplied by the He constant in every forward pass.

    As in the authors' code, the run-time weight is `weight · √(2 / fan_in) · weight_gain`: `weight_gain` is a
    stored factor (1 for every layer automod builds) that is never trained. It is kept so that a checkpoint of
    the authors' format, whose gains may differ from 1, imports exactly (automod_cli/authors.py)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2.0)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("weight_gain", torch.ones(1))
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale * self.weight_gain, self.bias, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with run-time He scaling; `bias_init` sets the initial bias."""

    def __init__(
        self, in_features: int, out_features: int, gain: float = math.sqrt(2.0), bias_init: float = 0.0
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = he_constant(in_features, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)
