"""What `automod train` says while and after it runs: where the run will end, progress fed by the training loop's
report events (a rich bar in a terminal, plain lines in a log), and its last lines (done, or how to continue)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from automod_cli.console import console, say

# the training modules import torch: they are imported when the command runs, never for --help
if TYPE_CHECKING:
    from automod_cli.training.loop import TrainResult
    from automod_cli.training.start import Start

LOGGED = (
    "enc_loss",
    "dec_loss",
    "loss",
    "g_loss",
    "d_loss",
    "r1",
    "recon",
    "perceptual",
    "adversarial",
    "kl",
    "mmd",
    "layer_loss",
)


def _duration(seconds: float) -> str:
    """'42 s', '3.5 min', '2.1 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


PROGRESS_SECONDS = 60  # piped output: a progress line at least this often ...
PROGRESS_SHARE = 0.05  # ... or each time this share of the run's images is done, whichever comes first


class Display:
    """Progress fed by the training loop's report events (rank 0 only): in a terminal a rich bar that moves from the
    first iteration and fits 80 columns; otherwise (a log file, a scheduler) one plain line per log interval, and
    between them a progress line at least every PROGRESS_SECONDS or PROGRESS_SHARE of the run. A fine-tuning run
    (`--init`) counts its own images: done / to do from where it started, not the schedule's synthetic start."""

    def __init__(self, enabled: bool, resumed_from: Optional[Path] = None, clock=time.monotonic):
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.resumed_from = resumed_from
        self.clock = clock
        self.bar = Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(bar_width=12),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=console,
            disable=not self.live,
        )
        self.task = None
        self.origin, self.todo = (
            0,
            0,
        )  # images seen where the counts start (a fine-tune's start), images to do
        self.tuning = False
        self.budgeted = False  # the time budget has shortened the run (said once)
        self.last_time, self.last_done = 0.0, 0  # the last plain line

    @staticmethod
    def _phase(data: dict) -> str:
        phase = f"{data['resolution']}² α{data['alpha']:.2f}"
        return f"stage {data['stage']} {phase}" if "stage" in data else phase

    def _done(self, data: dict) -> int:
        return data["images_seen"] - self.origin

    def _line(self, text: str, done: int) -> None:
        say(text)
        self.last_time, self.last_done = self.clock(), done

    def _start(self, data: dict) -> None:
        config = data.get("config") or {}
        self.tuning = bool(config.get("init"))
        self.origin = int(config.get("start_images", 0)) if self.tuning else 0
        self.todo = data["total"] - self.origin
        done = self._done(data)
        if self.resumed_from is not None:
            tuned = f" ({done:,} of fine-tuning)" if self.tuning else ""
            say(f"resumed from {self.resumed_from} at {data['images_seen']:,} images{tuned}")
        if config.get("precision") == "auto":
            native = "computes bf16 natively" if data["precision"] == "bf16" else "has no native bf16"
            say(f"precision auto → {data['precision']} ({data['device']} {native})")
        self.last_time, self.last_done = self.clock(), done
        self.bar.start()
        self.task = self.bar.add_task("train", total=self.todo, completed=done, phase="", rate="", losses="")

    def _progress(self, data: dict) -> None:
        """Between log lines (plain output only): a line when a minute or PROGRESS_SHARE of the run has passed."""
        done, now = self._done(data), self.clock()
        if done >= self.todo:  # the loop's last log line follows
            return
        if now - self.last_time < PROGRESS_SECONDS and done - self.last_done < max(
            1, PROGRESS_SHARE * self.todo
        ):
            return
        rate = (done - self.last_done) / max(now - self.last_time, 1e-9)
        left = f"  {_duration((self.todo - done) / rate)} left" if rate > 0 else ""
        self._line(f"{self._phase(data)}  {done:,}/{self.todo:,} images  {rate:.0f} img/s{left}", done)

    def __call__(self, event: str, data: dict) -> None:
        if not self.enabled:
            return
        if event == "start":
            self._start(data)
        elif event == "step":  # every iteration: the bar moves from the first step on
            self.bar.update(self.task, completed=self._done(data), phase=self._phase(data))
            if not self.live:
                self._progress(data)
        elif event == "log":
            shown = [k for k in LOGGED if k in data]
            if self.live:  # two main losses, short, so the line fits 80 columns
                losses = " ".join(f"{k.split('_')[0]} {data[k]:.2f}" for k in shown[:2])
                self.bar.update(
                    self.task,
                    completed=self._done(data),
                    phase=self._phase(data),
                    rate=f"{data['images_per_s']:.0f}/s",
                    losses=losses,
                )
            else:
                losses = "  ".join(f"{k} {data[k]:.3f}" for k in shown)
                self._line(
                    f"{self._phase(data)}  {self._done(data):,}/{self.todo:,} images  "
                    f"{data['images_per_s']:.0f} img/s  {losses}",
                    self._done(data),
                )
        elif event == "budget":  # the run now ends sooner: the bar's total follows, the first time a line too
            self.todo = data["total"] - self.origin
            self.bar.update(self.task, total=self.todo)
            if not self.budgeted:
                self.budgeted = True
                self.bar.console.print(
                    f"→ time budget {data['minutes']:g} min: ending at {data['total']:,} of {data['planned']:,} "
                    f"images ({data['resolution']}² shortened)"
                )
        elif event == "phase":
            self.bar.console.print(
                f"→ growing to {data['resolution']}×{data['resolution']} at {data['images_seen']:,} images"
            )
        elif event == "stage":
            self.bar.console.print(
                f"→ stage {data['stage']}: training the encoder, generator frozen, at "
                f"{data['images_seen']:,} images"
            )
        elif event == "checkpoint":
            say(f"[dim]checkpoint {data['path']}[/]", markup=True)
        elif event == "done":
            self.bar.stop()


