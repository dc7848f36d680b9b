"""Exponential moving average of the decoder's weights (PGGAN / NeurIPS Supp. App. A), used for every sample,
evaluation and exported checkpoint."""

from __future__ import annotations

import copy

import torch
from torch import nn


# StyleGAN2-ADA's EMA ramp-up: the half-life never exceeds this share of the images seen so far, so early in a run
# (and in short runs) the average is not dominated by the random initial weights.
EMA_RAMPUP = 0.05


def ema_beta(batch: int, half_life: int, images_seen: int) -> float:
    """The EMA decay for one step of `batch` images: 0.5^(batch / h) with h = min(half_life, 5% of images seen)."""
    h = min(half_life, EMA_RAMPUP * images_seen)
    return 0.5 ** (batch / h) if h > 0 else 0.0


def make_ema(model: nn.Module) -> nn.Module:
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema ← β·ema + (1 − β)·model for parameters (in place, one fused call); buffers are copied."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)
