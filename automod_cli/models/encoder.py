"""The progressive encoder φ (Supp. App. A), laid out as in the authors' code: fromRGB per resolution (a plain 1×1
conv, no activation) for growth with fade-in; per resolution a block of two spectrally normalised 3×3 convs, each
followed by leaky ReLU, the first changing the width, then 2× average pooling; a 4×4 head maps to the unit-norm
latent."""

from __future__ import annotations

import torch
from torch import nn

from automod_cli.config import ModelConfig, level_resolution
from automod_cli.errors import AutomodError
from automod_cli.models.latents import normalize
from automod_cli.nn.activation import lrelu
from automod_cli.nn.resample import downsample
from automod_cli.nn.spectral import SNConv2d


def sn_conv(in_channels: int, out_channels: int, kernel_size: int, padding: int) -> SNConv2d:
    """Spectrally normalised conv with zero-initialised bias (nn/spectral.py)."""
    return SNConv2d(in_channels, out_channels, kernel_size, padding)


def from_rgb(channels: int) -> nn.Conv2d:
    """A plain 1×1 conv from RGB (no spectral norm, no activation: the authors' code), with zero bias."""
    conv = nn.Conv2d(3, channels, 1)
    nn.init.zeros_(conv.bias)
    return conv


class EncoderBlock(nn.Module):
    """Halves the resolution: conv(C_in→C_out) → conv(C_out→C_out) → avg-pool, each conv spectrally
    normalised."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = sn_conv(in_channels, out_channels, 3, 1)
        self.conv2 = sn_conv(out_channels, out_channels, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv1(x))
        return downsample(lrelu(self.conv2(x)))


class EncoderHead(nn.Module):
    """The 4×4 block: a 3×3 conv to the latent width, leaky ReLU, a 4×4 valid conv to the D-vector with no
    activation, projection to the unit sphere (the authors' code; NeurIPS Sec. 3.1)."""

    def __init__(self, channels: int, latent_dim: int):
        super().__init__()
        self.conv = sn_conv(channels, latent_dim, 3, 1)
        self.collapse = sn_conv(latent_dim, latent_dim, 4, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv(x))
        return normalize(self.collapse(x).flatten(1))


class GaussianHead(nn.Module):
    """The 4×4 block for latents in R^D with the prior N(0, I) (the VAE and WAE baselines): as EncoderHead, but the
    linear map is neither spectrally normalised nor followed by a projection. The 1-Lipschitz trunk shrinks image
    differences (every 2× average pool halves them), so only a free last layer can spread the codes as far apart as
    N(0, I) samples lie (‖z − z'‖ ≈ √(2D)). A variational head has 2·D outputs, the mean and log-variance of
    q(z|x); `forward` gives the mean."""

    def __init__(self, channels: int, latent_dim: int, variational: bool):
        super().__init__()
        self.latent_dim = latent_dim
        self.conv = sn_conv(channels, channels, 3, 1)
        self.collapse = sn_conv(channels, channels, 4, 0)
        self.linear = nn.Linear(channels, 2 * latent_dim if variational else latent_dim)
        nn.init.zeros_(self.linear.bias)  # log-variances start at 0: q(z|x) starts with unit variance

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv(x))
        return self.linear(lrelu(self.collapse(x)).flatten(1))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of a variational head, each (N, D)."""
        mean, log_var = self._outputs(x).split(self.latent_dim, dim=1)
        return mean, log_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._outputs(x)[:, : self.latent_dim]


class Encoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.num_blocks = config.num_blocks
        width = config.encoder_channels_at
        self.from_rgb = nn.ModuleList(from_rgb(width(i)) for i in range(self.num_blocks))
        # blocks[i - 1] takes resolution 4·2^i down to 4·2^(i-1); the 4×4 level is the head
        self.blocks = nn.ModuleList(EncoderBlock(width(i), width(i - 1)) for i in range(1, self.num_blocks))
        if config.latent == "sphere":
            self.head = EncoderHead(width(0), config.latent_dim)
        else:
            self.head = GaussianHead(width(0), config.latent_dim, config.variational)

    def _rgb(self, level: int, x: torch.Tensor) -> torch.Tensor:
        return self.from_rgb[level](x)

    def forward(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        """Encode 4·2^level images; with alpha < 1 the new top block is blended with the pooled input's old path.
        A variational encoder returns the mean of q(z|x)."""
        return self.head(self.features(x, level, alpha))

    def posterior(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(z|x) for a variational encoder (the VAE baseline)."""
        if not self.config.variational:
            raise AutomodError(
                "this encoder is deterministic: only a variational (VAE) encoder has a posterior."
            )
        return self.head.posterior(self.features(x, level, alpha))

    def features(self, x: torch.Tensor, level: int, alpha: float = 1.0) -> torch.Tensor:
        """The 4×4 feature map the head reads."""
        if not 0 <= level < self.num_blocks:
            raise AutomodError(f"level {level} is outside this encoder's 0..{self.num_blocks - 1}.")
        expected = level_resolution(level)
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != (expected, expected):
            raise AutomodError(
                f"the encoder at this stage takes (N, 3, {expected}, {expected}) images, got "
                f"{tuple(x.shape)}."
            )
        h = self._rgb(level, x)
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1.0:
                h = torch.lerp(self._rgb(level - 1, downsample(x)), h, alpha)
        for i in range(level - 1, 0, -1):
            h = self.blocks[i - 1](h)
        return h