def announce_end(start: Start, stop_after: Optional[int]) -> None:
    """Say where an automodulator (PIONEER, VAE, WAE) run will end (resolution, α) and warn when that is short of
    its target resolution; a resumed run's own config then, perhaps with a new length. A fine-tuning run says how
    many images it trains instead of where its schedule ends."""
    # lazy: the training package imports torch
    from automod_cli.training.schedule import describe_end, run_end

    config = start.train_config()
    end = config.total_images if stop_after is None else min(config.total_images, stop_after)
    phase, short = run_end(config, end)
    if config.init:
        say(
            f"this run fine-tunes '{config.init}' on {end - config.start_images:,} images, ending at "
            f"{phase.resolution}² (α {phase.alpha:.2f}) of {config.model.max_resolution}²"
        )
    else:
        say(f"this run ends at {describe_end(config, end)}")
    if config.time_budget_min is not None:
        say(
            f"its time budget is {config.time_budget_min:g} min of training: on a slower machine its last phase "
            "trains fewer images"
        )
    if short and stop_after is None:
        full = sum(config.phase_images.values())
        kimg_needed = (full - config.start_images) / 1000  # --kimg counts from where the run starts (--init)
        say(
            f"[yellow]note:[/] that is short of {config.model.max_resolution}² fully faded in, which the "
            f"schedule reaches at {full:,} images (--kimg {kimg_needed:g}).",
            markup=True,
        )


def say_end(start: Start, result: TrainResult) -> None:
    """The run's last lines: done (with a staged run's next stage), or where it stopped and how to continue, then
    exit with the signal's status (130 SIGINT, 143 SIGTERM) so that schedulers and `&&` chains see a run that did
    not finish; then its last grids."""
    seen = (
        f"{result.images_seen:,} images"
        if start.origin is None
        else f"{result.images_seen - start.origin:,} images of fine-tuning"
    )
    if result.interrupted:
        say(
            f"[yellow]stopped at {seen};[/] continue with: automod train --resume {start.run_dir}",
            markup=True,
        )
        raise typer.Exit(128 + (result.signal or signal.SIGINT))
    cut = ""
    if result.planned is not None:
        cut = f" (the time budget ended it {result.planned - result.images_seen:,} images early)"
    say(f"[green]done[/]: {seen}{cut}, checkpoint {result.checkpoint}", markup=True)
    if start.staged and start.stage == 1:
        say(f"train LIA's encoder with: automod train --stage 2 --resume {start.run_dir}")
    for path in result.grids[-3:]:
        say(f"  {path}")
