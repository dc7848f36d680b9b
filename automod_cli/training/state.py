"""Training checkpoints: everything needed to continue a run exactly where it stopped, for every model kind.

A checkpoint is a pair written atomically, companion first:
  checkpoints/ckpt-<images>.safetensors   encoder, decoder, EMA decoder and d_ρ weights + JSON metadata
                                           (model and training config, level, α, images seen, step, data position)
  checkpoints/ckpt-<images>.train.pt      optimiser states and RNG states, read back with weights_only=True
The .safetensors file alone is a complete model for every other command (its EMA decoder is used); its format is
checkpoint.py's, and each model kind adds its own metadata (training/automodulator.py, training/lia/run.py).
`latest_resumable` is here rather than beside locate.find_checkpoint because only the pair can be resumed
from: it skips checkpoints whose companion is missing or damaged, which find_checkpoint need not know about.
"""

from __future__ import annotations

import errno
import shutil
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from automod_cli import __version__
from automod_cli.checkpoint import (
    CHECKPOINT_DIR,
    SUFFIX,
    module_tensors,
    read_checkpoint,
    read_meta,
    run_checkpoints,
    save_checkpoint,
    tensors_under,
)
from automod_cli.outputs import atomic_write
from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.training.data import Position

COMPANION = ".train.pt"


@dataclass
class RunCounters:
    """Where a run stands: images and iterations trained, the data order's position and the training seconds."""

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


def write_training_checkpoint(
    run_dir: Path,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any],
    counters: RunCounters,
    keep: int,
    state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint pair (weights with `meta` plus where the run stands; optimiser and RNG states, and any
    other training `state` of tensors and plain values, e.g. the image pool, in the companion), then delete all but
    the newest `keep` pairs. Returns the .safetensors path."""
    path = Path(run_dir) / CHECKPOINT_DIR / f"ckpt-{counters.images_seen:010d}{SUFFIX}"
    companion = {
        "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
        "rng": _rng_state(),
        "state": state or {},
    }
    tensors = module_tensors(modules)
    meta = {
        **meta,
        "images_seen": counters.images_seen,
        "step": counters.step,
        "position": asdict(counters.position),
        "elapsed_s": counters.elapsed_s,
        "automod_version": __version__,
    }
    try:
        atomic_write(companion_of(path), lambda tmp: torch.save(companion, tmp))
        save_checkpoint(path, tensors, meta)
    except (
        OSError,
        RuntimeError,
    ) as exc:  # torch.save reports a full disk as a RuntimeError of its zip writer
        companion_of(path).unlink(missing_ok=True)  # never leave half a pair
        raise AutomodError(_write_failure(path, exc)) from None
    for old in run_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
        companion_of(old).unlink(missing_ok=True)
    return path


def _write_failure(path: Path, exc: BaseException) -> str:
    """One line for a checkpoint that could not be written: a full disk named as such, anything else as it is."""
    free = shutil.disk_usage(path.parent).free if path.parent.exists() else 0
    full = getattr(exc, "errno", None) == errno.ENOSPC or "write failed" in str(exc) or free < 16 * 2**20
    run_dir = path.parent.parent
    if full:
        return (
            f"cannot write checkpoint {path.name}: the disk holding '{run_dir}' is full ({free / 2**20:.1f} MB "
            "free). The run stopped; older checkpoints are intact. Free some space and continue with: "
            f"automod train --resume {run_dir}"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot write checkpoint {path.name} ({first}); older checkpoints are intact: "
        f"automod train --resume {run_dir}"
    )


def pair_problem(path: Path, check_data: bool = True) -> str | None:
    """Why the checkpoint pair at `path` cannot be resumed from (its weights file unreadable, its training state
    missing or damaged), or None. Reads headers and, with `check_data`, the companion's zip CRCs (a full read of
    it); nothing is unpickled."""
    try:
        meta = read_meta(path)
    except AutomodError as exc:
        return str(exc)
    if "train_config" not in meta:
        return f"'{path}' is an exported model without training state"
    companion = companion_of(Path(path))
    if not companion.is_file():
        return f"its training state {companion.name} is missing"
    if not check_data:
        return None
    try:
        with zipfile.ZipFile(companion) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        return f"its training state {companion.name} is damaged ({exc})"
    return (
        None if broken is None else f"its training state {companion.name} is damaged ({broken} fails its CRC)"
    )


def latest_resumable(run_dir: Path) -> tuple[Path, list[str]]:
    """The newest checkpoint pair of `run_dir` that can be resumed from, and one note for each newer pair that was
    passed over (damaged or incomplete, e.g. after a crash while writing)."""
    found = run_checkpoints(run_dir)
    if not found:
        started = (Path(run_dir) / "config.json").is_file()
        what = "its run stopped before writing its first checkpoint" if started else "it holds no run"
        raise AutomodError(
            f"'{run_dir}' has no checkpoint to resume from ({what}): start the run again, with the "
            "same automod train command without --resume."
        )
    notes = []
    for path in reversed(found):
        problem = pair_problem(path)
        if problem is None:
            return path, notes
        notes.append(f"passing over {path.name}: {problem}")
    raise AutomodError(
        f"none of the {len(found)} checkpoints in '{run_dir}' can be resumed from ({notes[0]}); start "
        "a new run."
    )


@dataclass
class Restored:
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]
    optimizers: dict[str, dict]
    rng: dict[str, Any]
    counters: RunCounters
    config: TrainConfig
    state: dict[str, Any]  # the trainer's other state (write_training_checkpoint's `state`)


def load_training_checkpoint(path: Path) -> Restored:
    """Read a checkpoint pair for resuming; only tensors and plain containers are unpickled (weights_only)."""
    problem = pair_problem(path, check_data=False)  # damaged data shows when torch.load reads it below
    if problem is not None:
        raise AutomodError(f"cannot resume from '{path}': {problem}{_intact_hint(Path(path))}.")
    tensors, meta = read_checkpoint(path)
    companion = companion_of(Path(path))
    try:
        extra = torch.load(companion, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the file is damaged or foreign
        raise AutomodError(
            f"'{companion}' cannot be read ({type(exc).__name__}){_intact_hint(Path(path))}."
        ) from None
    counters = RunCounters(
        meta["images_seen"], meta["step"], Position(**meta["position"]), meta.get("elapsed_s", 0.0)
    )
    return Restored(
        tensors,
        meta,
        extra["optimizers"],
        extra["rng"],
        counters,
        TrainConfig.from_dict(meta["train_config"]),
        extra.get("state", {}),
    )


def _intact_hint(path: Path) -> str:
    """'; resume from another checkpoint with --resume X' naming the newest intact pair beside `path`, or ''."""
    run_dir = path.parent.parent
    others = [p for p in reversed(run_checkpoints(run_dir)) if p != path and pair_problem(p) is None]
    return f"; resume from the newest intact one with --resume {others[0]}" if others else ""


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def restore_training(
    restored: Restored, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> None:
    """Put a resumed run back where it stopped: each module's weights from its checkpoint prefix, each
    optimiser's state, and the RNG (last, so that nothing done while restoring draws from it)."""
    for prefix, module in modules.items():
        module.load_state_dict(tensors_under(restored.tensors, prefix))
    for name, state in restored.optimizers.items():
        optimizers[name].load_state_dict(state)
    restore_rng(restored.rng)
