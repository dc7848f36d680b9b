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
SMALL_CHANNELS = (64, 64, 48, 32, 32, 16, 8, 8)

DECODERS = ("adain", "classic")
# "sphere": unit-norm latents (automodulator, PIONEER; NeurIPS Sec. 3.1); "gaussian": latents in R^D with the prior
# N(0, I) (the VAE and WAE baselines of NeurIPS Table 2a).
LATENTS = ("sphere", "gaussian")


def level_resolution(level: int) -> int:
    """The image side of a level: level i works at 4·2^i pixels (4² is level 0)."""
    return 4 * 2**level


def _is_number(value: Any, whole: bool) -> bool:
    """Whether `value` is a real number (an integer when `whole`); booleans are not numbers here."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if whole else isinstance(value, (int, float))


def build_config(cls, data: dict[str, Any], unknown_message: str):
    """A config dataclass from a dict, refusing names it does not know (with `unknown_message`)."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise AutomodError(unknown_message.format(unknown))
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the encoder and decoder; saved inside every checkpoint."""

    max_resolution: int = 256
    latent_dim: int = 512  # NeurIPS Sec. 3.1: z ∈ R^512, normalised to the unit sphere
    channels: tuple[int, ...] = PAPER_CHANNELS
    # "adain": automodulator; "classic": latent enters only at the first layer (Balanced PIONEER)
    decoder: str = "adain"
    latent: str = "sphere"  # see LATENTS
    # the encoder predicts a mean and a log-variance per dimension (VAE); encode() gives the mean
    variational: bool = False
    # An extra decoder block at index J, after block J-1 and at its resolution (no upsampling), that flip invariance
    # adds so blocks ≥ J keep their capacity (NeurIPS Sec. 4: J = 2, "an extra 8×8 layer after layer #2"); 0 = none
    support_block: int = 0
    # The encoder's width per level, from 4×4 upwards (its fromRGB output and the width its block at that level
    # reads); None: the decoder's `channels`. The authors' default ("balanced") network is twice as wide in the
    # decoder as in the encoder from 64² up (AUTHORS_DECODER_CHANNELS / AUTHORS_ENCODER_CHANNELS).
    encoder_channels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("max_resolution", "latent_dim", "support_block"):
            if not _is_number(getattr(self, name), True):
                raise AutomodError(f"model.{name} must be a whole number, got {getattr(self, name)!r}.")
        if not isinstance(self.variational, bool):
            raise AutomodError(f"model.variational must be true or false, got {self.variational!r}.")
        for name in ("channels", "encoder_channels"):
            widths = getattr(self, name)
            if widths is None:
                continue
            if isinstance(widths, (str, bytes)) or not all(_is_number(c, True) for c in widths):
                raise AutomodError(f"model.{name} must be a list of whole numbers (e.g. [64,64,48]), got {widths!r}.")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.encoder_channels is not None:
            object.__setattr__(self, "encoder_channels", tuple(int(c) for c in self.encoder_channels))
        res = self.max_resolution
        if res < 4 or res & (res - 1):
            raise AutomodError(f"max_resolution must be a power of two ≥ 4, got {res}.")
        if len(self.channels) < self.num_blocks:
            raise AutomodError(
                f"channels lists {len(self.channels)} levels but {res}×{res} needs {self.num_blocks} (one per "
                "resolution from 4×4)."
            )
        if self.encoder_channels is not None and len(self.encoder_channels) < self.num_blocks:
            raise AutomodError(
                f"encoder_channels lists {len(self.encoder_channels)} levels but {res}×{res} needs {self.num_blocks} "
                "(one per resolution from 4×4)."
            )
        if any(c < 1 for c in (*self.channels, *(self.encoder_channels or ()))) or self.latent_dim < 1:
            raise AutomodError("channel counts and latent_dim must be positive.")
        if self.decoder not in DECODERS:
            raise AutomodError(f"unknown decoder '{self.decoder}': choose one of {', '.join(DECODERS)}.")
        if self.latent not in LATENTS:
            raise AutomodError(f"unknown latent space '{self.latent}': choose one of {', '.join(LATENTS)}.")
        if self.variational and self.latent != "gaussian":
            raise AutomodError("a variational encoder needs Gaussian latents: set model.latent=gaussian.")
        if not 0 <= self.support_block < self.num_blocks:
            raise AutomodError("support_block (set by --flip-invariance-layer) must be 0 (none) or a block index "
                               f"1..{self.num_blocks - 1}, got {self.support_block}.")
        if self.support_block and self.decoder != "adain":
            raise AutomodError("a support block is an AdaIN block: it needs model.decoder=adain.")

    @property
    def latent_gain(self) -> float:
        """The factor that gives latent entries unit RMS: √D on the unit sphere (entries ~1/√D), 1 for N(0, I)
        latents (the classic decoder's input layer uses it)."""
        return self.latent_dim**0.5 if self.latent == "sphere" else 1.0

    @property
    def style_input_scale(self) -> float:
        """What the AdaIN style maps multiply the latent by: 1 on the unit sphere (the authors' plain linear map),
        1/√D for N(0, I) latents, so that both start with styles of the same spread (nn/modulation.py)."""
        return 1.0 if self.latent == "sphere" else self.latent_dim**-0.5

    @property
    def num_blocks(self) -> int:
        """Resolution levels from 4×4 to max_resolution (7 for 256²): one encoder block and one regular decoder
        block each (the decoder has one block more with a support block, see block_levels)."""
        return self.max_resolution.bit_length() - 2

    @property
    def block_levels(self) -> tuple[int, ...]:
        """The resolution level of each decoder block in order (block b works at 4·2^block_levels[b]): one per
        level, plus the support block on the level of the block before it."""
        levels = list(range(self.num_blocks))
        if self.support_block:
            levels.insert(self.support_block, self.support_block - 1)
        return tuple(levels)

    def active_blocks(self, level: int) -> int:
        """How many decoder blocks run when decoding at `level` (level + 1 without a support block)."""
        return sum(1 for block_level in self.block_levels if block_level <= level)

    def channels_at(self, level: int) -> int:
        return self.channels[level]

    def encoder_channels_at(self, level: int) -> int:
        return (self.encoder_channels or self.channels)[level]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["channels"] = list(self.channels)
        if self.encoder_channels is not None:
            data["encoder_channels"] = list(self.encoder_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return build_config(cls, data, "model config has unknown fields {}: the file was written by a newer automod.")


# ---------------------------------------------------------------------------------------------------------------
# Training configuration and the dataset presets (Supp. App. A unless noted).

M = 1_000_000
RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256, 512)
# Batch sizes per resolution on one 12 GB GPU (authors' code, DESIGN §8).
PAPER_BATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 32, 256: 16, 512: 4}
# Phase lengths: 2.4M images per phase up to 32², 10.4M at 64² (20.0M in total), then per dataset.
_BASE_IMAGES = {4: int(2.4 * M), 8: int(2.4 * M), 16: int(2.4 * M), 32: int(2.4 * M), 64: int(10.4 * M)}
# Learning rate 5e-4 until 32², then 1e-3.
PAPER_LR = {4: 5e-4, 8: 5e-4, 16: 5e-4, 32: 5e-4, 64: 1e-3, 128: 1e-3, 256: 1e-3, 512: 1e-3}
# KL margin 2.0 for the first two resolution steps, then 0.5.
PAPER_MARGIN = {4: 2.0, 8: 2.0, 16: 0.5, 32: 0.5, 64: 0.5, 128: 0.5, 256: 0.5, 512: 0.5}

