"""AdaIN modulation driven by a latent (NeurIPS Eq. 3, Supp. App. B).

Each decoder conv layer owns one affine map g_i: z -> (s_i, m_i) with 2·C outputs. Every activation map
is normalised to zero mean / unit std over its spatial positions, then rescaled to std s and mean m.
"""

from __future__ import annotations

import torch
from torch import nn

from automod_cli.nn.equalized import EqualLinear


def adaptive_instance_norm(x: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Give every (sample, channel) map of `x` (N, C, H, W) the std `scale` and mean `mean` (both (N, C))."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    centred = x - mu
    std = torch.sqrt(centred.pow(2).mean(dim=(2, 3), keepdim=True) + eps)
    return scale[:, :, None, None] * (centred / std) + mean[:, :, None, None]


class AdaIN(nn.Module):
    """AdaIN whose per-channel (std, mean) come from a learned affine map of the latent z."""

    def __init__(self, channels: int, latent_dim: int, latent_gain: float | None = None):
        super().__init__()
        self.channels = channels
        # Latents on the unit sphere have entries ~1/√D; scaled by √D (the default gain) they have unit RMS (as a
        # pixel-normalised StyleGAN w has) and the styles vary by O(1) with z from the start. N(0, I) latents
        # already have unit RMS and take gain 1.
        self.latent_gain = latent_dim**0.5 if latent_gain is None else latent_gain
        # Gain 1: the map is linear. Scales start at 1 and means at 0, so at initialisation AdaIN is plain
        # instance normalisation whatever z is.
        self.affine = EqualLinear(latent_dim, 2 * channels, gain=1.0)
        with torch.no_grad():
            self.affine.bias[:channels] = 1.0

    def style(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (std, mean) pair, each (N, C), that z asks for."""
        params = self.affine(z * self.latent_gain)
        return params[:, : self.channels], params[:, self.channels :]

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        scale, mean = self.style(z)
        return adaptive_instance_norm(x, scale, mean)
