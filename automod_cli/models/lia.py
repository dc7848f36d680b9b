"""LIA, the Latently Invertible Autoencoder (Zhu et al.; LIA Sec. 3-4), built from the project's own parts.

    x ─f→ y ─g→ x̃          (encoder f, stage 2)
    z ─φ⁻¹→ y ─g→ x̃        (generator, stage 1; z ~ N(0, I))

The generator is StyleGAN-like: the NICE network (models/nice.py) replaces StyleGAN's mapping MLP and its output
y drives the AdaIN maps of every synthesis layer. The synthesis network is the automodulator decoder, so y can
be assigned per block exactly like an automodulator latent (layer-wise style mixing, LIA Fig. 5). y is an
unconstrained vector, so the networks are built for latents in R^D (ModelConfig.latent = "gaussian"): the AdaIN
maps read y with gain 1, and the encoder f is the project's encoder with its free linear head. The
discriminator c is the same progressive trunk with a scalar score.

`LiaModel` offers the interface of `Automodulator` to the image operations and metrics: its latents are y
(encode returns y, decode takes y, sample_latents draws z and maps it through NICE).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from automod_cli.config import ModelConfig, build_config
from automod_cli.errors import AutomodError
from automod_cli.models.decoder import AutomodulatorDecoder
from automod_cli.models.encoder import Encoder, sn_conv
from automod_cli.models.growth import ProgressiveModel
from automod_cli.models.nice import COUPLING_DEPTH, COUPLING_LAYERS, NICE
from automod_cli.nn.activation import lrelu
from automod_cli.nn.equalized import EqualLinear

KIND = "lia"  # the checkpoint metadata's "kind" for LIA models


@dataclass(frozen=True)
class LiaConfig:
    """Everything needed to rebuild a LIA model; saved inside every LIA checkpoint."""

    # shape of synthesis network, encoder and discriminator; latent_dim is the dimension of z and y
    model: ModelConfig = ModelConfig(latent="gaussian")
    coupling_layers: int = COUPLING_LAYERS  # LIA Sec. 6
    coupling_hidden: int | None = None  # width of each τ; None: latent_dim
    coupling_depth: int = COUPLING_DEPTH

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if self.model.decoder != "adain":
            raise AutomodError("LIA's generator is style-based: it needs the AdaIN decoder, not 'classic'.")
        if self.model.latent != "gaussian" or self.model.variational:
            raise AutomodError(
                "LIA's y is an unconstrained vector: its networks need model.latent=gaussian, not "
                "variational."
            )
        bad_width = self.coupling_hidden is not None and self.coupling_hidden < 1
        if self.coupling_layers < 1 or self.coupling_depth < 0 or bad_width:
            raise AutomodError(
                "LIA needs at least one coupling layer, a coupling depth ≥ 0 and a positive coupling width."
            )

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim

    @property
    def max_resolution(self) -> int:
        return self.model.max_resolution

    @property
    def num_blocks(self) -> int:
        return self.model.num_blocks

    @property
    def decoder(self) -> str:
        return self.model.decoder

    def channels_at(self, level: int) -> int:
        return self.model.channels_at(level)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "model": self.model.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LiaConfig":
        return build_config(
            cls, data, "LIA config has unknown fields {}: the file was written by a newer automod."
        )


class LiaGenerator(nn.Module):
    """g ∘ φ⁻¹: NICE mapping network, then the AdaIN synthesis network driven by y in every block."""

    def __init__(self, config: LiaConfig):
        super().__init__()
        self.latent_dim = config.latent_dim
        self.mapping = NICE(
            config.latent_dim, config.coupling_layers, config.coupling_hidden, config.coupling_depth
        )
        self.synthesis = AutomodulatorDecoder(config.model)

    def synthesize(self, y: torch.Tensor, level: int, alpha: float = 1.0, noise: bool = True) -> torch.Tensor:
        """Images from y, (N, D) or a per-block assignment (N, B, D); every style is an affine map of y."""
        return self.synthesis(y, level, alpha, noise)

    def forward(self, z: torch.Tensor, level: int, alpha: float = 1.0, noise: bool = True) -> torch.Tensor:
        """x̃ = g(φ⁻¹(z)) for prior samples z (N, D) (LIA Eq. 9)."""
        return self.synthesize(self.mapping(z), level, alpha, noise)


class ScoreHead(nn.Module):
    """The discriminator's 4×4 block: spectrally normalised 3×3 and 4×4 valid convs, then a linear score."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = sn_conv(channels, channels, 3, 1)
        self.collapse = sn_conv(channels, channels, 4, 0)
        # not spectrally normalised: the logits' scale must be free to grow (R1 keeps the gradients in check)
        self.linear = EqualLinear(channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv(x))
        x = lrelu(self.collapse(x)).flatten(1)
        return self.linear(x).squeeze(1)