# The decoder's weight λ_Z on the cosine latent reconstruction distance, in the paper's units (KL weight 1). Neither
# paper gives λ_Z (Supp. App. A defers unnamed hyperparameters to PIONEER [18]); the authors' code weights the
# KL by 0.1 and its latent distance mean_d(2 − ẑ_d·z_d) = 2 − cos/D by 100 with D = 512, which is
# (100 / 0.1) / 512 ≈ 1.95 times (1 − cos) per unit of KL.
LATENT_COSINE_WEIGHT = 1000.0 / 512.0

PER_RESOLUTION = ("phase_images", "batch_size", "lr", "kl_margin")
RECONSTRUCTIONS = ("robust", "l1", "l2")
RECIPES = ("authors", "paper")
LATENT_DISTANCES = ("cosine", "dot")
ENCODER_OBJECTIVES = ("hinge", "clamp")
LAYER_TARGETS = ("detached", "live")
# Numeric precision of the networks' forward passes in training (training/precision.py): fp32, or bf16 autocast with
# fp32 weights, optimiser state and losses.
PRECISIONS = ("fp32", "bf16")


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise AutomodError(f"unknown precision '{name}': choose {' or '.join(PRECISIONS)} (--precision).")


# The models `automod train --model` trains (NeurIPS Table 2a): the automodulator, Balanced PIONEER, a VAE and a
# WAE-MMD; the settings each implies are in model_settings().
MODELS = ("automod", "pioneer", "vae", "wae")
VAE_KL_WEIGHT = 0.005  # Supp. App. A: "the weight for KL divergence loss term was 0.005"
WAE_MMD_WEIGHT = {"adain": 4.0, "classic": 2.0}  # Supp. App. A: MMD weight 4 with the AdaIN decoder, 2 with the classic


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved (resolved) in the run directory and in every checkpoint."""

    preset: str = "custom"
    kind: str = "automod"  # which model (MODELS); `--model` also applies its settings (model_settings)
    data: str | None = None  # HDF5 file from `automod prep`; None trains on the built-in dataset
    data_limit: int | None = None  # train on the first N images only (quick experiments, tests)
    model: ModelConfig = ModelConfig()
    # per resolution (keys 4..max_resolution)
    phase_images: dict[int, int] = dataclasses.field(default_factory=dict)
    batch_size: dict[int, int] = dataclasses.field(default_factory=dict)
    lr: dict[int, float] = dataclasses.field(default_factory=dict)
    kl_margin: dict[int, float] = dataclasses.field(default_factory=dict)
    fade_fraction: float = 0.5  # share of each phase spent fading the new block in (PGGAN; the papers do not say)
    # The training recipe (docs/training.md): "paper" follows the papers' text, "authors" the authors' code where the
    # two differ. It sets the fields below (recipe_settings); each can still be set alone with --set.
    recipe: str = "paper"
    fade_images: int | None = None  # fade-in length in images in every phase (authors: 1.2M); None: fade_fraction
    # loss (NeurIPS Eq. 1, 6)
    # Supp. App. A's λ_X = 0.2 was tuned in the authors' code, where both KL terms are scaled by 0.1 (PIONEER's
    # value); in this code's units (KL weight 1, as Eq. 1 is written) that is 2.0 (docs/architecture.md)
    lambda_x: float = 2.0
    lambda_z: float = LATENT_COSINE_WEIGHT  # the papers give none; the authors' code in paper units
    kl_scale: float = 1.0  # weight of every KL term (Eq. 1 and 6: 1; the authors' code: 0.1)
    match_x: float = 1.0  # the reconstruction weight is λ_X·match_x once a phase's fade-in is over (authors: 1.5)
    # "cosine": λ_Z·(1 − cos(z, ẑ)); "dot": λ_Z·mean_d(2 − z_d·ẑ_d) (authors)
    latent_distance: str = "cosine"
    # "hinge": Eq. 1 (losses.encoder_loss); "clamp": the authors' (losses.encoder_loss_clamped)
    encoder_objective: str = "hinge"
    fake_pool: int = 0  # images in the encoder's pool of generated images (authors: 200, 100 from 256²); 0: none
    reconstruction: str = "robust"  # d_ρ of NeurIPS Sec. 3.2; "l1"/"l2" for the ablation
    layer_loss: bool = True  # L_j on/off (ablation)
    # NeurIPS Eq. 10-11: flip invariance of decoder blocks < J (J = 2 in NeurIPS Sec. 4), with the support block J
    # (model.support_block); 0 = off. Set both with `--flip-invariance-layer J` (invariance_settings).
    flip_invariance_layer: int = 0
    mixed_fraction_encoder: float = 0.25  # share of the encoder's fake batch decoded from mixtures (DESIGN §8)
    mixed_fraction_decoder: float = 0.25  # NeurIPS Eq. 6: 3/4 regular, 1/4 mixed
    mix_start_level: int = 0  # no mixed samples and no L_j below this level (authors: 1, none at 4²)
    split_all_blocks: bool = True  # the split j ~ U{1..B} (Eq. 6); False: U{1..B−1}, never all blocks (authors)
    layer_target: str = "detached"  # L_j's target: "detached" noise-free canvas of z_A, or "live": the canvas that
    #                                 made the mixed image (its noise, gradients through it; authors)
    # during a fade-in the decoder step leaves the previous level's toRGB alone (authors)
    freeze_previous_rgb: bool = False
    # the VAE and WAE baselines (training/baselines.py): weights of their prior terms next to the reconstruction
    kl_weight: float = VAE_KL_WEIGHT  # VAE: KL[q(z|x) ‖ N(0, I)], summed over latent dimensions
    mmd_weight: float = WAE_MMD_WEIGHT["adain"]  # WAE: MMD to N(0, I); the wae settings pick it by decoder
    encoder_lr_scale: float = 1.0  # the encoder learns at this × the phase's lr (VAE: 1e-4 against 5e-4)
    # optimisation (Supp. App. A)
    adam_betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    # decoder EMA used for samples, evaluation and export, as a half-life in images so it does not depend on the
    # batch size: β = 0.5^(batch / half-life) per step (StyleGAN's 10k images; the papers give no value)
    ema_half_life: int = 10_000
    ema_decay: float | None = None  # a fixed β per decoder step instead of the half-life (authors: 0.999, no warm-up)
    mirror: bool = False
    layer_noise: bool = True
    seed: int = 0
    # `--precision bf16`: the networks' forward passes under bf16 autocast (weights, optimiser and losses stay fp32)
    precision: str = "fp32"
    # `--compile`: torch.compile the decoder's forward (training/precision.py says why not the encoder)
    compile: bool = False
    # `automod train --kimg K`: train for K thousand images in total; past the schedule the last phase goes on.
    # None: the schedule's own length.
    total_kimg: float | None = None
    # `automod train --init MODEL`: the checkpoint whose weights the run starts from (fine-tuning), and the point of
    # the schedule where it starts (the start of the model's level, plus its fade-in); --kimg then counts from there
    init: str | None = None
    start_images: int = 0
    # bookkeeping
    checkpoint_every: int = 200_000  # images
    keep_checkpoints: int = 3
    log_every: int = 10_000  # images
    workers: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        self._check_types()
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        for name in PER_RESOLUTION:
            table = {int(k): v for k, v in getattr(self, name).items()}  # entries above the target are dropped
            missing = [r for r in self.resolutions if r not in table]
            if missing:
                raise AutomodError(f"'{name}' has no value for resolution(s) {missing}: set them or use a preset.")
            whole = name in ("phase_images", "batch_size")
            for r in self.resolutions:
                if not _is_number(table[r], whole):
                    kind = "a whole number" if whole else "a number"
                    raise AutomodError(f"'{name}.{r}' must be {kind}, got {table[r]!r} (e.g. --set {name}.{r}=...).")
            cast = int if whole else float
            object.__setattr__(self, name, {r: cast(table[r]) for r in self.resolutions})
        if self.total_kimg is not None and not float(self.total_kimg) > 0:
            raise AutomodError(f"--kimg must be a positive number of thousand images, got {self.total_kimg}.")
        check_precision(self.precision)
        if not isinstance(self.compile, bool):
            raise AutomodError(f"compile must be true or false, got {self.compile!r}.")
        if self.reconstruction not in RECONSTRUCTIONS:
            raise AutomodError(f"unknown reconstruction loss '{self.reconstruction}': choose "
                               f"{', '.join(RECONSTRUCTIONS)}.")
        if any(v <= 0 for v in self.phase_images.values()) or any(v <= 0 for v in self.batch_size.values()):
            raise AutomodError("phase lengths and batch sizes must be positive.")
        for name in ("fade_fraction", "mixed_fraction_encoder", "mixed_fraction_decoder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise AutomodError(f"'{name}' must lie in [0, 1].")
        if self.kl_weight < 0 or self.mmd_weight < 0 or self.encoder_lr_scale <= 0:
            raise AutomodError("kl_weight and mmd_weight must be ≥ 0 and encoder_lr_scale > 0.")
        self._check_recipe()
        self._check_model_kind()
        self._check_invariance()

    def _check_types(self) -> None:
        """Every scalar setting has the type its field names (ints are taken for floats), so a bad --set value is one
        line before anything is created; counts that must be positive (or ≥ 0) are checked here too."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), str(f.type).replace(" ", "")
            optional = kind.endswith("|None")
            base = kind.removesuffix("|None")
            if value is None and optional:
                continue
            ok = {"float": _is_number(value, False), "int": _is_number(value, True), "bool": isinstance(value, bool),
                  "str": isinstance(value, str)}.get(base, True)
            if not ok:
                wanted = {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "text"}[base]
                raise AutomodError(f"setting '{f.name}' must be {wanted}{' or null' if optional else ''}, got "
                                   f"{value!r}.")
            if base == "float" and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
        for name in ("checkpoint_every", "log_every", "keep_checkpoints", "ema_half_life"):
            if getattr(self, name) < 1:
                raise AutomodError(f"'{name}' must be at least 1, got {getattr(self, name)}.")
        if self.workers < 0:
            raise AutomodError(f"--workers must be 0 (load in the training process) or more, got {self.workers}.")
        if self.data_limit is not None and self.data_limit < 1:
            raise AutomodError(f"data_limit must be at least 1 image (or null for all), got {self.data_limit}.")

    def _check_recipe(self) -> None:
        """The recipe's fields: names from their lists, numbers in range."""
        for name, allowed in (("recipe", RECIPES), ("latent_distance", LATENT_DISTANCES),
                              ("encoder_objective", ENCODER_OBJECTIVES), ("layer_target", LAYER_TARGETS)):
            if getattr(self, name) not in allowed:
                raise AutomodError(f"unknown {name} '{getattr(self, name)}': choose {' or '.join(allowed)}.")
        if self.kl_scale <= 0 or self.match_x <= 0 or self.lambda_x < 0 or self.lambda_z < 0:
            raise AutomodError("kl_scale and match_x must be > 0, lambda_x and lambda_z ≥ 0.")
        if self.fake_pool < 0 or self.mix_start_level < 0:
            raise AutomodError("fake_pool and mix_start_level must be ≥ 0.")
        if self.fade_images is not None and self.fade_images < 0:
            raise AutomodError("fade_images must be ≥ 0 (or null for fade_fraction).")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise AutomodError(f"ema_decay must lie in [0, 1) (or null for the half-life), got {self.ema_decay}.")
        if any(m < 0 for m in self.kl_margin.values()):
            raise AutomodError("kl_margin must be ≥ 0.")

    def _check_invariance(self) -> None:
        """Flip invariance (NeurIPS Eq. 10-11) needs a valid layer, its support block and the automodulator game."""
        layer, blocks = self.flip_invariance_layer, self.model.num_blocks
        if not 0 <= layer < blocks:
            raise AutomodError(f"--flip-invariance-layer must be 0 (off) or a block index 1..{blocks - 1} of this "
                               f"{self.model.max_resolution}² model, got {layer}.")
        if layer and self.model.support_block != layer:
            raise AutomodError(f"flip invariance at layer {layer} needs its extra block: set "
                               f"model.support_block={layer} as well, or use --flip-invariance-layer.")
        if layer and self.kind != "automod":
            raise AutomodError("flip invariance is part of the automodulator's encoder step: use it with --model "
                               "automod.")

    def _check_model_kind(self) -> None:
        """Refuse a model kind whose latent space or mixing the network cannot provide."""
        if self.kind not in MODELS:
            raise AutomodError(f"unknown model '{self.kind}': choose one of {', '.join(MODELS)}.")
        wanted = {"vae": ("gaussian", True), "wae": ("gaussian", False)}.get(self.kind, ("sphere", False))
        if (self.model.latent, self.model.variational) != wanted:
            raise AutomodError(
                f"model '{self.kind}' needs model.latent={wanted[0]} and model.variational={str(wanted[1]).lower()}: "
                f"start it with --model {self.kind} instead of setting the kind alone."
            )
        mixes = self.mixed_fraction_encoder > 0 or self.mixed_fraction_decoder > 0 or self.layer_loss
        if self.kind in ("automod", "pioneer") and self.model.decoder == "classic" and mixes:
            raise AutomodError(
                "a classic decoder cannot decode mixed latents: train it with --model pioneer, or set "
                "mixed_fraction_encoder=0, mixed_fraction_decoder=0 and layer_loss=false."
            )

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(r for r in RESOLUTIONS if r <= self.model.max_resolution)

    @property
    def total_images(self) -> int:
        if self.total_kimg is not None:
            return self.start_images + int(round(self.total_kimg * 1000))
        return sum(self.phase_images.values())

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model"] = self.model.to_dict()
        data["adam_betas"] = list(self.adam_betas)
        for name in PER_RESOLUTION:
            data[name] = {str(r): v for r, v in getattr(self, name).items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return build_config(cls, data, "unknown training setting(s) {}; see `automod train --help` for the names.")


def _paper_schedule(max_resolution: int, tail_images: dict[int, float],
                    margins: dict[int, float] | None = None) -> dict:
    images = {**_BASE_IMAGES, **{r: int(v * M) for r, v in tail_images.items()}}
    keep = [r for r in RESOLUTIONS if r in images]  # tables reach past the target so --resolution can raise it
    return {
        "model": ModelConfig(max_resolution=max_resolution),
        "phase_images": {r: images[r] for r in keep},
        "batch_size": {r: PAPER_BATCH[r] for r in keep},
        "lr": {r: PAPER_LR[r] for r in keep},
        "kl_margin": {r: {**PAPER_MARGIN, **(margins or {})}[r] for r in keep},
    }


def _builtin_schedule() -> dict:
    """Sized so that `automod train` with no arguments reaches 32² on a 2-core CPU in about ten minutes."""
    model = ModelConfig(max_resolution=32, latent_dim=128, channels=SMALL_CHANNELS)
    keep = (4, 8, 16, 32)
    return {
        "model": model,
        # measured on 2 cores (benchmarks/RESULTS.md): ~1800, 470, 155, 60 images/s at 4², 8², 16², 32²
        "phase_images": {4: 16_000, 8: 32_000, 16: 32_000, 32: 24_000},
        "batch_size": {4: 64, 8: 64, 16: 32, 32: 32},
        "lr": {r: 1e-3 for r in keep},
        # 0.5 throughout: the paper's 2.0 for the first two phases slowed reconstruction here (8², 400 steps:
        # held-out MSE 0.108 against 0.072 with 0.5; docs/architecture.md, "Training status")
        "kl_margin": {r: 0.5 for r in keep},
        "checkpoint_every": 20_000,
        "log_every": 2_000,
        "workers": 0,
    }


TRAIN_PRESETS: dict[str, Any] = {
    # FFHQ: 128² 10.6M, 256² 5.0M, 512² 6.7M images; faces use mirror augmentation.
    "ffhq": lambda: {**_paper_schedule(256, {128: 10.6, 256: 5.0, 512: 6.7}), "mirror": True},
    # CelebA-HQ: 128² 7.5M, 256² 4.5M; margin 0.2 at 128², 0.4 at 256² (NeurIPS Sec. 3.2).
    "celebahq": lambda: {**_paper_schedule(256, {128: 7.5, 256: 4.5}, {128: 0.2, 256: 0.4}), "mirror": True},
    # LSUN Bedrooms: 128² 4.8M, 256² 2.9M; margin 0.2 from 128² up. No mirroring for LSUN.
    "lsun-bedroom": lambda: _paper_schedule(256, {128: 4.8, 256: 2.9}, {128: 0.2, 256: 0.2, 512: 0.2}),
    # LSUN Cars: 128² 7.5M, 256² 2M.
    "lsun-car": lambda: _paper_schedule(256, {128: 7.5, 256: 2.0}),
    # Any other data set: the paper's early phases, 128² and 256² as for CelebA-HQ, 512² as for FFHQ.
    "custom": lambda: _paper_schedule(256, {128: 7.5, 256: 4.5, 512: 6.7}),
    "builtin": _builtin_schedule,
}


# The authors' recipe (docs/training.md has every element with its source). The objective's elements apply to every
# preset; the schedule's only to the dataset presets, whose schedules are the paper's (builtin and custom keep theirs).
DATASET_PRESETS = ("ffhq", "celebahq", "lsun-bedroom", "lsun-car")
# Batch sizes of the authors' two-GPU table (the paper's runs used two GPUs), 4² … 512².
AUTHORS_BATCH = {4: 256, 8: 256, 16: 256, 32: 128, 64: 64, 128: 28, 256: 32, 512: 14}
# KL margins in their units (KL terms × 0.1): none at 4² and 8², 0.05 from 16²; per dataset above that.
AUTHORS_MARGIN = {4: 0.0, 8: 0.0, **{r: 0.05 for r in RESOLUTIONS if r >= 16}}
AUTHORS_DATASET_MARGIN = {"celebahq": {128: 0.02, 256: 0.04}, "lsun-bedroom": {128: 0.08, 256: 0.08, 512: 0.08},
                          "lsun-car": {128: 0.08, 256: 0.08, 512: 0.08}}
AUTHORS_OBJECTIVE: dict[str, Any] = {
    "kl_scale": 0.1, "lambda_x": 0.2, "match_x": 1.5, "latent_distance": "dot", "lambda_z": 100.0,
    "encoder_objective": "clamp", "fake_pool": 200, "mixed_fraction_encoder": 0.25, "mixed_fraction_decoder": 0.5,
    "mix_start_level": 1, "split_all_blocks": False, "layer_target": "live", "freeze_previous_rgb": True,
    "ema_decay": 0.999, "mirror": True,
}
# The same fields as the paper's text has them (automod's defaults), so that a recipe can be switched in full.
PAPER_OBJECTIVE: dict[str, Any] = {
    "kl_scale": 1.0, "lambda_x": 2.0, "match_x": 1.0, "latent_distance": "cosine", "lambda_z": LATENT_COSINE_WEIGHT,
    "encoder_objective": "hinge", "fake_pool": 0, "mixed_fraction_encoder": 0.25, "mixed_fraction_decoder": 0.25,
    "mix_start_level": 0, "split_all_blocks": True, "layer_target": "detached", "freeze_previous_rgb": False,
    "ema_decay": None,
}
# Which recipe a preset uses unless told: the authors' for the papers' datasets (the recipe known to reach the
# published numbers), and for builtin and custom the one that measured better on the built-in data
# (docs/results/small-scale.md, "The two recipes").
DEFAULT_RECIPE = {**{name: "authors" for name in DATASET_PRESETS}, "builtin": "paper", "custom": "paper"}


def recipe_settings(recipe: str, preset: str) -> dict[str, Any]:
    """The settings `--recipe` implies for `preset`, as apply_overrides keys (applied after the preset's own)."""
    if recipe not in RECIPES:
        raise AutomodError(f"unknown recipe '{recipe}': choose {' or '.join(RECIPES)} (--recipe).")
    if recipe == "paper":
        return {"recipe": recipe, **PAPER_OBJECTIVE}
    settings: dict[str, Any] = {"recipe": recipe, **AUTHORS_OBJECTIVE,
                                "kl_margin": {**AUTHORS_MARGIN, **AUTHORS_DATASET_MARGIN.get(preset, {})}}
    if preset in DATASET_PRESETS:
        # their scheduler never applies its first entry: 4² trains at 1e-3 like 64² and up
        settings.update({"fade_images": 1_200_000, "batch_size": dict(AUTHORS_BATCH), "lr": {**PAPER_LR, 4: 1e-3}})
    return settings


def train_preset(name: str) -> dict[str, Any]:
    """The keyword arguments of TrainConfig that a preset sets (before overrides)."""
    if name not in TRAIN_PRESETS:
        raise AutomodError(f"unknown preset '{name}': choose one of {', '.join(TRAIN_PRESETS)}.")
    return {"preset": name, **TRAIN_PRESETS[name]()}


def model_settings(kind: str, decoder: str | None = None) -> dict[str, Any]:
    """The settings `--model KIND` implies, as apply_overrides keys, for a run with `decoder` (None: the kind's own
    default). The user's overrides are applied after them."""
    if kind not in MODELS:
        raise AutomodError(f"unknown model '{kind}': choose one of {', '.join(MODELS)}.")
    if decoder is not None and decoder not in DECODERS:
        raise AutomodError(f"unknown decoder '{decoder}': choose one of {', '.join(DECODERS)}.")
    if kind == "automod":
        return {"kind": kind, "model.decoder": decoder or "adain"}
    if kind == "pioneer":
        # Balanced PIONEER (NeurIPS Table 2a): the same AGE game with the classic decoder, without the
        # automodulator's mixed samples and L_j (NeurIPS Sec. 3.2) and with the L1 image distance that d_ρ
        # replaced (NeurIPS Eq. 1 and Table 1, "d_ρ replacing L1").
        return {"kind": kind, "model.decoder": decoder or "classic", "reconstruction": "l1", "layer_loss": False,
                "mixed_fraction_encoder": 0.0, "mixed_fraction_decoder": 0.0}
    decoder = decoder or "adain"
    # VAE and WAE: Gaussian N(0, I) latents and the squared L2 image distance (the Gaussian likelihood of a VAE; the
    # cost c(x, y) = ‖x − y‖² of WAE, Tolstikhin et al. 2018). Learning rates: Supp. App. A, for the whole
    # schedule. One joint loss, no AGE game: no mixed samples and no L_j (recorded off so config.json says what runs).
    gaussian = {"kind": kind, "model.decoder": decoder, "model.latent": "gaussian", "reconstruction": "l2",
                "layer_loss": False, "mixed_fraction_encoder": 0.0, "mixed_fraction_decoder": 0.0}
    if kind == "vae":
        return {**gaussian, "model.variational": True, "kl_weight": VAE_KL_WEIGHT,
                "lr": 5e-4, "encoder_lr_scale": 0.2}  # decoder 5e-4, encoder 1e-4
    return {**gaussian, "model.variational": False, "mmd_weight": WAE_MMD_WEIGHT[decoder],
            "lr": 2e-4}  # both networks 2e-4


def invariance_settings(layer: int) -> dict[str, Any]:
    """The settings `--flip-invariance-layer J` implies, as apply_overrides keys (none for J = 0): the support block
    J of NeurIPS Sec. 4, and no layer noise, as the authors' code has it with a support layer (to replicate the
    paper's experiment; the paper does not say). The user's overrides are applied after them."""
    if not layer:
        return {}
    return {"flip_invariance_layer": layer, "model.support_block": layer, "layer_noise": False}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(settings: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply `name=value` overrides to TrainConfig keyword arguments.

    `lr=0.001` sets every resolution of a per-resolution table, `lr.64=0.001` one resolution, `model.latent_dim=256`
    a model field. String values are read as JSON when they parse (numbers, booleans, lists), else kept as text.
    """
    out = dict(settings)
    model = out.get("model", ModelConfig())
    model_fields = model.to_dict() if isinstance(model, ModelConfig) else dict(model)
    for key, raw in overrides.items():
        value = _parse_value(raw) if isinstance(raw, str) else raw
        head, _, tail = key.partition(".")
        if head == "model":
            if tail not in model_fields:
                raise AutomodError(f"unknown model setting '{tail}': choose one of {', '.join(model_fields)}.")
            model_fields[tail] = value
        elif head in PER_RESOLUTION:
            table = {int(k): v for k, v in out.get(head, {}).items()}
            if tail:
                if not tail.isdigit() or int(tail) not in RESOLUTIONS:
                    raise AutomodError(f"'{key}': the part after the dot must be a resolution such as {head}.64.")
                table[int(tail)] = value
            elif isinstance(value, dict):  # {resolution: value} entries, e.g. from a recipe or a --config file
                table.update({int(k): v for k, v in value.items()})
            else:
                table = {r: value for r in RESOLUTIONS}
            out[head] = table
        elif tail:
            raise AutomodError(f"'{key}' is not a setting: only model.* and the per-resolution tables take a dot.")
        else:
            out[head] = value
    out["model"] = ModelConfig.from_dict(model_fields)
    return out


def resolve_train_config(preset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's values, then those of the recipe `overrides["recipe"]` (recipe_settings; default: the
    preset's, DEFAULT_RECIPE), then the settings of the model kind named by `overrides["kind"]` (model_settings;
    default automod) and of `overrides["flip_invariance_layer"]` (invariance_settings), then `overrides` (see
    apply_overrides), validated."""
    overrides = overrides or {}
    kind = overrides.get("kind", "automod")
    decoder = overrides.get("model.decoder")
    recipe = overrides.get("recipe") or DEFAULT_RECIPE.get(preset, "paper")
    settings = apply_overrides(train_preset(preset), recipe_settings(recipe, preset))
    settings = apply_overrides(settings, model_settings(kind, decoder))
    layer = overrides.get("flip_invariance_layer", 0)
    layer = _parse_value(layer) if isinstance(layer, str) else layer
    if type(layer) is int and layer > 0:  # anything else is refused by TrainConfig with its own message
        overrides = {**invariance_settings(layer), **overrides}  # one step: the model is checked at its final size
    return TrainConfig.from_dict(apply_overrides(settings, overrides))
