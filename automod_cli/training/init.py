"""Fine-tuning: a run that starts from a trained model's weights (`automod train --init MODEL`).

The run takes the model's network shape, starts the schedule at the model's level (and fade-in), and loads the
encoder, the decoder, its EMA and d_ρ's parameters where the file has them (an imported authors' checkpoint has
all four; a file exported with only the EMA decoder starts the raw decoder from it too). Optimisers start fresh.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from automod_cli.checkpoint import model_kind, read_checkpoint, read_meta, tensors_under
from automod_cli.locate import find_checkpoint
from automod_cli.config import ModelConfig, TrainConfig
from automod_cli.presets import train_preset
from automod_cli.errors import AutomodError
from automod_cli.training.schedule import fade_images, phase_at


def _phase_start(config: TrainConfig, level: int) -> tuple[int, int]:
    """(images seen when `level`'s phase begins, its fade-in length) in `config`'s schedule."""
    start = sum(config.phase_images[r] for r in config.resolutions[:level])
    phase = phase_at(config, start)
    return start, 0 if level == 0 else fade_images(config, phase.end - phase.start)


def init_model(
    init: str | Path, max_resolution: int | None = None, preset: str | None = None
) -> tuple[Path, int]:
    """The checkpoint that `--init` names (a checkpoint, run directory or model name) and its resolution, which
    the run's schedule (`preset`'s) must reach; `max_resolution` (--max-res), if given, must be that resolution."""
    path = find_checkpoint(Path(init))
    meta = read_meta(path)
    if "model_config" not in meta:
        raise AutomodError(
            f"--init takes an automodulator model (or a PIONEER, VAE or WAE one); '{path}' is not one."
        )
    resolution = ModelConfig.from_dict(meta["model_config"]).max_resolution
    if max_resolution is not None and max_resolution != resolution:
        raise AutomodError(
            f"'{path}' is a {resolution}² model: fine-tune it at that resolution (drop --max-res "
            f"{max_resolution})."
        )
    if preset is not None and resolution not in train_preset(preset)["phase_images"]:
        raise AutomodError(
            f"the '{preset}' preset has no schedule at {resolution}², the resolution of '{path}': "
            "fine-tune on your data file with a preset that reaches it (--preset ffhq, celebahq, "
            "lsun-bedroom, lsun-car or custom)."
        )
    return path, resolution


def init_config(config: TrainConfig, path: Path) -> TrainConfig:
    """`config` set up to start from the model in checkpoint `path`: its network shape, and the schedule position
    of its level and fade-in."""
    meta = read_meta(path)
    kind = model_kind(meta)
    if kind != config.kind:
        raise AutomodError(
            f"'{path}' holds a model of kind '{kind}' but this run trains '{config.kind}': pass "
            f"--model {kind}."
        )
    model = ModelConfig.from_dict(meta["model_config"])
    if config.model.max_resolution != model.max_resolution:
        raise AutomodError(
            f"this run's schedule ends at {config.model.max_resolution}² but '{path}' is a "
            f"{model.max_resolution}² model: set --max-res {model.max_resolution}."
        )
    tuned = dataclasses.replace(config, model=model)
    level, alpha = int(meta["level"]), float(meta.get("alpha", 1.0))
    start, fade = _phase_start(tuned, level)
    return dataclasses.replace(tuned, init=str(path), start_images=start + int(round(alpha * fade)))


def load_init_weights(config: TrainConfig, modules: dict[str, torch.nn.Module]) -> None:
    """Load the init model's weights into the run's `modules` (encoder, decoder, decoder_ema, robust)."""
    tensors, _ = read_checkpoint(Path(config.init))
    prefixes = {name: name for name in modules}
    if not any(k.startswith("decoder.") for k in tensors):
        prefixes["decoder"] = "decoder_ema"
    if not any(k.startswith("decoder_ema.") for k in tensors):
        prefixes["decoder_ema"] = "decoder"
    for name, module in modules.items():
        state = tensors_under(tensors, prefixes[name])
        if name == "robust" and (not state or state["latent_alpha"].shape != module.latent_alpha.shape):
            continue  # d_ρ starts fresh when the file has none at this resolution
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise AutomodError(f"'{config.init}' does not fit the network of this run ({first}).") from None
