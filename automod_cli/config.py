"""Typed configuration: the model's shape and the named presets (paper values, each with its source)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from automod_cli import kinds
from automod_cli.errors import AutomodError
from automod_cli.kinds import CONFIG_KINDS, VAE_KL_WEIGHT, WAE_MMD_WEIGHT

# Channels per resolution level, from 4×4 upwards (level k has resolution 4·2^k).
# Supp. App. A / Fig. 6: encoder 64,128,256,512,512,512,512,512 from high to low resolution; the decoder mirrors it.
PAPER_CHANNELS = (512, 512, 512, 512, 512, 256, 128, 64)

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


def check_scalar_fields(config, prefix: str = "") -> None:
    """Every scalar field of the dataclass `config` has the type it names (ints are taken for floats and stored as
    floats), so a bad --set value is one line before anything is created. `prefix` names the group in messages."""
    for f in dataclasses.fields(config):
        value, kind = getattr(config, f.name), str(f.type).replace(" ", "")
        optional = kind.endswith("|None")
        base = kind.removesuffix("|None")
        if value is None and optional:
            continue
        ok = {
            "float": _is_number(value, False),
            "int": _is_number(value, True),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
        }.get(base, True)
        if not ok:
            wanted = {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "text"}[
                base
            ]
            raise AutomodError(
                f"setting '{prefix}{f.name}' must be {wanted}{' or null' if optional else ''}, got {value!r}."
            )
        if base == "float":
            object.__setattr__(config, f.name, float(value))


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
                raise AutomodError(
                    f"model.{name} must be a list of whole numbers (e.g. [64,64,48]), got {widths!r}."
                )
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
            raise AutomodError(
                "support_block (set by --flip-invariance-layer) must be 0 (none) or a block index "
                f"1..{self.num_blocks - 1}, got {self.support_block}."
            )
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
        return build_config(
            cls, data, "model config has unknown fields {}: the file was written by a newer automod."
        )


# ---------------------------------------------------------------------------------------------------------------
# Training configuration and the dataset presets (Supp. App. A unless noted).

RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256, 512)

# The decoder's weight λ_Z on the cosine latent reconstruction distance, in the paper's units (KL weight 1). Neither
# paper gives λ_Z (Supp. App. A defers unnamed hyperparameters to PIONEER [18]); the authors' code weights the
# KL by 0.1 and its latent distance mean_d(2 − ẑ_d·z_d) = 2 − cos/D by 100 with D = 512, which is
# (100 / 0.1) / 512 ≈ 1.95 times (1 − cos) per unit of KL.
LATENT_COSINE_WEIGHT = 1000.0 / 512.0

PER_RESOLUTION = ("phase_images", "batch_size", "lr", "kl_margin")
RECONSTRUCTIONS = ("robust", "l1", "l2")
RECIPES = ("authors", "paper")  # presets.RECIPE_PRESETS holds their values
LATENT_DISTANCES = ("cosine", "dot")
ENCODER_OBJECTIVES = ("hinge", "clamp")
LAYER_TARGETS = ("detached", "live")
ENCODER_PASSES = ("joint", "separate")
ROBUST_GRADIENTS = ("zeroed", "accumulated")
ROBUST_GROWTH = ("blocks", "flat")  # losses.AdaptiveRobustLoss.grow
INITIALISATIONS = ("automod", "authors")
ADAIN_COTRAIN = ("off", "on", "flip")  # Recipe.adain_cotrain
REAL_FADES = ("sharp", "blended")
REAL_DOWNSCALES = ("area", "bilinear")  # data_prep.builtin.DOWNSCALES
# Numeric precision of the networks' forward passes in training (training/precision.py): fp32, bf16 autocast with
# fp32 weights, optimiser state and losses, or auto: bf16 where the device computes it natively, else fp32.
PRECISIONS = ("fp32", "bf16", "auto")


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise AutomodError(f"unknown precision '{name}': choose {', '.join(PRECISIONS)} (--precision).")


# The models a TrainConfig trains (NeurIPS Table 2a): the automodulator, Balanced PIONEER, a VAE and a WAE-MMD; each
# is an entry of the kinds' registry (automod_cli/kinds.py), which also holds the settings each implies.
MODELS = CONFIG_KINDS


@dataclass(frozen=True)
class Recipe:
    """The training objective's elements, one value (docs/training.md has each with its source). `name` says which
    preset it started from (presets.RECIPE_PRESETS: "paper", the papers' text; "authors", the authors' code where
    the two differ); any element may then be changed alone (`--set recipe.fake_pool=0`). The defaults are the
    paper's. The model kinds (--model) set the mixing elements of their own games after the recipe."""

    name: str = "paper"
    # loss weights (NeurIPS Eq. 1, 6). Supp. App. A's λ_X = 0.2 was tuned in the authors' code, where both KL terms
    # are scaled by 0.1 (PIONEER's value); in this code's units (KL weight 1, as Eq. 1 is written) that is 2.0
    lambda_x: float = 2.0
    lambda_z: float = LATENT_COSINE_WEIGHT  # the papers give none; the authors' code in paper units
    kl_scale: float = 1.0  # weight of every KL term (Eq. 1 and 6: 1; the authors' code: 0.1)
    match_x: float = (
        1.0  # the reconstruction weight is λ_X·match_x once a phase's fade-in is over (authors: 1.5)
    )
    # "cosine": λ_Z·(1 − cos(z, ẑ)); "dot": λ_Z·mean_d(2 − z_d·ẑ_d) (authors)
    latent_distance: str = "cosine"
    # "hinge": Eq. 1 (losses.encoder_loss); "clamp": the authors' (losses.encoder_loss_clamped)
    encoder_objective: str = "hinge"
    fake_pool: int = (
        0  # images in the encoder's pool of generated images (authors: 200, 100 from 256²); 0: none
    )
    mixed_fraction_encoder: float = (
        0.25  # share of the encoder's fake batch decoded from mixtures (DESIGN §8)
    )
    mixed_fraction_decoder: float = 0.25  # NeurIPS Eq. 6: 3/4 regular, 1/4 mixed
    mix_start_level: int = 0  # no mixed samples and no L_j below this level (authors: 1, none at 4²)
    split_all_blocks: bool = (
        True  # the split j ~ U{1..B} (Eq. 6); False: U{1..B−1}, never all blocks (authors)
    )
    # L_j's target: "detached" noise-free canvas of z_A, or "live": the canvas that made the mixed image (its noise,
    # gradients through it; authors)
    layer_target: str = "detached"
    # during a fade-in the decoder step leaves the previous level's toRGB alone (authors)
    freeze_previous_rgb: bool = False
    ema_decay: float | None = (
        None  # a fixed β per decoder step instead of the half-life (authors: 0.999, no warm-up)
    )
    fade_images: int | None = (
        None  # fade-in length in images in every phase (authors: 1.2M); None: fade_fraction
    )
    # "joint": one encoder pass over real and generated images per encoder step; "separate": φ(x), its
    # reconstruction, then the generated images and φ of them, one spectral-norm power step per pass (authors)
    encoder_passes: str = "joint"
    # d_ρ's gradients: "zeroed" before every encoder step, or "accumulated" over the steps, so Adam steps on their
    # running sum (the authors' code never zeroes them: a bug the authors' recipe reproduces)
    robust_gradients: str = "zeroed"
    # how d_ρ's α and scale maps grow to a new resolution: "blocks" (each pixel's values start its 2×2 block) or
    # "flat" (the authors' order in their flattened maps; losses.AdaptiveRobustLoss.grow)
    robust_growth: str = "blocks"
    # the starting weights of a new run: automod's own, or the authors' (models/initialisation.py)
    initialisation: str = "automod"
    # the real images during a fade-in: as they are ("sharp"), or "blended" as the authors' loader blends them with
    # their half-resolution copy, α·x + (1 − α)·up(down(x)), truncated to 8 bits (training/fade.py)
    real_fade: str = "sharp"
    # how the built-in data's images are shrunk to a phase's resolution: "area" (box averages of the 64² render, as
    # automod prep's pyramid) or "bilinear" (the authors' loader: PIL bilinear, after a 2× bilinear upscale).
    # A prepared HDF5 file holds its own pyramid: it takes "area" only (TrainConfig refuses the other).
    real_downscale: str = "area"
    # whether the decoder's AdaIN maps (z → per-channel std and mean) learn in the encoder step too, from its
    # reconstruction term, with an Adam of their own (the authors' --phi_ada_cotrain): "off", "on", or "flip", while
    # flip invariance runs (the authors': their code steps it then only). true/false read as "on"/"off"
    adain_cotrain: str = "off"

    def __post_init__(self) -> None:
        if isinstance(self.adain_cotrain, bool):  # `--set adain_cotrain=true`, and the runs that first had it
            object.__setattr__(self, "adain_cotrain", "on" if self.adain_cotrain else "off")
        check_scalar_fields(self, "recipe.")
        for name, allowed in (
            ("name", RECIPES),
            ("adain_cotrain", ADAIN_COTRAIN),
            ("latent_distance", LATENT_DISTANCES),
            ("encoder_objective", ENCODER_OBJECTIVES),
            ("layer_target", LAYER_TARGETS),
            ("encoder_passes", ENCODER_PASSES),
            ("robust_gradients", ROBUST_GRADIENTS),
            ("robust_growth", ROBUST_GROWTH),
            ("initialisation", INITIALISATIONS),
            ("real_fade", REAL_FADES),
            ("real_downscale", REAL_DOWNSCALES),
        ):
            if getattr(self, name) not in allowed:
                raise AutomodError(
                    f"unknown recipe.{name} '{getattr(self, name)}': choose {' or '.join(allowed)}."
                )
        if self.kl_scale <= 0 or self.match_x <= 0 or self.lambda_x < 0 or self.lambda_z < 0:
            raise AutomodError(
                "recipe.kl_scale and recipe.match_x must be > 0, recipe.lambda_x and recipe.lambda_z ≥ 0."
            )
        if self.fake_pool < 0 or self.mix_start_level < 0:
            raise AutomodError("recipe.fake_pool and recipe.mix_start_level must be ≥ 0.")
        for name in ("mixed_fraction_encoder", "mixed_fraction_decoder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise AutomodError(f"'recipe.{name}' must lie in [0, 1].")
        if self.fade_images is not None and self.fade_images < 0:
            raise AutomodError("recipe.fade_images must be ≥ 0 (or null for fade_fraction).")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise AutomodError(
                f"recipe.ema_decay must lie in [0, 1) (or null for the half-life), got {self.ema_decay}."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        return build_config(cls, data, "unknown recipe element(s) {}; docs/training.md lists them.")


def recipe_name(saved: Any) -> str | None:
    """The recipe's name in a saved train config's `recipe` entry: the group's name, or the name itself as runs
    written before the recipe was a group have it; None when there is none."""
    return saved.get("name") if isinstance(saved, dict) else saved


# The recipe's elements (every field but its name): `--set NAME=VALUE` takes them without the `recipe.` prefix too.
RECIPE_ELEMENTS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "name")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved (resolved) in the run directory and in every checkpoint."""

    preset: str = "custom"
    kind: str = "automod"  # which model (MODELS, kinds.KINDS); `--model` also applies its settings
    data: str | None = None  # HDF5 file from `automod prep`; None trains on the built-in dataset
    data_limit: int | None = None  # train on the first N images only (quick experiments, tests)
    model: ModelConfig = ModelConfig()
    # per resolution (keys 4..max_resolution)
    phase_images: dict[int, int] = dataclasses.field(default_factory=dict)
    batch_size: dict[int, int] = dataclasses.field(default_factory=dict)
    lr: dict[int, float] = dataclasses.field(default_factory=dict)
    kl_margin: dict[int, float] = dataclasses.field(default_factory=dict)
    fade_fraction: float = (
        0.5  # share of each phase spent fading the new block in (PGGAN; the papers do not say)
    )
    # The training objective's elements as one value (Recipe; docs/training.md): `--recipe` names a preset of it,
    # `--set recipe.NAME=VALUE` (or `--set NAME=VALUE`) changes one element alone.
    recipe: Recipe = Recipe()
    reconstruction: str = "robust"  # d_ρ of NeurIPS Sec. 3.2; "l1"/"l2" for the ablation
    layer_loss: bool = True  # L_j on/off (ablation)
    # NeurIPS Eq. 10-11: flip invariance of decoder blocks < J (J = 2 in NeurIPS Sec. 4), with the support block J
    # (model.support_block); 0 = off. Set both with `--flip-invariance-layer J` (invariance_settings).
    flip_invariance_layer: int = 0
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
    mirror: bool = False
    layer_noise: bool = True
    seed: int = 0
    # `--precision bf16`: the networks' forward passes under bf16 autocast (weights, optimiser and losses stay fp32);
    # "auto" is bf16 on a device that computes it natively, else fp32 (training/precision.py, resolve_precision)
    precision: str = "fp32"
    # `--compile`: torch.compile the decoder's forward (training/precision.py says why not the encoder)
    compile: bool = False
    # `automod train --kimg K`: train for K thousand images in total; past the schedule the last phase goes on.
    # None: the schedule's own length.
    total_kimg: float | None = None
    # `automod train --time-budget M`: the run's training ends within M minutes (summed over its restarts). Only the
    # last phase shortens to fit (training/budget.py), never below a fifth of its images; 0 or None: no budget.
    time_budget_min: float | None = None
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
        if isinstance(self.recipe, dict):
            object.__setattr__(self, "recipe", Recipe.from_dict(self.recipe))
        self._check_types()
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        for name in PER_RESOLUTION:
            table = {
                int(k): v for k, v in getattr(self, name).items()
            }  # entries above the target are dropped
            missing = [r for r in self.resolutions if r not in table]
            if missing:
                raise AutomodError(
                    f"'{name}' has no value for resolution(s) {missing}: set them or use a preset."
                )
            whole = name in ("phase_images", "batch_size")
            for r in self.resolutions:
                if not _is_number(table[r], whole):
                    kind = "a whole number" if whole else "a number"
                    raise AutomodError(
                        f"'{name}.{r}' must be {kind}, got {table[r]!r} (e.g. --set {name}.{r}=...)."
                    )
            cast = int if whole else float
            object.__setattr__(self, name, {r: cast(table[r]) for r in self.resolutions})
        if self.total_kimg is not None and not float(self.total_kimg) > 0:
            raise AutomodError(f"--kimg must be a positive number of thousand images, got {self.total_kimg}.")
        if self.time_budget_min is not None and not self.time_budget_min >= 0:
            raise AutomodError(
                f"--time-budget must be a number of minutes ≥ 0 (0: none), got {self.time_budget_min}."
            )
        if self.time_budget_min == 0:
            object.__setattr__(self, "time_budget_min", None)
        check_precision(self.precision)
        if not isinstance(self.compile, bool):
            raise AutomodError(f"compile must be true or false, got {self.compile!r}.")
        if self.reconstruction not in RECONSTRUCTIONS:
            raise AutomodError(
                f"unknown reconstruction loss '{self.reconstruction}': choose {', '.join(RECONSTRUCTIONS)}."
            )
        if any(v <= 0 for v in self.phase_images.values()) or any(v <= 0 for v in self.batch_size.values()):
            raise AutomodError("phase lengths and batch sizes must be positive.")
        if not 0.0 <= self.fade_fraction <= 1.0:
            raise AutomodError("'fade_fraction' must lie in [0, 1].")
        if any(m < 0 for m in self.kl_margin.values()):
            raise AutomodError("kl_margin must be ≥ 0.")
        if self.data is not None and self.recipe.real_downscale != "area":
            raise AutomodError(
                f"recipe.real_downscale={self.recipe.real_downscale} applies to the built-in data only; "
                "a prepared file holds automod prep's pyramid: set recipe.real_downscale=area."
            )
        if self.kl_weight < 0 or self.mmd_weight < 0 or self.encoder_lr_scale <= 0:
            raise AutomodError("kl_weight and mmd_weight must be ≥ 0 and encoder_lr_scale > 0.")
        self._check_model_kind()
        self._check_invariance()

    def _check_types(self) -> None:
        """Every scalar setting has the type its field names (ints are taken for floats), so a bad --set value is one
        line before anything is created; counts that must be positive (or ≥ 0) are checked here too."""
        check_scalar_fields(self)
        for name in ("checkpoint_every", "log_every", "keep_checkpoints", "ema_half_life"):
            if getattr(self, name) < 1:
                raise AutomodError(f"'{name}' must be at least 1, got {getattr(self, name)}.")
        if self.workers < 0:
            raise AutomodError(
                f"--workers must be 0 (load in the training process) or more, got {self.workers}."
            )
        if self.data_limit is not None and self.data_limit < 1:
            raise AutomodError(
                f"data_limit must be at least 1 image (or null for all), got {self.data_limit}."
            )

    def _check_invariance(self) -> None:
        """Flip invariance (NeurIPS Eq. 10-11) needs a valid layer, its support block and the automodulator game."""
        layer, blocks = self.flip_invariance_layer, self.model.num_blocks
        if not 0 <= layer < blocks:
            raise AutomodError(
                f"--flip-invariance-layer must be 0 (off) or a block index 1..{blocks - 1} of this "
                f"{self.model.max_resolution}² model, got {layer}."
            )
        if layer and self.model.support_block != layer:
            raise AutomodError(
                f"flip invariance at layer {layer} needs its extra block: set "
                f"model.support_block={layer} as well, or use --flip-invariance-layer."
            )
        if layer and self.kind != "automod":
            raise AutomodError(
                "flip invariance is part of the automodulator's encoder step: use it with --model automod."
            )

    def _check_model_kind(self) -> None:
        """Refuse a model kind whose latent space or mixing the network cannot provide."""
        if self.kind not in MODELS:
            raise AutomodError(f"unknown model '{self.kind}': choose one of {', '.join(MODELS)}.")
        kind = kinds.get(self.kind)
        wanted = (kind.latent, kind.variational)
        if (self.model.latent, self.model.variational) != wanted:
            raise AutomodError(
                f"model '{self.kind}' needs model.latent={wanted[0]} and model.variational={str(wanted[1]).lower()}: "
                f"start it with --model {self.kind} instead of setting the kind alone."
            )
        recipe = self.recipe
        mixes = recipe.mixed_fraction_encoder > 0 or recipe.mixed_fraction_decoder > 0 or self.layer_loss
        if kind.step == kinds.GAME and self.model.decoder == "classic" and mixes:
            raise AutomodError(
                "a classic decoder cannot decode mixed latents: train it with --model pioneer, or set "
                "recipe.mixed_fraction_encoder=0, recipe.mixed_fraction_decoder=0 and layer_loss=false."
            )
        if recipe.adain_cotrain == "on" and self.model.decoder == "classic":
            raise AutomodError(
                "recipe.adain_cotrain trains a decoder's AdaIN maps, and a classic decoder has none: leave it off "
                "(--set adain_cotrain=off) or train with --decoder adain."
            )

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(r for r in RESOLUTIONS if r <= self.model.max_resolution)

    @property
    def total_images(self) -> int:
        if self.total_kimg is not None:
            return self.start_images + int(round(self.total_kimg * 1000))
        return sum(self.phase_images.values())

    def resumed(self, total_kimg: float | None = None, time_budget_min: float | None = None) -> "TrainConfig":
        """This config as `automod train --resume RUN` continues it: with a new length (`--kimg`) and a new time
        budget (`--time-budget`, 0: none) where given (None: as it was)."""
        changes = {"total_kimg": total_kimg, "time_budget_min": time_budget_min}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model"] = self.model.to_dict()
        data["recipe"] = self.recipe.to_dict()
        data["adam_betas"] = list(self.adam_betas)
        for name in PER_RESOLUTION:
            data[name] = {str(r): v for r, v in getattr(self, name).items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """A config from its dict (config.json, a checkpoint); one written before the recipe was a group (its
        elements top-level, `recipe` its name) is read into the group."""
        data = dict(data)
        if isinstance(data.get("recipe"), str):
            legacy = {name: data.pop(name) for name in RECIPE_ELEMENTS if name in data}
            data["recipe"] = {"name": data["recipe"], **legacy}
        return build_config(
            cls, data, "unknown training setting(s) {}; see `automod train --help` for the names."
        )
