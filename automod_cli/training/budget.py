"""A time budget for a run (`automod train --time-budget M`): training ends within M minutes on any machine.

Only the last phase of the schedule shortens, and never below MIN_SHARE of its images: a run with a budget always
ends at its top resolution, faded in, and a slow or busy machine trains fewer images there instead of taking
longer. Where the last phase should end is projected from its own measured rate: images seen + images/s × the
time left. The projection is made at fixed image counts (every CHECKS-th part of the phase), which every rank
reaches together, so under torchrun the ranks agree on it (the smallest proposal wins); it only ever shortens the
run, and only by more than one check's worth, so that the noise of the rate does not nibble at it. The schedule
the run then follows, its checkpoints' config included, is `shortened`: the last phase's length (and with it its
fade-in, a share of that length) and `total_kimg` where the run has one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from automod_cli.config import TrainConfig

MIN_SHARE = 0.2  # the last phase keeps at least this share of its images, whatever the clock says
CHECKS = 100  # projections per last phase: one every 1 % of its images
MARK_SHARE = (
    0.01  # the rate is measured from this share of the phase on (past growth, data and thread set-up) ...
)
MARK_ITERATIONS = 5  # ... and from at least this many iterations of this process into it (a resumed run too)
# projections use a rate measured over at least this share of the phase (a tenth: the thread chooser's trials,
# training/threads.py, and the noise of a busy machine average out, and projections only ever shorten)
MEASURED_SHARE = 0.1


def last_phase_start(config: TrainConfig) -> int:
    """Images seen where the schedule's last phase begins."""
    return sum(config.phase_images[r] for r in config.resolutions[:-1])


def aligned(total: int, images_seen: int, step: int) -> int:
    """`total` moved up to where the run's iterations of `step` images from `images_seen` reach it, so that the
    shortened run ends exactly at its total."""
    return images_seen + -(-(total - images_seen) // step) * step


def shortened(config: TrainConfig, total: int) -> TrainConfig:
    """`config` with its run ending at `total` images (fewer than its own): the last phase as long as that leaves
    it, where that is shorter than its schedule, and a run length (`total_kimg`) that ends there, where it has one."""
    last = config.resolutions[-1]
    phase_images = dict(config.phase_images)
    phase_images[last] = min(phase_images[last], total - last_phase_start(config))
    kimg = None if config.total_kimg is None else (total - config.start_images) / 1000
    return dataclasses.replace(config, phase_images=phase_images, total_kimg=kimg)


@dataclass
class TimeBudget:
    """Where a run with a time budget of `seconds` must end, projected in its last phase (`start` to `start` +
    `length` images, planned). `observe` after every iteration; `due` says when a projection is made."""

    seconds: float
    start: int
    length: int
    iterations: int = 0  # iterations of this process in the last phase
    mark: tuple[int, float] | None = None  # (images, seconds) where this process's rate measurement starts

    @classmethod
    def of(cls, config: TrainConfig) -> TimeBudget | None:
        """The budget of a run with `config` (None: it has none)."""
        if config.time_budget_min is None:
            return None
        start = last_phase_start(config)
        return cls(config.time_budget_min * 60.0, start, max(1, config.total_images - start))

    @property
    def every(self) -> int:
        """Images between projections."""
        return max(1, self.length // CHECKS)

    @property
    def floor(self) -> int:
        """The fewest images the run ends at: the last phase's start plus MIN_SHARE of it."""
        return self.start + max(1, int(MIN_SHARE * self.length))

    def observe(self, before: int, images_seen: int, elapsed_s: float) -> None:
        """Count an iteration from `before` to `images_seen` images, which ended `elapsed_s` into the run; the rate
        measurement starts once it is past the last phase's set-up."""
        if before < self.start:
            return
        self.iterations += 1
        past_setup = (
            images_seen - self.start >= MARK_SHARE * self.length and self.iterations >= MARK_ITERATIONS
        )
        if self.mark is None and past_setup:
            self.mark = (images_seen, elapsed_s)

    def due(self, before: int, images_seen: int) -> bool:
        """Whether the iteration from `before` to `images_seen` in the last phase passed a projection point: the
        same on every rank."""
        if before < self.start:
            return False
        return (images_seen - self.start) // self.every > (before - self.start) // self.every

    def propose(self, images_seen: int, elapsed_s: float, total: int) -> int:
        """The images the run should end at, at most `total`: where the measured rate gets it by the end of the
        budget (never below `floor`), `images_seen` once the budget is spent, `total` while nothing says
        otherwise. Only a proposal shorter than `total` by more than one projection interval counts."""
        left = self.seconds - elapsed_s
        if left <= 0:
            proposal = images_seen
        elif self.mark is not None and images_seen - self.mark[0] >= MEASURED_SHARE * self.length:
            rate = (images_seen - self.mark[0]) / max(elapsed_s - self.mark[1], 1e-9)
            proposal = images_seen + int(rate * left)
        else:
            return total
        proposal = max(proposal, self.floor)
        return proposal if proposal < total - self.every or (left <= 0 and proposal < total) else total
