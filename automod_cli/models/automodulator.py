"""The encoder–decoder pair, and where in progressive growth it stands (level, fade-in α)."""

from __future__ import annotations

import torch

from automod_cli.config import ModelConfig
from automod_cli.models.decoder import build_decoder
from automod_cli.models.encoder import Encoder
from automod_cli.models.growth import ProgressiveModel
from automod_cli.models.latents import normalize, prior_latents, slerp


class Automodulator(ProgressiveModel):
    """φ and θ of NeurIPS Sec. 3.1. `level` and `alpha` say which resolution the model has been trained up to;
    encode/decode use them unless told otherwise."""

    has_encoder = True
    CONFIG_KEY = "model_config"  # where a checkpoint's metadata keeps this network's config (kinds.ModelKind)

    def __init__(self, config: ModelConfig, level: int | None = None, alpha: float = 1.0):
        super().__init__(config, level, alpha)
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = build_decoder(config)

    def checkpoint_meta(self) -> dict:
        """What a checkpoint needs besides the weights to rebuild this model (`from_checkpoint_meta`)."""
        return {self.CONFIG_KEY: self.config.to_dict(), "level": self.level, "alpha": self.alpha}

    @classmethod
    def from_checkpoint_meta(cls, meta: dict, has_encoder: bool = True) -> "Automodulator":
        """The network `meta` describes, untrained (its weights are loaded next); it always has an encoder."""
        return cls(
            ModelConfig.from_dict(meta[cls.CONFIG_KEY]), level=meta.get("level"), alpha=meta.get("alpha", 1.0)
        )

    @property
    def supports_mixing(self) -> bool:
        return self.decoder.supports_mixing

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, self.level, self.alpha)

    def decode(self, z: torch.Tensor, noise: bool = False) -> torch.Tensor:
        return self.decoder(z, self.level, self.alpha, noise)

    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return prior_latents(n, self.config.latent_dim, self.config.latent, generator=generator).to(device)

    def constrain_latent(self, z: torch.Tensor) -> torch.Tensor:
        """The nearest latent of the model's latent space: onto the unit sphere, or as it is for Gaussian latents."""
        return normalize(z) if self.config.latent == "sphere" else z

    def interpolate_latents(self, a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Points at fractions `t` (T,) on the path from a to b ((D,) each: (T, D); or (T, D) each: a point per
        row). Unit latents follow the great circle (slerp), so every point is again a unit latent; Gaussian
        latents (VAE, WAE) the straight line, as their prior N(0, I) lives in all of R^D."""
        if self.config.latent == "sphere":
            return slerp(a, b, t)
        return torch.lerp(a, b, t.to(a)[:, None])
