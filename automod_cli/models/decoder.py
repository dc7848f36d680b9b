"""Decoders: the automodulator (AdaIN in every conv layer) and the classic one (latent only at the input).

Both grow progressively: level i produces a 4·2^i canvas, `to_rgb[i]` turns it into an image, and while a new
level fades in, its image is blended with the nearest-upsampled image of the level below (PGGAN fade-in).
Each level has one block, except that an automodulator may have a support block (ModelConfig.support_block):
an extra block on the level of the block before it, which runs whenever that level does. Blocks are addressed by
index. They share one interface: `forward(z, level, alpha, noise)` where z is (N, D) or a per-block assignment
(N, B, D) for the B = `active_blocks(level)` blocks that run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.models.latents import per_block
from automod_cli.nn.activation import lrelu
from automod_cli.nn.equalized import EqualConv2d, EqualLinear
from automod_cli.nn.modulation import AdaIN
from automod_cli.nn.noise import LayerNoise
from automod_cli.nn.norm import PixelNorm
from automod_cli.nn.resample import BinomialBlur, upsample


def block_noise(noise: bool | Callable, block: int) -> bool | Callable:
    """The layer-noise setting of one block: on/off as given, or the noise function bound to the block's index."""
    return noise if isinstance(noise, bool) else partial(noise, block)


class ModulatedBlock(nn.Module):
    """One resolution of the automodulator (Supp. Fig. 6b, the authors' code):
    [upsample] → conv → blur → noise → act → AdaIN, then conv → noise → act → AdaIN; both AdaINs read
    the same z."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        latent_dim: int,
        grows: bool,
        style_input_scale: float = 1.0,
    ):
        super().__init__()
        self.grows = grows
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.blur = BinomialBlur()
        self.noise1 = LayerNoise(out_channels)
        self.adain1 = AdaIN(out_channels, latent_dim, style_input_scale)
        self.conv2 = EqualConv2d(out_channels, out_channels, 3)
        self.noise2 = LayerNoise(out_channels)
        self.adain2 = AdaIN(out_channels, latent_dim, style_input_scale)

    def forward(self, x: torch.Tensor, z: torch.Tensor, noise: bool | Callable) -> torch.Tensor:
        """`noise`: False, True, or a function (k, like) → the noise after conv k + 1 (training/draws.py)."""
        if self.grows:
            x = upsample(x)
        x = self.conv1(x)
        x = self.blur(x)
        x = self.noise1(x, block_noise(noise, 0))
        x = self.adain1(lrelu(x), z)
        x = self.conv2(x)
        x = self.noise2(x, block_noise(noise, 1))
        return self.adain2(lrelu(x), z)


class ConstantBlock(nn.Module):
    """The 4×4 block of the automodulator: one conv on the constant input → act → AdaIN (no blur, no layer
    noise), as in the authors' code."""

    def __init__(self, channels: int, latent_dim: int, style_input_scale: float = 1.0):
        super().__init__()
        self.conv = EqualConv2d(channels, channels, 3)
        self.adain = AdaIN(channels, latent_dim, style_input_scale)

    def forward(self, x: torch.Tensor, z: torch.Tensor, noise: bool | Callable) -> torch.Tensor:
        return self.adain(lrelu(self.conv(x)), z)


