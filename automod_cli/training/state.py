"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is a pair written atomically, companion first:
  checkpoints/ckpt-<images>.safetensors   encoder, decoder, EMA decoder and d_ρ weights + JSON metadata
                                           (model and training config, level, α, images seen, step, data position)
  checkpoints/ckpt-<images>.train.pt      optimiser states and RNG states, read back with weights_only=True
The .safetensors file alone is a complete model for every other command (its EMA decoder is used).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from automod_cli import __version__
from automod_cli.checkpoint import CHECKPOINT_DIR, SUFFIX, atomic_write, read_checkpoint, run_checkpoints, save_checkpoint
from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.training.data import Position

COMPANION = ".train.pt"


@dataclass
class Progress:
    images_seen: int = 0
    step: int = 0
    position: Position = Position()
    elapsed_s: float = 0.0  # seconds the training loop has run, summed over every (re)start of the run


def companion_of(path: Path) -> Path:
    return path.with_name(path.name[: -len(SUFFIX)] + COMPANION)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_training_checkpoint(
    run_dir: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    config: TrainConfig,
    progress: Progress,
    level: int,
    alpha: float,
    keep: int,
    state: dict[str, Any] | None = None,
) -> Path:
    """An automodulator (or PIONEER/VAE/WAE) run's checkpoint pair: `write_training_checkpoint` with its configs."""
    meta = {"model_config": config.model.to_dict(), "train_config": config.to_dict(), "level": level, "alpha": alpha}
    return write_training_checkpoint(run_dir, modules, optimizers, meta, progress, keep, state)


def write_training_checkpoint(
    run_dir: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any],
    progress: Progress,
    keep: int,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint pair (weights with `meta` plus where the run stands; optimiser and RNG states, and any
    other training `state` of tensors and plain values, e.g. the image pool, in the companion), then delete all but
    the newest `keep` pairs. Returns the .safetensors path."""
    path = Path(run_dir) / CHECKPOINT_DIR / f"ckpt-{progress.images_seen:010d}{SUFFIX}"
    companion = {"optimizers": {k: opt.state_dict() for k, opt in optimizers.items()}, "rng": _rng_state(),
                 "state": state or {}}
    atomic_write(companion_of(path), lambda tmp: torch.save(companion, tmp))
    tensors = {f"{prefix}.{k}": v for prefix, module in modules.items() for k, v in module.state_dict().items()}
    meta = {
        **meta,
        "images_seen": progress.images_seen,
        "step": progress.step,
        "position": asdict(progress.position),
        "elapsed_s": progress.elapsed_s,
        "automod_version": __version__,
    }
    save_checkpoint(path, tensors, meta)
    for old in run_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        companion_of(old).unlink(missing_ok=True)
    return path


@dataclass
class Restored:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizers: dict[str, dict]
    rng: dict[str, Any]
    progress: Progress
    config: TrainConfig
    state: dict[str, Any]  # the trainer's other state (write_training_checkpoint's `state`)


def load_training_checkpoint(path: Path) -> Restored:
    """Read a checkpoint pair for resuming; only tensors and plain containers are unpickled (weights_only)."""
    tensors, meta = read_checkpoint(path)
    companion = companion_of(Path(path))
    if "train_config" not in meta or not companion.is_file():
        raise AutomodError(f"'{path}' is an exported model without training state; it cannot be resumed.")
    try:
        extra = torch.load(companion, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the file is damaged or foreign
        raise AutomodError(f"'{companion}' cannot be read ({type(exc).__name__}); resume from an older checkpoint.") from None
    progress = Progress(meta["images_seen"], meta["step"], Position(**meta["position"]), meta.get("elapsed_s", 0.0))
    return Restored(tensors, meta, extra["optimizers"], extra["rng"], progress, TrainConfig.from_dict(meta["train_config"]),
                    extra.get("state", {}))


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def load_module_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    module.load_state_dict(state)


def restore_training(restored: Restored, modules: dict[str, torch.nn.Module],
                     optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Put a resumed run back where it stopped: each module's weights from its checkpoint prefix, each
    optimiser's state, and the RNG (last, so that nothing done while restoring draws from it)."""
    for prefix, module in modules.items():
        load_module_state(module, restored.tensors, prefix)
    for name, state in restored.optimizers.items():
        optimizers[name].load_state_dict(state)
    restore_rng(restored.rng)
