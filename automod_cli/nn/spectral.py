"""Spectral normalisation as the authors' code computes it (Miyato et al. 2018, one power-iteration step per call).

The layer keeps a vector u (out_channels × 1) between calls. Every forward pass takes one power step from it,
v = normalise(Wᵀu), u' = normalise(W v), estimates the top singular value as σ = u'ᵀ W v and divides the weight by
σ; gradients flow through v, u' and σ. In training mode u' replaces u; in evaluation mode u stays as stored, so a
model gives the same codes however often it is called (the authors freeze it the same way when they evaluate).
PyTorch's own `spectral_norm` differs in three ways that move the codes of a converted checkpoint: its u and v
are constants for autograd, it stores v as well, and in evaluation mode it takes no step (σ = uᵀ W v from the
stored pair; about 4e-3 on the fixtures' codes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from automod_cli.nn.autocast import autocast_off


class SNConv2d(nn.Module):
    """A conv whose weight is divided by its estimated spectral norm in every call (see the module docstring).
    `weight` is the unnormalised weight; `u` (a persistent buffer) is the power iteration's state."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_normal_(self.weight)
        # zero bias (PGGAN, and the authors' code): a random bias is not normalised, and after a stack of
        # 1-Lipschitz layers it would outweigh the signal and send every image to nearly the same latent
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("u", torch.randn(out_channels, 1) * 0.1)
        self.padding = padding

    def normalised_weight(self) -> torch.Tensor:
        """The weight divided by σ; in training mode u moves one power step. Always fp32, also under bf16
        autocast (σ from bf16 products would be off by about 1 %)."""
        weight = self.weight
        with autocast_off(weight.device.type):
            matrix = weight.flatten(1)
            v = matrix.t() @ self.u
            v = v / v.norm()
            u = matrix @ v
            u = u / u.norm()
            sigma = u.t() @ matrix @ v
        if self.training:
            self.u = u.detach()  # a new tensor, not an in-place write: autograd still holds the old u
        return weight / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalised_weight(), self.bias, padding=self.padding)
