"""The named presets of a training run: the schedules (`--preset`: the datasets of the papers, `custom` for any
other data, `builtin` for the built-in data set), the recipes (`--recipe`: values of config.Recipe), the settings
each model kind (`--model`) implies, and `resolve_train_config`, which applies them in that order and then the
user's `--set` overrides. The config types themselves are in config.py."""

from __future__ import annotations

import json
from typing import Any

from automod_cli import kinds
from automod_cli.config import (
    MODELS,
    DECODERS,
    PER_RESOLUTION,
    RECIPE_ELEMENTS,
    RECIPES,
    RESOLUTIONS,
    ModelConfig,
    Recipe,
    TrainConfig,
)
from automod_cli.errors import AutomodError

# A narrow network for CPU runs on the built-in dataset (the paper-size net trains at ~1 image/s at 32² on 2 cores).
SMALL_CHANNELS = (64, 64, 48, 32, 32, 16, 8, 8)

M = 1_000_000
# Batch sizes per resolution on one 12 GB GPU (authors' code, DESIGN §8).
PAPER_BATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 32, 256: 16, 512: 4}
# Phase lengths: 2.4M images per phase up to 32², 10.4M at 64² (20.0M in total), then per dataset.
_BASE_IMAGES = {4: int(2.4 * M), 8: int(2.4 * M), 16: int(2.4 * M), 32: int(2.4 * M), 64: int(10.4 * M)}
# Learning rate 5e-4 until 32², then 1e-3.
PAPER_LR = {4: 5e-4, 8: 5e-4, 16: 5e-4, 32: 5e-4, 64: 1e-3, 128: 1e-3, 256: 1e-3, 512: 1e-3}
# KL margin 2.0 for the first two resolution steps, then 0.5.
PAPER_MARGIN = {4: 2.0, 8: 2.0, 16: 0.5, 32: 0.5, 64: 0.5, 128: 0.5, 256: 0.5, 512: 0.5}


def _paper_schedule(
    max_resolution: int, tail_images: dict[int, float], margins: dict[int, float] | None = None
) -> dict:
    images = {**_BASE_IMAGES, **{r: int(v * M) for r, v in tail_images.items()}}
    keep = [
        r for r in RESOLUTIONS if r in images
    ]  # tables reach past the target so --resolution can raise it
    return {
        "model": ModelConfig(max_resolution=max_resolution),
        "phase_images": {r: images[r] for r in keep},
        "batch_size": {r: PAPER_BATCH[r] for r in keep},
        "lr": {r: PAPER_LR[r] for r in keep},
        "kl_margin": {r: {**PAPER_MARGIN, **(margins or {})}[r] for r in keep},
    }