class LiaDiscriminator(Encoder):
    """c: the progressive encoder trunk (fromRGB fade-in, spectrally normalised conv blocks) with a scalar score.
    `forward(x, level, alpha)` returns (N,) logits."""

    def __init__(self, config: LiaConfig):
        super().__init__(config.model)
        self.head = ScoreHead(config.model.encoder_channels_at(0))


class LiaModel(ProgressiveModel):
    """Encoder f and generator g∘φ⁻¹ behind the `Automodulator` interface; the latents are y.

    `has_encoder` is False for a model that has finished only stage 1 (a GAN): it samples and decodes but
    cannot encode."""

    kind = KIND
    CONFIG_KEY = "lia_config"  # where a checkpoint's metadata keeps this network's config (kinds.ModelKind)
    supports_mixing = (
        True  # y drives every synthesis block through AdaIN, one y per block if wished (LIA Fig. 5)
    )

    def __init__(
        self, config: LiaConfig, level: int | None = None, alpha: float = 1.0, has_encoder: bool = True
    ):
        super().__init__(config.model, level, alpha)
        self.config = config
        self.encoder = Encoder(
            config.model
        )  # f: x → y (LIA Eq. 11), the free linear head of Gaussian latents
        self.decoder = LiaGenerator(config)
        self.has_encoder = has_encoder

    def checkpoint_meta(self) -> dict:
        """What a checkpoint needs besides the weights to rebuild this model (`from_checkpoint_meta`): with the kind
        and the stage reached."""
        return {
            "kind": KIND,
            self.CONFIG_KEY: self.config.to_dict(),
            "level": self.level,
            "alpha": self.alpha,
            "stage": 2 if self.has_encoder else 1,
        }

    @classmethod
    def from_checkpoint_meta(cls, meta: dict, has_encoder: bool = True) -> "LiaModel":
        """The network `meta` describes, untrained (its weights are loaded next); `has_encoder` when the file holds
        stage 2's encoder."""
        return cls(
            LiaConfig.from_dict(meta[cls.CONFIG_KEY]),
            level=meta.get("level"),
            alpha=meta.get("alpha", 1.0),
            has_encoder=has_encoder,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """y = f(x) (LIA Eq. 11)."""
        if not self.has_encoder:
            raise AutomodError(
                "this LIA model has finished only stage 1 (the GAN): train stage 2 to get its encoder."
            )
        return self.encoder(x, self.level, self.alpha)

    def decode(self, y: torch.Tensor, noise: bool = False) -> torch.Tensor:
        """x̃ = g(y) for y (N, D) or a per-block assignment (N, B, D)."""
        return self.decoder.synthesize(y, self.level, self.alpha, noise)

    @torch.no_grad()
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """y = φ⁻¹(z) for n prior samples z ~ N(0, I) drawn on the CPU (from `generator` if given)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        return self.decoder.mapping(z)

    def to_prior(self, y: torch.Tensor) -> torch.Tensor:
        """z = φ(y): the prior coordinates of a y, exactly (LIA Sec. 3.1)."""
        return self.decoder.mapping.inverse(y)

    def constrain_latent(self, y: torch.Tensor) -> torch.Tensor:
        """y-space is unconstrained (LIA Eq. 13 optimises y freely): latents are returned as they are."""
        return y

    def interpolate_latents(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Points at fractions `t` (T,) on the straight line from a to b ((D,) each: (T, D); or (T, D) each: a point
        per row): y-space is where linear interpolation is meaningful (LIA Sec. 3.1, Fig. 7)."""
        return torch.lerp(a, b, t.to(a)[:, None])
