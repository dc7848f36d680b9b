"""The training loop of every model kind: one function, `training_loop`, that shows a whole iteration.

    set-up     report the run, grow to the phase of the images seen
    loop       phase → [growth] → [stage] → iteration (data → the kind's train step: encoder and decoder
               steps, or its own → EMA → counters) → log → checkpoint → stop?
    end        a final checkpoint and the last level's grids
    budget     with a time budget, the last phase shortens to end in time (training/budget.py)

A model kind (training/automodulator.py: automod, PIONEER, VAE, WAE; training/lia/run.py: LIA) is a
`TrainingRun` (training/run.py) that supplies its networks, its `train_step(x, phase) -> scalars`, its EMA source,
its checkpoint metadata and its preview grids; everything else here is the same for every kind.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from automod_cli.config import TrainConfig
from automod_cli.training.budget import TimeBudget, aligned, shortened
from automod_cli.training.distributed import smallest
from automod_cli.training.ema import update_ema
from automod_cli.training.run import TrainingRun
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.threads import chooser_for


clock = time.perf_counter  # the loop's seconds (a test of the time budget gives it a clock of its own)


@dataclass
class TrainResult:
    run_dir: Path
    images_seen: int
    checkpoint: Path | None
    interrupted: bool
    grids: list[Path] = field(default_factory=list)
    signal: int | None = None  # the signal that stopped the run (SIGINT, SIGTERM), when one did
    planned: int | None = None  # where the run was to end, when its time budget shortened it


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


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a step from `before` to `after` images passed a multiple of `every`."""
    return after // every > before // every


def train_on(run: TrainingRun, x: torch.Tensor, phase: PhaseState) -> dict[str, torch.Tensor]:
    """The training of one iteration on the batch `x`: the kind's step (an encoder step and a decoder step, or its
    own) at the phase's learning rate, then the EMA of the decoder (generator) being trained; the step's scalars."""
    run.set_learning_rates(phase)
    scalars = run.train_step(x, phase)
    source = run.ema_source()
    if source is not None:
        update_ema(run.ema, source, run.ema_beta(phase))
    return scalars


def iteration(run: TrainingRun, phase: PhaseState) -> None:
    """One training iteration of any model kind: data, `train_on`, counters and the step's scalars."""
    x = run.batch(phase)
    run.count(phase, train_on(run, x, phase))


def shorten(run: TrainingRun, total: int, planned: int, budget: TimeBudget) -> TrainConfig:
    """End the run at `total` images to keep within its time budget (`planned`: where it was to end); the
    shortened schedule, which the run and its checkpoints now carry."""
    run.follow(shortened(run.train_config, total))
    minutes = budget.seconds / 60
    top = run.train_config.resolutions[-1]
    run.report("budget", {"total": total, "planned": planned, "minutes": minutes, "resolution": top})
    return run.train_config


def training_loop(run: TrainingRun, end: int, total: int, checkpoint_at: int | None = None) -> TrainResult:
    """Train `run` from the images it has seen up to `end` images along its schedule, or until SIGINT/SIGTERM.

    A log record is reported every `log_every` images and at `end`; a checkpoint is written every
    `checkpoint_every` images, at every growth step, after the iteration that passes `checkpoint_at` images, and
    at the end unless the last iteration wrote one. `total` is the full length of the run: reaching it writes the
    grids of the last level."""
    # set-up
    schedule, counters = run.train_config, run.counters
    run.prepare()
    run.report(
        "start",
        {
            "config": run.config.to_dict(),
            "images_seen": counters.images_seen,
            "total": total,
            "device": str(run.device),
            "precision": run.precision.precision,  # what the run computes in ("auto" resolved for this device)
        },
    )
    grids: list[Path] = []
    last_ckpt, interrupted, stopped_by = None, False, None
    phase = phase_at(schedule, counters.images_seen)
    run.set_phase(phase)
    threads = chooser_for(run.device, run.world.size)  # CPU: the thread count measured as it goes
    # images/s over each log interval; elapsed_s adds this process's time to what earlier (re)starts ran
    started, elapsed_before = clock(), counters.elapsed_s
    budget, planned = TimeBudget.of(schedule), total
    interval_start, interval_images = started, counters.images_seen
    with _StopFlag() as stop:
        while counters.images_seen < end:
            # growth: the previous level's grids, then the networks and data at the phase's level
            phase = phase_at(schedule, counters.images_seen)
            if phase.level != run.level:
                grids += run.grids()
                run.set_phase(phase)
                run.report("phase", {"resolution": phase.resolution, "images_seen": counters.images_seen})
            grids += run.next_stage()  # LIA: stage 2 once stage 1's images are seen
            before, began = counters.images_seen, clock()
            iteration(run, phase)  # data, the kind's encoder and decoder steps, EMA, counters
            if threads is not None:
                threads.observe(counters.images_seen - before, clock() - began, phase.resolution)
            run.report(
                "step",
                {
                    "images_seen": counters.images_seen,
                    "resolution": phase.resolution,
                    "alpha": phase.alpha,
                    **run.report_fields(),
                },
            )
            now = clock()
            counters.elapsed_s = elapsed_before + (now - started)
            if budget is not None:
                budget.observe(before, counters.images_seen, counters.elapsed_s)
                if budget.due(before, counters.images_seen):
                    proposal = budget.propose(counters.images_seen, counters.elapsed_s, total)
                    proposal = smallest(proposal, run.world, run.device)  # the ranks agree
                    proposal = aligned(proposal, counters.images_seen, phase.batch_size * run.world.size)
                    if proposal < total:
                        schedule, total, end = (
                            shorten(run, proposal, planned, budget),
                            proposal,
                            min(end, proposal),
                        )
            last_ckpt = None
            if _crossed(before, counters.images_seen, schedule.log_every) or counters.images_seen >= end:
                rate = (counters.images_seen - interval_images) / max(now - interval_start, 1e-9)
                interval_start, interval_images = now, counters.images_seen
                run.report("log", run.log_record(phase, rate))
            grows = phase_at(schedule, counters.images_seen).level != phase.level
            passes = checkpoint_at is not None and before < checkpoint_at <= counters.images_seen
            if _crossed(before, counters.images_seen, schedule.checkpoint_every) or grows or passes:
                last_ckpt = run.checkpoint(phase)
            if stop.requested:
                interrupted, stopped_by = True, stop.signal
                break
    # end
    if threads is not None:
        threads.settle()  # back to the chosen count if the run stopped during a trial
    if last_ckpt is None:
        last_ckpt = run.checkpoint(phase_at(schedule, counters.images_seen))
    if not interrupted and counters.images_seen >= total:
        grids += run.grids()
    run.log.close()
    run.report("done", {"images_seen": counters.images_seen, "interrupted": interrupted})
    cut = planned if total < planned else None
    return TrainResult(run.run_dir, counters.images_seen, last_ckpt, interrupted, grids, stopped_by, cut)