def _builtin_schedule() -> dict:
    """Sized so that `automod train` with no arguments reaches 32² on a 2-core CPU in about ten minutes; chosen by
    the search of docs/results/demo-search.md (issue 23): fewer images below 32², a short EMA, no L_j, bf16 where
    the CPU computes it natively, and (with the papers' recipe, recipe_settings) the AdaIN maps co-trained."""
    model = ModelConfig(max_resolution=32, latent_dim=128, channels=SMALL_CHANNELS)
    keep = (4, 8, 16, 32)
    return {
        "model": model,
        # 2026-12-02 on 2 cores, the demo's medians (benchmarks/RESULTS.md): ~1300, 550, 190, 75 images/s at 4², 8²,
        # 16², 32², so about 6 s, 30 s, 2 min and 6.5 min here; the 32² phase had 24k images of 104k until issue 23
        # 36k at 32² (30k until bf16, below, made that phase 1.3× faster): 40k fit ten minutes only just (9.9 min on
        # the idle machine), so the demo gives some of that time back
        "phase_images": {4: 8_000, 8: 16_000, 16: 24_000, 32: 36_000},
        "batch_size": {4: 64, 8: 64, 16: 32, 32: 32},
        # a short run's EMA decoder lags the trained one (the papers' 10k-image half-life cost 20 % of the held-out
        # error at 16²); 2k images is 60 decoder steps at 32²
        "ema_half_life": 2_000,
        # L_j off: at 32² with this budget every held-out measure was better without it, on both seeds of the
        # search (reconstruction 0.0105 against 0.0128, mix 0.0234 against 0.0300, FD_builtin 305 against 347)
        "layer_loss": False,
        # 1e-3: with the AdaIN maps co-trained (recipe_settings), 2e-3 mixed within issue 23's target on both seeds
        # (0.0172, 0.0179 against 0.0210, 0.0237) but sampled worse (FD_builtin 368 against 266; its make demo 522)
        "lr": {r: 1e-3 for r in keep},
        # 0.5 throughout: the paper's 2.0 for the first two phases slowed reconstruction here (8², 400 steps:
        # held-out MSE 0.108 against 0.072 with 0.5; docs/architecture.md, "Training status")
        "kl_margin": {r: 0.5 for r in keep},
        # bf16 where the CPU (or GPU) computes it natively: 1.3× the images per second at 16² and 32² on this
        # project's CPU. With 40k images at 32² in the time 30k took, held-out reconstruction and mix errors were a
        # fifth lower than with fp32 and 30k (two seeds each), FD_builtin a quarter higher (docs/results/demo-search.md)
        "precision": "auto",
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
AUTHORS_DATASET_MARGIN = {
    "celebahq": {128: 0.02, 256: 0.04},
    "lsun-bedroom": {128: 0.08, 256: 0.08, 512: 0.08},
    "lsun-car": {128: 0.08, 256: 0.08, 512: 0.08},
}
# The recipes: the papers' text (Recipe's defaults) and the authors' code where the two differ.
RECIPE_PRESETS: dict[str, Recipe] = {
    "paper": Recipe(),
    "authors": Recipe(
        name="authors",
        kl_scale=0.1,
        lambda_x=0.2,
        match_x=1.5,
        latent_distance="dot",
        lambda_z=100.0,
        encoder_objective="clamp",
        fake_pool=200,
        mixed_fraction_encoder=0.25,
        mixed_fraction_decoder=0.5,
        mix_start_level=1,
        split_all_blocks=False,
        layer_target="live",
        freeze_previous_rgb=True,
        ema_decay=0.999,
        encoder_passes="separate",
        robust_gradients="accumulated",
        robust_growth="flat",
        adain_cotrain="flip",
        initialisation="authors",
        real_fade="blended",
    ),
}
# Which recipe a preset uses unless told: the authors' for the papers' datasets (the recipe known to reach the
# published numbers), and for builtin and custom the one that measured better on the built-in data
# (docs/results/small-scale.md, "The two recipes").
DEFAULT_RECIPE = {**{name: "authors" for name in DATASET_PRESETS}, "builtin": "paper", "custom": "paper"}


def recipe_settings(recipe: str, preset: str) -> dict[str, Any]:
    """The settings `--recipe` implies for `preset`, as apply_overrides keys (applied after the preset's own): the
    recipe's value, and for the authors' recipe the schedule and data settings of their code too (mirroring, KL
    margins in their units and their learning rates everywhere; their fade-in length and batch sizes with the
    dataset presets, whose schedules are the paper's, builtin and custom keep their own; with builtin their
    loader's bilinear filter for the built-in images; with builtin and the papers' recipe the AdaIN maps
    co-trained, as the demo's search chose)."""
    if recipe not in RECIPE_PRESETS:
        raise AutomodError(f"unknown recipe '{recipe}': choose {' or '.join(RECIPES)} (--recipe).")
    settings: dict[str, Any] = {"recipe": RECIPE_PRESETS[recipe].to_dict()}
    if recipe == "authors":
        # their scheduler never applies its first entry: 4² trains at 1e-3 (docs/training.md)
        settings.update(
            {
                "mirror": True,
                "kl_margin": {**AUTHORS_MARGIN, **AUTHORS_DATASET_MARGIN.get(preset, {})},
                "lr": {**PAPER_LR, 4: 1e-3},
            }
        )
        if preset in DATASET_PRESETS:
            settings.update({"recipe.fade_images": 1_200_000, "batch_size": dict(AUTHORS_BATCH)})
        if preset == "builtin":  # their loader's filter; a prepared file holds automod prep's own pyramid
            settings["recipe.real_downscale"] = "bilinear"
    elif preset == "builtin":
        # the demo's ten minutes: the decoder's AdaIN maps also learn from the reconstruction term (the authors'
        # --phi_ada_cotrain); at the old learning rate every held-out measure was better with it, on average over
        # two seeds (docs/results/demo-search.md, "The third round")
        settings["recipe.adain_cotrain"] = "on"
    return settings


def train_preset(name: str) -> dict[str, Any]:
    """The keyword arguments of TrainConfig that a preset sets (before overrides)."""
    if name not in TRAIN_PRESETS:
        raise AutomodError(f"unknown preset '{name}': choose one of {', '.join(TRAIN_PRESETS)}.")
    return {"preset": name, **TRAIN_PRESETS[name]()}


def model_settings(kind: str, decoder: str | None = None) -> dict[str, Any]:
    """The settings `--model KIND` implies (its entry in the kinds' registry, automod_cli/kinds.py), as
    apply_overrides keys, for a run with `decoder` (None: the kind's own default). The user's overrides are applied
    after them."""
    if kind not in MODELS:
        raise AutomodError(f"unknown model '{kind}': choose one of {', '.join(MODELS)}.")
    if decoder is not None and decoder not in DECODERS:
        raise AutomodError(f"unknown decoder '{decoder}': choose one of {', '.join(DECODERS)}.")
    entry = kinds.get(kind)
    return {"kind": kind, **entry.settings(decoder or entry.decoder)}


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
    a model field, `recipe.fake_pool=0` (or `fake_pool=0`) one element of the recipe and `recipe={...}` several.
    String values are read as JSON when they parse (numbers, booleans, lists), else kept as text.
    """
    out = dict(settings)
    model = out.get("model", ModelConfig())
    model_fields = model.to_dict() if isinstance(model, ModelConfig) else dict(model)
    recipe = out.get("recipe", Recipe())
    recipe_fields = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)
    for key, raw in overrides.items():
        value = _parse_value(raw) if isinstance(raw, str) else raw
        head, _, tail = key.partition(".")
        if head in RECIPE_ELEMENTS and not tail:  # an element without its group's name
            head, tail = "recipe", head
        if head == "model":
            if tail not in model_fields:
                raise AutomodError(
                    f"unknown model setting '{tail}': choose one of {', '.join(model_fields)}."
                )
            model_fields[tail] = value
        elif head == "recipe":
            if not tail and isinstance(value, dict):
                recipe_fields.update(value)
            elif tail in recipe_fields:
                recipe_fields[tail] = value
            else:
                raise AutomodError(
                    f"'{key}': recipe.NAME=VALUE sets one element of the recipe, one of "
                    f"{', '.join(RECIPE_ELEMENTS)} (--recipe picks the recipe)."
                )
        elif head in PER_RESOLUTION:
            table = {int(k): v for k, v in out.get(head, {}).items()}
            if tail:
                if not tail.isdigit() or int(tail) not in RESOLUTIONS:
                    raise AutomodError(
                        f"'{key}': the part after the dot must be a resolution such as {head}.64."
                    )
                table[int(tail)] = value
            elif isinstance(
                value, dict
            ):  # {resolution: value} entries, e.g. from a recipe or a --config file
                table.update({int(k): v for k, v in value.items()})
            else:
                table = {r: value for r in RESOLUTIONS}
            out[head] = table
        elif tail:
            raise AutomodError(
                f"'{key}' is not a setting: only model.*, recipe.* and the per-resolution tables take a dot."
            )
        else:
            out[head] = value
    out["model"] = ModelConfig.from_dict(model_fields)
    out["recipe"] = Recipe.from_dict(recipe_fields)
    return out


def resolve_train_config(preset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The preset's values, then those of the recipe `overrides["recipe"]` (its name, or a recipe's dict with its
    name: recipe_settings; default: the preset's, DEFAULT_RECIPE), then the settings of the model kind named by
    `overrides["kind"]` (model_settings; default automod) and of `overrides["flip_invariance_layer"]`
    (invariance_settings), then the other `overrides` (see apply_overrides), validated."""
    overrides = dict(overrides or {})
    kind = overrides.get("kind", "automod")
    decoder = overrides.get("model.decoder")
    chosen = overrides.pop("recipe", None)
    if isinstance(
        chosen, dict
    ):  # a recipe's value (a saved config.json given to --config): its name, then it
        overrides = {"recipe": chosen, **overrides}
        chosen = chosen.get("name")
    recipe = chosen or DEFAULT_RECIPE.get(preset, "paper")
    settings = apply_overrides(train_preset(preset), recipe_settings(recipe, preset))
    settings = apply_overrides(settings, model_settings(kind, decoder))
    layer = overrides.get("flip_invariance_layer", 0)
    layer = _parse_value(layer) if isinstance(layer, str) else layer
    if type(layer) is int and layer > 0:  # anything else is refused by TrainConfig with its own message
        overrides = {
            **invariance_settings(layer),
            **overrides,
        }  # one step: the model is checked at its final size
    return TrainConfig.from_dict(apply_overrides(settings, overrides))
