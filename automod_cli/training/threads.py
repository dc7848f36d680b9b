"""How many CPU threads a training run computes with (issue 23 item 3).

On a CPU, torch splits every operation between its intra-op threads, and the threads meet after each one. When
another process takes one of the cores, the thread that shares it is descheduled for whole time slices and the
others wait for it after every operation: on 2 cores, two threads then ran at 0.28–0.36× their speed alone, while
one thread kept full speed (benchmarks/RESULTS.md). No fixed choice is right on both an idle and a busy machine, so
a CPU run measures: it trains in windows of a few seconds, and now and then tries one thread fewer (or more) for
one window, then the current count again, and keeps whichever computed more images per second. A window slower
than the one before by a third starts a trial at once (another process has started), and trials that find
nothing better come at longer and longer intervals (up to `longest_s`), so a long phase loses little to
them (a one-minute window holding two trials ran at 0.88x two fixed threads: benchmarks/RESULTS.md).

The thread count changes the order of some sums (convolution gradients), so a run whose count changes is not
bit-for-bit the run that kept it: `automod train --threads N` (or OMP_NUM_THREADS in the environment) fixes the
count, and with it the arithmetic, for runs that must repeat exactly.
"""

from __future__ import annotations

import os
from typing import Callable, Hashable

import torch


class ThreadChooser:
    """Chooses torch's intra-op thread count from measured speed. `observe(images, seconds, key)` after every
    training iteration (its time only, without checkpoints or logs); `key` names what the rate belongs to (the
    phase's resolution: a new key starts the measuring again). `set_threads(n)` is called on every change."""

    def __init__(
        self,
        most: int,
        set_threads: Callable[[int], None],
        *,
        window_s: float = 2.0,
        first_s: float = 10.0,
        longest_s: float = 160.0,
        margin: float = 0.1,
        drop: float = 2 / 3,
    ) -> None:
        if most < 1:
            raise ValueError(f"most must be at least 1, got {most}")
        self.most, self.set_threads = most, set_threads
        self.window_s, self.first_s, self.longest_s = window_s, first_s, longest_s
        self.margin, self.drop = margin, drop
        self.threads = most  # the count chosen; during a trial the one tried is `trial`
        self.trial: int | None = None
        self.changes: list[tuple[int, int]] = []  # (from, to) for every switch of the chosen count
        self._down = True  # which neighbour the next trial tries, where both exist
        self._reset(None)

    # ---- what the training loop calls
    def observe(self, images: int, seconds: float, key: Hashable = None) -> None:
        if self.most == 1:
            return
        if key != self._key:
            if self._mode != "run":
                self._use(self.threads)
            self._reset(key)
            return
        if self._skip:  # the first iteration after a change (or a new key) sets up its threads and kernels
            self._skip = False
            return
        self._images += images
        self._seconds += seconds
        if self._seconds < self.window_s:
            return
        rate, window = self._images / self._seconds, self._seconds
        self._images, self._seconds = 0, 0.0
        if self._mode == "run":
            self._ran(rate, window)
        elif self._mode == "trial":
            self._trial_rate = rate
            self._mode = "back"
            self._use(self.threads)
        else:  # back on the chosen count: compare the trial with the windows on either side of it
            base = (self._before + rate) / 2
            if self._trial_rate > (1 + self.margin) * base:
                self.changes.append((self.threads, self.trial))
                self.threads = self.trial
                self._use(self.threads)
                self._every = self.first_s
                self._last = self._trial_rate
            else:
                self._every = min(2 * self._every, self.longest_s)
                self._last = rate
            self.trial, self._mode, self._since = None, "run", 0.0

    def settle(self) -> None:
        """End a trial, if one is running, on the chosen count."""
        if self._mode != "run":
            self._use(self.threads)
            self._reset(self._key)

    # ---- the steps
    def _reset(self, key: Hashable) -> None:
        self._key, self._mode, self._skip = key, "run", True
        self._images, self._seconds, self._since = 0, 0.0, 0.0
        self._every = self.first_s  # a new phase's best count may differ: try soon
        self._last: float | None = None
        self.trial = None

    def _ran(self, rate: float, window: float) -> None:
        self._since += window
        dropped = self._last is not None and rate < self.drop * self._last
        self._last = rate
        if not (dropped or self._since >= self._every):
            return
        neighbours = [n for n in (self.threads - 1, self.threads + 1) if 1 <= n <= self.most]
        if len(neighbours) == 2:
            self.trial = neighbours[0] if self._down else neighbours[1]
            self._down = not self._down
        else:
            self.trial = neighbours[0]
        self._before, self._mode = rate, "trial"
        self._use(self.trial)

    def _use(self, threads: int) -> None:
        self.set_threads(threads)
        self._skip = True
        self._images, self._seconds = 0, 0.0


def pinned() -> bool:
    """Whether the process's thread count was fixed: `automod train --threads N` or OMP_NUM_THREADS."""
    return bool(os.environ.get("OMP_NUM_THREADS"))


def pin(threads: int) -> None:
    """Fix torch's intra-op threads at `threads` for this process (`--threads N`): no chooser then."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def chooser_for(device, world_size: int) -> ThreadChooser | None:
    """The chooser a run on `device` uses: on a CPU, one process, its thread count not pinned, more than one thread."""
    if getattr(device, "type", str(device)) != "cpu" or world_size != 1 or pinned():
        return None
    most = torch.get_num_threads()
    return ThreadChooser(most, torch.set_num_threads) if most > 1 else None
