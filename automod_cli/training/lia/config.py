"""LIA's training settings: the project's TrainConfig (data, progressive schedule, Adam, EMA, bookkeeping) plus the
LIA-specific network shape and loss weights (LIA Sec. 4 and 6).

Stage 1 trains the generator and discriminator through the TrainConfig's progressive schedule (4² up to the
target, with fade-in). Stage 2 trains the encoder at the target resolution for `encoder_images` more images,
with the batch size and learning rate of the last phase. Images are counted across both stages, so a run's
checkpoints sort in training order and `images_seen ≥ stage1_images` means stage 2 has begun.

The automodulator game's own settings in TrainConfig (KL margins, λ_X, λ_Z, the reconstruction distance, L_j,
mixing fractions) play no part in LIA training.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from automod_cli.config import TrainConfig, build_config
from automod_cli.presets import resolve_train_config
from automod_cli.errors import AutomodError
from automod_cli.models.lia import LiaConfig
from automod_cli.models.nice import COUPLING_DEPTH, COUPLING_LAYERS

R1_GAMMA = 10.0  # LIA Sec. 6: γ = 10
PERCEPTUAL_WEIGHT = 5e-5  # LIA Sec. 6: β1 = 5e-5 on the VGG conv4_3 feature distance
ADVERSARIAL_WEIGHT = (
    0.1  # LIA Sec. 6: β2 = 0.1 (on the adversarial term, as the authors' code; see lia/steps.py)
)


@dataclass(frozen=True)
class LiaTrainConfig:
    """Everything a LIA run needs; saved in the run directory and in every checkpoint."""

    train: (
        TrainConfig  # data, progressive schedule (stage 1), Adam, EMA, mirror, layer noise, seed, bookkeeping
    )
    coupling_layers: int = COUPLING_LAYERS
    coupling_hidden: int | None = None  # width of each τ; None: the latent dimension
    coupling_depth: int = COUPLING_DEPTH
    r1_gamma: float = R1_GAMMA
    perceptual_weight: float = PERCEPTUAL_WEIGHT
    adversarial_weight: float = ADVERSARIAL_WEIGHT
    encoder_images: int | None = (
        None  # stage-2 length; None: as long as the last stage-1 phase (the paper gives none)
    )

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            object.__setattr__(self, "train", TrainConfig.from_dict(self.train))
        if self.r1_gamma < 0 or self.perceptual_weight < 0 or self.adversarial_weight < 0:
            raise AutomodError("LIA's r1_gamma, perceptual_weight and adversarial_weight must be ≥ 0.")
        if self.train.time_budget_min is not None:
            raise AutomodError(
                "a time budget shortens an automodulator run's last phase; LIA's stage lengths are fixed when it "
                "starts: leave time_budget_min unset for --model lia."
            )
        if self.encoder_images is not None and self.encoder_images <= 0:
            raise AutomodError("encoder_images (the length of LIA's stage 2) must be positive.")
        _ = self.network  # refuses an unusable network shape (classic decoder, bad coupling sizes) now

    @property
    def network(self) -> LiaConfig:
        """The LIA networks: the TrainConfig's model shape with unconstrained latents (y lives in R^D)."""
        model = dataclasses.replace(self.train.model, latent="gaussian", variational=False)
        return LiaConfig(model, self.coupling_layers, self.coupling_hidden, self.coupling_depth)

    @property
    def stage1_images(self) -> int:
        return self.train.total_images

    @property
    def stage2_images(self) -> int:
        top = self.train.resolutions[-1]
        return self.train.phase_images[top] if self.encoder_images is None else self.encoder_images

    @property
    def total_images(self) -> int:
        return self.stage1_images + self.stage2_images

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["train"] = self.train.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LiaTrainConfig":
        return build_config(cls, data, "unknown LIA setting(s) {}; see `automod train --help` for the names.")


LIA_SETTINGS = tuple(f.name for f in dataclasses.fields(LiaTrainConfig) if f.name != "train")


def resolve_lia_config(preset: str, overrides: dict[str, Any] | None = None) -> LiaTrainConfig:
    """A TrainConfig preset with overrides (as `resolve_train_config`), where the names in LIA_SETTINGS
    (r1_gamma=5, encoder_images=20000, ...) set LIA's own fields instead. Values may be JSON text."""
    train_overrides, lia = {}, {}
    for key, value in (overrides or {}).items():
        (lia if key in LIA_SETTINGS else train_overrides)[key] = value
    # refused here, before TrainConfig's own classic checks
    if train_overrides.get("model.decoder", "adain") != "adain":
        raise AutomodError("LIA's generator is style-based: it needs the AdaIN decoder, not 'classic'.")
    parsed = {key: _json_value(value) for key, value in lia.items()}
    return LiaTrainConfig(resolve_train_config(preset, train_overrides), **parsed)


def _json_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise AutomodError(f"LIA setting value '{value}' is not a number or null.") from None
