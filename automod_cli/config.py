"""Typed configuration: the model's shape and the named presets (paper values, each with its source)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from automod_cli.errors import AutomodError

# Channels per resolution level, from 4×4 upwards (level k has resolution 4·2^k).
# Supp. App. A / Fig. 6: encoder 64,128,256,512,512,512,512,512 from high to low resolution; the decoder mirrors it.
PAPER_CHANNELS = (512, 512, 512, 512, 512, 256, 128, 64)
# A narrow network for CPU runs on the built-in dataset (the paper-size net trains at ~1 image/s at 32² on 2 cores).
SMALL_CHANNELS = (128, 128, 96, 64, 32, 16, 8, 8)

DECODERS = ("adain", "classic")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the encoder and decoder; saved inside every checkpoint."""

    max_resolution: int = 256
    latent_dim: int = 512  # NeurIPS Sec. 3.1: z ∈ R^512, normalised to the unit sphere
    channels: tuple[int, ...] = PAPER_CHANNELS
    decoder: str = "adain"  # "adain": automodulator; "classic": latent enters only at the first layer (Balanced PIONEER)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        res = self.max_resolution
        if res < 4 or res & (res - 1):
            raise AutomodError(f"max_resolution must be a power of two ≥ 4, got {res}.")
        if len(self.channels) < self.num_blocks:
            raise AutomodError(
                f"channels lists {len(self.channels)} levels but {res}×{res} needs {self.num_blocks} (one per resolution from 4×4)."
            )
        if any(c < 1 for c in self.channels) or self.latent_dim < 1:
            raise AutomodError("channel counts and latent_dim must be positive.")
        if self.decoder not in DECODERS:
            raise AutomodError(f"unknown decoder '{self.decoder}': choose one of {', '.join(DECODERS)}.")

    @property
    def num_blocks(self) -> int:
        """Resolution blocks from 4×4 to max_resolution (7 for 256²)."""
        return self.max_resolution.bit_length() - 2

    def channels_at(self, level: int) -> int:
        return self.channels[level]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AutomodError(f"model config has unknown fields {unknown}: the file was written by a newer automod.")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


MODEL_PRESETS: dict[str, ModelConfig] = {
    "paper": ModelConfig(),
    "small": ModelConfig(max_resolution=64, latent_dim=128, channels=SMALL_CHANNELS),
}


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """A named model shape with some fields replaced (e.g. max_resolution)."""
    if name not in MODEL_PRESETS:
        raise AutomodError(f"unknown model preset '{name}': choose one of {', '.join(MODEL_PRESETS)}.")
    return dataclasses.replace(MODEL_PRESETS[name], **overrides)
