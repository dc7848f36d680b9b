"""The progressive encoder φ (Supp. App. A): per resolution two 3×3 convs, each conv → spectral norm → leaky ReLU,
then 2× average pooling; fromRGB per resolution for growth with fade-in; a 4×4 head maps to the unit-norm latent."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.models.latents import normalize
from automod_cli.nn.resample import downsample

SLOPE = 0.2


def sn_conv(in_channels: int, out_channels: int, kernel_size: int, padding: int) -> nn.Module:
    """Spectrally normalised conv with zero-initialised bias (PGGAN). PyTorch's default random bias is not
    normalised: after a stack of 1-Lipschitz layers it would outweigh the signal and send every image to nearly
    the same latent."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv)


class EncoderBlock(nn.Module):
    """Halves the resolution: conv(C_in→C_in) → conv(C_in→C_out) → avg-pool, each conv spectrally normalised."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = sn_conv(in_channels, in_channels, 3, 1)
        self.conv2 = sn_conv(in_channels, out_channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), SLOPE)
        return downsample(F.leaky_relu(self.conv2(x), SLOPE))


class EncoderHead(nn.Module):
    """The 4×4 block: 3×3 conv, 4×4 valid conv to a vector, linear map to the latent, projection to the sphere."""

    def __init__(self, channels: int, latent_dim: int):
        super().__init__()
        self.conv = sn_conv(channels, channels, 3, 1)
        self.collapse = sn_conv(channels, channels, 4, 0)
        # no bias: after the 1-Lipschitz layers the features are small, and a bias would dominate the direction
        # of every latent (all inputs would map near one point of the sphere)
        self.linear = spectral_norm(nn.Linear(channels, latent_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv(x), SLOPE)
        x = F.leaky_relu(self.collapse(x), SLOPE).flatten(1)
        return normalize(self.linear(x))


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.num_blocks = config.num_blocks
        self.from_rgb = nn.ModuleList(sn_conv(3, config.channels_at(i), 1, 0) for i in range(self.num_blocks))
        # blocks[i - 1] takes resolution 4·2^i down to 4·2^(i-1); the 4×4 level is the head
        self.blocks = nn.ModuleList(
            EncoderBlock(config.channels_at(i), config.channels_at(i - 1)) for i in range(1, self.num_blocks)
        )
        self.head = EncoderHead(config.channels_at(0), config.latent_dim)

    def _rgb(self, level: int, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.from_rgb[level](x), SLOPE)

    def forward(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        """Encode 4·2^level images; with alpha < 1 the new top block is blended with the pooled input's old path."""
        if not 0 <= level < self.num_blocks:
            raise AutomodError(f"level {level} is outside this encoder's 0..{self.num_blocks - 1}.")
        expected = 4 * 2**level
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != (expected, expected):
            raise AutomodError(f"the encoder at this stage takes (N, 3, {expected}, {expected}) images, got {tuple(x.shape)}.")
        h = self._rgb(level, x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1.0:
                h = torch.lerp(self._rgb(level - 1, downsample(x)), h, alpha)
        for i in range(level - 1, 0, -1):
            h = self.blocks[i - 1](h)
        return self.head(h)
