"""Where in progressive growth an encoder–decoder pair stands: its level and fade-in α, shared by the
automodulator and LIA models."""

from __future__ import annotations

from torch import nn

from automod_cli.config import ModelConfig, level_resolution
from automod_cli.errors import AutomodError


class ProgressiveModel(nn.Module):
    """An encoder–decoder pair grown progressively from 4×4 (NeurIPS Sec. 3.1): `level` is the resolution level it
    has been trained up to (4·2^level pixels) and `alpha` that level's fade-in; encode/decode use them unless
    told otherwise. `model_config` is the shape of the networks."""

    def __init__(self, model_config: ModelConfig, level: int | None = None, alpha: float = 1.0):
        super().__init__()
        self.model_config = model_config
        self.level = model_config.num_blocks - 1 if level is None else int(level)
        self.alpha = float(alpha)
        if not 0 <= self.level < model_config.num_blocks:
            raise AutomodError(f"level {self.level} is outside 0..{model_config.num_blocks - 1}.")

    @property
    def resolution(self) -> int:
        return level_resolution(self.level)

    @property
    def num_active_blocks(self) -> int:
        """Decoder blocks that run at the trained level (level + 1, and one more with an active support block)."""
        return self.model_config.active_blocks(self.level)

    @property
    def block_levels(self) -> tuple[int, ...]:
        """The resolution level of each active decoder block (ModelConfig.block_levels)."""
        return self.model_config.block_levels[: self.num_active_blocks]
