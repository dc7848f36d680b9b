"""The model kinds, in one registry: what `automod train --model KIND` trains and what a checkpoint holds.

Each `ModelKind` says, as data, what the rest of the code reads of it:
- its latent space and default decoder, which the networks are built with (`config.TrainConfig` checks them);
- the settings `--model KIND` implies (`presets.resolve_train_config` applies them after the recipe);
- its train step: the automodulator's encoder-decoder game (`training/steps.py`), one joint loss
  (`training/baselines.py`, whose JOINT_STEPS holds each such kind's step) or its own staged run (LIA:
  `training/lia/`, with its own config type);
- what image operations it supports (`mixes`: whether its decoder takes a latent per block);
- how its checkpoint is recognised: the `kind` its metadata records, else (older files) the network's shape, and
  where the metadata keeps its network's config (`config_key`; `checkpoint.model_from_checkpoint` rebuilds it).
Adding a kind is an entry here plus its own modules (docs/architecture.md, "How to add ...").

Free of torch and of the rest of the package (the error type aside), so `automod train --help` lists the kinds
without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from automod_cli.errors import AutomodError

GAME, JOINT, STAGES = (
    "game",
    "joint",
    "stages",
)  # the train steps: AGE's two-player game, one joint loss, LIA's stages
VAE_KL_WEIGHT = 0.005  # Supp. App. A: "the weight for KL divergence loss term was 0.005"
WAE_MMD_WEIGHT = {
    "adain": 4.0,
    "classic": 2.0,
}  # Supp. App. A: MMD weight 4 with the AdaIN decoder, 2 with the classic
NO_MIXING = {"layer_loss": False, "recipe.mixed_fraction_encoder": 0.0, "recipe.mixed_fraction_decoder": 0.0}
# the baselines' decoders learn as their papers say: Balanced PIONEER's only in its own step (a classic decoder has no
# AdaIN maps anyway), VAE's and WAE's from their joint loss; recorded off so config.json says what runs
BASELINE = {**NO_MIXING, "recipe.adain_cotrain": "off"}


@dataclass(frozen=True)
class ModelKind:
    name: str  # `--model NAME`, the checkpoint metadata's "kind"
    title: str  # what `--help` and the docs call it
    latent: str  # "sphere" (unit vectors) or "gaussian" (N(0, I))
    variational: bool  # the encoder gives a posterior (mean and variance)
    decoder: str  # the decoder it is built with unless `--decoder` says otherwise: "adain" or "classic"
    step: str  # GAME, JOINT or STAGES (module docstring)
    settings: Callable[[str], dict[str, Any]]  # decoder → what `--model NAME` implies, as `--set` keys
    mixes: bool = (
        True  # whether its decoder can take a latent per block (style mixing, L_j) with an AdaIN decoder
    )
    config_key: str = "model_config"  # where its checkpoint's metadata keeps the network's config
    recognised: Callable[[dict[str, Any]], bool] = lambda model_config: False  # a file recording no kind


def _automod(decoder: str) -> dict[str, Any]:
    # a classic decoder has no AdaIN maps to co-train (the builtin preset's recipe turns it on)
    return {"model.decoder": decoder, **({"recipe.adain_cotrain": "off"} if decoder == "classic" else {})}


def _pioneer(decoder: str) -> dict[str, Any]:
    # Balanced PIONEER (NeurIPS Table 2a): the same AGE game with the classic decoder, without the automodulator's
    # mixed samples and L_j (NeurIPS Sec. 3.2) and with the L1 image distance that d_ρ replaced (NeurIPS Eq. 1 and
    # Table 1, "d_ρ replacing L1").
    return {"model.decoder": decoder, "reconstruction": "l1", **BASELINE}


def _gaussian(decoder: str) -> dict[str, Any]:
    # VAE and WAE: Gaussian N(0, I) latents and the squared L2 image distance (the Gaussian likelihood of a VAE; the
    # cost c(x, y) = ‖x − y‖² of WAE, Tolstikhin et al. 2018). Learning rates: Supp. App. A, for the whole
    # schedule. One joint loss, no AGE game: no mixed samples and no L_j (recorded off so config.json says what runs).
    return {"model.decoder": decoder, "model.latent": "gaussian", "reconstruction": "l2", **BASELINE}


def _vae(decoder: str) -> dict[str, Any]:
    return {
        **_gaussian(decoder),
        "model.variational": True,
        "kl_weight": VAE_KL_WEIGHT,
        "lr": 5e-4,
        "encoder_lr_scale": 0.2,
    }  # decoder 5e-4, encoder 1e-4


def _wae(decoder: str) -> dict[str, Any]:
    return {
        **_gaussian(decoder),
        "model.variational": False,
        "mmd_weight": WAE_MMD_WEIGHT[decoder],
        "lr": 2e-4,
    }  # both networks 2e-4


def _lia(decoder: str) -> dict[str, Any]:
    return {}  # LIA's settings are its own config's (training/lia/config.py: resolve_lia_config)


KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind("automod", "automodulator", "sphere", False, "adain", GAME, _automod),
        ModelKind(
            "pioneer",
            "Balanced PIONEER",
            "sphere",
            False,
            "classic",
            GAME,
            _pioneer,
            recognised=lambda model: model.get("decoder") == "classic",
        ),
        ModelKind(
            "vae",
            "VAE",
            "gaussian",
            True,
            "adain",
            JOINT,
            _vae,
            recognised=lambda model: bool(model.get("variational")),
        ),
        ModelKind(
            "wae",
            "WAE-MMD",
            "gaussian",
            False,
            "adain",
            JOINT,
            _wae,
            recognised=lambda model: model.get("latent") == "gaussian",
        ),
        ModelKind("lia", "LIA", "gaussian", False, "adain", STAGES, _lia, config_key="lia_config"),
    )
}
DEFAULT = "automod"
# the kinds a TrainConfig trains (the others have their own config type)
CONFIG_KINDS = tuple(name for name, kind in KINDS.items() if kind.step != STAGES)
# the order in which a file that records no kind is recognised by its network's config (the first that fits)
_RECOGNITION_ORDER = ("vae", "wae", "pioneer")


def get(name: str) -> ModelKind:
    """The kind called `name`; one line naming the kinds for any other name."""
    try:
        return KINDS[name]
    except KeyError:
        raise AutomodError(f"unknown model '{name}': choose one of {', '.join(KINDS)}.") from None


def of_meta(meta: dict[str, Any]) -> ModelKind:
    """The kind of the model a checkpoint's metadata describes: the kind it records (a model's own, or its training
    run's), else the first kind whose network config it holds; the automodulator when none fits."""
    name = meta.get("kind") or (meta.get("train_config") or {}).get("kind")
    if name:
        return get(name)
    model = meta.get("model_config") or {}
    return next((KINDS[name] for name in _RECOGNITION_ORDER if KINDS[name].recognised(model)), KINDS[DEFAULT])