class ClassicBlock(nn.Module):
    """PGGAN-style generator block: [upsample] → (conv → act → pixel norm) × 2. The latent never enters here."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualConv2d(out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(lrelu(self.conv1(upsample(x))))
        return self.norm(lrelu(self.conv2(x)))


class _ProgressiveDecoder(nn.Module):
    """Growth, fade-in and canvas retrieval; subclasses say how the input starts and how a block runs."""

    rgb_gain = 1.0  # pixel-normalised features have unit RMS: gain 1 gives images of about unit std

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.num_levels = config.num_blocks
        self.block_levels = config.block_levels  # the resolution level of each block
        self.num_blocks = len(self.block_levels)
        # toRGB: a plain linear 1×1 read-out per level (the authors' code), its initial weights ~N(0, rgb_gain²/C)
        # (set by the subclass) and zero bias
        self.to_rgb = nn.ModuleList(self._to_rgb(config.channels_at(i)) for i in range(self.num_levels))

    def _to_rgb(self, channels: int) -> nn.Conv2d:
        conv = nn.Conv2d(channels, 3, 1)
        with torch.no_grad():
            conv.weight.normal_(0.0, self.rgb_gain / channels**0.5)
            conv.bias.zero_()
        return conv

    def _start(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _block(self, index: int, x: torch.Tensor, z: torch.Tensor, noise: bool) -> torch.Tensor:
        raise NotImplementedError

    def _check_level(self, level: int) -> None:
        if not 0 <= level < self.num_levels:
            raise AutomodError(f"level {level} is outside this decoder's 0..{self.num_levels - 1}.")

    def active_blocks(self, level: int) -> int:
        """How many blocks run when decoding at `level` (level + 1 without a support block)."""
        return self.config.active_blocks(level)

    def canvas(self, z: torch.Tensor, upto: int, noise: bool | Callable = True) -> torch.Tensor:
        """ξ^(upto): the feature map after blocks 0..upto-1 (NeurIPS Eq. 4's θ_{1:j}(ξ0, z) with j = upto). `noise`
        as in `forward`."""
        if not 1 <= upto <= self.num_blocks:
            raise AutomodError(
                f"a canvas after {upto} blocks is outside this decoder's 1..{self.num_blocks}."
            )
        zs = per_block(z, upto)
        x = self._start(zs[:, 0])
        for i in range(upto):
            x = self._block(i, x, zs[:, i], block_noise(noise, i))
        return x

    def forward(
        self,
        z: torch.Tensor,
        level: int,
        alpha: float = 1.0,
        noise: bool | Callable = True,
        canvas_at: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Decode to a 4·2^level image; with alpha < 1 the top level is blended with the upsampled level below.
        With `canvas_at` = j, also return ξ^(j), the canvas after blocks 0..j-1 of this very pass (its noise
        included): (image, canvas). `noise`: layer noise off (False), drawn by each layer (True), or a function
        (block, k, like) → the noise, which training's draws give (training/draws.py)."""
        self._check_level(level)
        blocks = self.active_blocks(level)
        zs = per_block(z, blocks)
        x = self._start(zs[:, 0])
        previous_rgb = canvas = None
        first_of_level = self.block_levels.index(level)
        for i in range(blocks):
            if i == first_of_level and level > 0 and alpha < 1.0:
                previous_rgb = self.to_rgb[level - 1](x)
            x = self._block(i, x, zs[:, i], block_noise(noise, i))
            if i + 1 == canvas_at:
                canvas = x
        rgb = self.to_rgb[level](x)
        if previous_rgb is not None:
            rgb = torch.lerp(upsample(previous_rgb), rgb, alpha)
        if canvas_at is not None:
            if canvas is None:
                raise AutomodError(
                    f"a canvas after {canvas_at} blocks is outside the 1..{blocks} blocks that run at "
                    f"level {level}."
                )
            return rgb, canvas
        return rgb


class AutomodulatorDecoder(_ProgressiveDecoder):
    """The automodulator decoder: a constant canvas of ones (Supp. App. B) modulated by z in every layer."""

    supports_mixing = True
    # AdaIN's outputs have RMS ≈ 1.7 per channel at initialisation (scales 1 ± 1, means ± 1 from unit-RMS latents),
    # so a gain-1 read-out starts with pixels of std ≈ 2 (±8 over a batch) against data in [−1, 1]. The encoder
    # then tells generated from real images apart trivially and the AGE game stalls (docs/architecture.md, "Training
    # status"); gain 0.2 starts the images at about the data's spread.
    rgb_gain = 0.2

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.register_buffer("constant", torch.ones(1, config.channels_at(0), 4, 4), persistent=False)
        levels = self.block_levels
        # a block grows (upsamples) when it starts a new level; the support block stays on its predecessor's level
        scale = config.style_input_scale
        self.blocks = nn.ModuleList(
            ModulatedBlock(
                config.channels_at(levels[i - 1]),
                config.channels_at(level),
                config.latent_dim,
                grows=level > levels[i - 1],
                style_input_scale=scale,
            )
            if i > 0
            else ConstantBlock(config.channels_at(0), config.latent_dim, scale)
            for i, level in enumerate(levels)
        )

    def _start(self, z: torch.Tensor) -> torch.Tensor:
        return self.constant.expand(z.shape[0], -1, -1, -1)

    def _block(self, index: int, x: torch.Tensor, z: torch.Tensor, noise: bool) -> torch.Tensor:
        return self.blocks[index](x, z, noise)


class ClassicDecoder(_ProgressiveDecoder):
    """Balanced PIONEER's decoder: z → 4×4 canvas by a dense layer, then plain conv blocks (no AdaIN, no noise)."""

    supports_mixing = False

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        c0 = config.channels_at(0)
        self.dense = EqualLinear(
            config.latent_dim, c0 * 16, gain=2.0**0.5 / 4
        )  # PGGAN's gain for the 4×4 input layer
        self.conv0 = EqualConv2d(c0, c0, 3)
        self.norm = PixelNorm()
        self.blocks = nn.ModuleList(
            ClassicBlock(config.channels_at(i - 1), config.channels_at(i)) for i in range(1, self.num_levels)
        )

    def _start(self, z: torch.Tensor) -> torch.Tensor:
        # latent scaled to unit RMS per entry (PGGAN pixel-normalises its latent the same way)
        return self.dense(z * self.config.latent_gain).view(z.shape[0], -1, 4, 4)

    def _block(self, index: int, x: torch.Tensor, z: torch.Tensor, noise: bool) -> torch.Tensor:
        if index == 0:
            x = self.norm(lrelu(x))
            return self.norm(lrelu(self.conv0(x)))
        return self.blocks[index - 1](x)

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0, noise: bool = True) -> torch.Tensor:
        # an (N, D) latent expanded over blocks (stride 0), or one block's latent, is one latent by construction:
        # checking it would wait on the device in every training step (tests/test_host_sync.py)
        if (
            z.dim() == 3
            and z.shape[1] > 1
            and z.stride(1) != 0
            and not torch.equal(z[:, : level + 1], z[:, :1].expand(-1, level + 1, -1))
        ):
            raise AutomodError(
                "a classic decoder takes one latent for all layers: mixing needs an AdaIN "
                "(automodulator) model."
            )
        return super().forward(z, level, alpha, noise)


def build_decoder(config: ModelConfig) -> _ProgressiveDecoder:
    return AutomodulatorDecoder(config) if config.decoder == "adain" else ClassicDecoder(config)
