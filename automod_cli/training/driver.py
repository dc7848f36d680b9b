"""The progressive driver that the automodulator and LIA trainers share (training/loop.py, training/lia.py):
grow phase by phase along the schedule, log and checkpoint on the configured cadence, stop cleanly on
SIGINT/SIGTERM, and end with a checkpoint and the last level's grids. Each trainer supplies its own step and
its checkpoint, grids and log-record hooks (ProgressiveTrainer)."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from automod_cli.config import TrainConfig
from automod_cli.training.metrics import MetricsLog
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import Progress

Report = Callable[[str, dict], None]


@dataclass
class TrainResult:
    run_dir: Path
    images_seen: int
    checkpoint: Path | None
    interrupted: bool
    grids: list[Path] = field(default_factory=list)
    signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM), when one did


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration and write a checkpoint."""

    def __init__(self):
        self.requested = False
        self.signal: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class ProgressiveTrainer(Protocol):
    """What `drive` needs of a trainer: where the run stands, and the hooks that do the trainer's own work."""

    config: Any  # the run's config (TrainConfig, LiaTrainConfig): its to_dict() is reported at the start
    run_dir: Path
    device: torch.device
    report: Report
    progress: Progress
    level: int  # the level last trained; set_phase moves it to the phase's level
    metrics: MetricsLog

    def set_phase(self, phase: PhaseState) -> None:
        """Grow to `phase.level` and draw batches at the phase's resolution and batch size."""

    def iteration(self, phase: PhaseState) -> None:
        """Train on one batch, advancing `progress` and adding the step's scalars to `metrics`."""

    def log_record(self, phase: PhaseState, images_per_s: float) -> dict:
        """Flush `metrics` into the record that is reported as a log event."""

    def checkpoint(self, phase: PhaseState) -> Path | None:
        """Write a checkpoint of the run as it stands (None where this process writes none)."""

    def grids(self) -> list[Path]:
        """Write the preview grids of the level last trained."""


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a step from `before` to `after` images passed a multiple of `every`."""
    return after // every > before // every


def drive(trainer: ProgressiveTrainer, schedule: TrainConfig, end: int, total: int, *,
          switch_stage: Callable[[], list[Path]] | None = None, checkpoint_at: int | None = None) -> TrainResult:
    """Train from the trainer's progress up to `end` images along `schedule`'s phases, or until SIGINT/SIGTERM.

    Before each iteration the trainer grows to the phase of the images seen (after writing the grids of the level
    it leaves), then `switch_stage`, when given, may change the trainer's stage and returns the grids it wrote. A
    log record is reported every `log_every` images and at `end`; a checkpoint is written every
    `checkpoint_every` images, at every growth step, after the step that passes `checkpoint_at` images, and at
    the end unless the last step wrote one. `total` is the full length of the run: reaching it writes the grids of
    the last level."""
    progress = trainer.progress
    trainer.report("start", {"config": trainer.config.to_dict(), "images_seen": progress.images_seen, "total": total,
                             "device": str(trainer.device)})
    grids: list[Path] = []
    last_ckpt, interrupted, stopped_by = None, False, None
    phase = phase_at(schedule, progress.images_seen)
    trainer.set_phase(phase)
    # images/s over each log interval; elapsed_s adds this process's time to what earlier (re)starts ran
    started, elapsed_before = time.perf_counter(), progress.elapsed_s
    interval_start, interval_images = started, progress.images_seen
    with _StopFlag() as stop:
        while progress.images_seen < end:
            phase = phase_at(schedule, progress.images_seen)
            if phase.level != trainer.level:
                grids += trainer.grids()
                trainer.set_phase(phase)
                trainer.report("phase", {"resolution": phase.resolution, "images_seen": progress.images_seen})
            if switch_stage is not None:
                grids += switch_stage()
            before = progress.images_seen
            trainer.iteration(phase)
            trainer.report("step", {"images_seen": progress.images_seen, "resolution": phase.resolution, "alpha": phase.alpha,
                                    **({"stage": trainer.active_stage} if hasattr(trainer, "active_stage") else {})})
            now = time.perf_counter()
            progress.elapsed_s = elapsed_before + (now - started)
            last_ckpt = None
            if _crossed(before, progress.images_seen, schedule.log_every) or progress.images_seen >= end:
                rate = (progress.images_seen - interval_images) / max(now - interval_start, 1e-9)
                interval_start, interval_images = now, progress.images_seen
                trainer.report("log", trainer.log_record(phase, rate))
            grows = phase_at(schedule, progress.images_seen).level != phase.level
            passes = checkpoint_at is not None and before < checkpoint_at <= progress.images_seen
            if _crossed(before, progress.images_seen, schedule.checkpoint_every) or grows or passes:
                last_ckpt = trainer.checkpoint(phase)
            if stop.requested:
                interrupted, stopped_by = True, stop.signal
                break
    if last_ckpt is None:
        last_ckpt = trainer.checkpoint(phase_at(schedule, progress.images_seen))
    if not interrupted and progress.images_seen >= total:
        grids += trainer.grids()
    trainer.metrics.close()
    trainer.report("done", {"images_seen": progress.images_seen, "interrupted": interrupted})
    return TrainResult(trainer.run_dir, progress.images_seen, last_ckpt, interrupted, grids, stopped_by)
