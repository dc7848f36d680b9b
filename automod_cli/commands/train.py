"""`automod train`: map the options onto a run's start (`training.start`: a new run's config and run directory, or
the checkpoint a resume continues from), hand it to the core (`training.train` / `training.resume`), and show
progress and the end with rich."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from automod_cli.config import DECODERS
from automod_cli.console import console, say
from automod_cli.kinds import KINDS
from automod_cli.presets import TRAIN_PRESETS
from automod_cli.errors import AutomodError

MODEL_CHOICES = tuple(KINDS)  # the kinds' registry (automod_cli/kinds.py)
LIA = "lia"  # `--model lia`: the two-stage LIA run of training/lia/, configured by resolve_lia_config
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


class _Display:
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


def train(
    data_arg: Optional[Path] = typer.Argument(
        None, metavar="[DATA]", help="HDF5 file made by `automod prep` (same as --data)."
    ),
    data: Optional[Path] = typer.Option(
        None, "--data", help="HDF5 file made by `automod prep` (default: the built-in dataset)."
    ),
    preset: Optional[str] = typer.Option(
        None,
        "--preset",
        help=f"Schedule preset: {', '.join(TRAIN_PRESETS)} (default: builtin without data, custom with).",
    ),
    recipe: Optional[str] = typer.Option(
        None,
        "--recipe",
        help="authors (the authors' code where it differs from the papers' text; step for step, "
        "tests/test_parity.py) or paper; default: authors for the dataset presets, else the one measured "
        "better on the built-in data (docs/training.md).",
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help=f"Model to train: {', '.join(MODEL_CHOICES)} (default automod); each brings its paper settings.",
    ),
    stage: Optional[int] = typer.Option(
        None,
        "--stage",
        help="LIA only: 1 (the GAN) or 2 (the encoder, continuing a finished stage 1 "
        "with --resume); default both in sequence.",
    ),
    vgg_weights: Optional[Path] = typer.Option(
        None,
        "--weights",
        help="LIA only: VGG16 weight file (vgg16-397923af.pth) for stage 2's "
        "perceptual loss (default: $AUTOMOD_VGG16_WEIGHTS or the torch "
        "cache).",
    ),
    decoder: Optional[str] = typer.Option(
        None, "--decoder", help=f"Decoder: {', '.join(DECODERS)} (default: adain; classic for pioneer)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run directory (default: runs/<preset>, numbered if taken)."
    ),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue a run directory (or checkpoint) exactly where it stopped."
    ),
    init: Optional[str] = typer.Option(
        None,
        "--init",
        help="Fine-tune: start from this model's weights (a named model such as "
        "ffhq256, a checkpoint or a run directory) at its resolution, with fresh "
        "optimisers.",
    ),
    resolution: Optional[int] = typer.Option(
        None, "--max-res", "--resolution", help="Target resolution (a power of two)."
    ),
    kimg: Optional[float] = typer.Option(
        None,
        "--kimg",
        help="Train for this many thousand images in total (default: the preset's "
        "schedule; past it the last phase goes on).",
    ),
    reconstruction: Optional[str] = typer.Option(
        None, "--reconstruction", help="Image reconstruction distance: robust (d_ρ), l1 or l2."
    ),
    layer_loss: Optional[bool] = typer.Option(
        None, "--layer-loss/--no-layer-loss", help="Layer disentanglement loss L_j (on by default)."
    ),
    flip_invariance_layer: Optional[int] = typer.Option(
        None,
        "--flip-invariance-layer",
        help="Flip invariance (NeurIPS Eq. 10-11): decoder blocks < J "
        "carry the pose; adds a support block J, no layer noise "
        "(paper: J=2; 0: off).",
    ),
    mirror: Optional[bool] = typer.Option(
        None, "--mirror/--no-mirror", help="Random horizontal flips (preset default: on for faces)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data loader worker processes."),
    threads: Optional[int] = typer.Option(
        None, "--threads", help="CPU threads for the networks (default: one per core)."
    ),
    config_file: Optional[Path] = typer.Option(
        None, "--config", help="JSON file of settings (same names as --set)."
    ),
    settings: List[str] = typer.Option(
        [],
        "--set",
        help="Override any setting: NAME=VALUE, e.g. lr.64=0.001, kl_margin=0.5, model.latent_dim=256, "
        "recipe.fake_pool=0 (one element of the recipe).",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    stop_after: Optional[int] = typer.Option(
        None, "--stop-after", help="Stop (with a checkpoint) after this many images in total."
    ),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        help="fp32 (default) or bf16: the networks' forward passes under bf16 "
        "autocast; weights, optimiser and losses stay fp32.",
    ),
    compile_decoder: Optional[bool] = typer.Option(
        None,
        "--compile/--no-compile",
        help="torch.compile the decoder's forward (off by default; a long first step).",
    ),
) -> None:
    """Train an automodulator (or a baseline: Balanced PIONEER, VAE, WAE, LIA) progressively (4×4 up to the target
    resolution), resumable at any time.

    Examples:
      automod train                                  # built-in dataset, 32×32, ~10 min on a laptop CPU
      automod train --model vae --decoder classic    # a baseline of NeurIPS Table 2a, in runs/builtin-vae
      automod train --model lia --stage 1            # LIA's GAN; then --stage 2 --resume runs/builtin-lia
      automod train --data data/ffhq-train.h5 --preset ffhq --out runs/ffhq --max-res 256
      automod train --kimg 50                        # a shorter (or longer) run: 50k images in total
      automod train --resume runs/ffhq               # after Ctrl-C or a crash
      automod train data/mine.h5 --preset ffhq --init ffhq256 --kimg 500   # fine-tune the authors' FFHQ model
      torchrun --nproc_per_node=4 -m automod_cli train data/ffhq-train.h5 --preset ffhq
    """
    from automod_cli import training
    from automod_cli.training.start import fine_tune_start, new_run, resumed_run, staged

    is_main = int(os.environ.get("RANK", "0")) == 0
    if threads is not None:
        set_threads(threads)
    if data_arg is not None and data is not None and data_arg != data:
        raise AutomodError("give the data file once: either as an argument or with --data.")
    data = data or data_arg
    if model is not None and model not in MODEL_CHOICES:
        raise AutomodError(f"unknown model '{model}': choose one of {', '.join(MODEL_CHOICES)} (--model).")
    if init is not None and (resume is not None or model == LIA):
        raise AutomodError(
            "--init starts a new run from a model's weights: it cannot be combined with --resume or "
            "--model lia."
        )
    start = resumed_run(resume) if resume is not None else None
    for note in start.notes if start is not None and is_main else ():
        say(f"[yellow]note:[/] {note}; resuming from {start.checkpoint.name}", markup=True)
    lia_run = start.staged if start is not None else staged(model)  # a kind with stages of its own: LIA
    _check_lia_options(
        lia_run,
        stage,
        vgg_weights,
        {
            "--flip-invariance-layer": flip_invariance_layer,
            "--reconstruction": reconstruction,
            "--layer-loss": layer_loss,
            "--recipe": recipe,
            "--kimg": kimg if start is not None else None,
            "--compile": True if compile_decoder else None,
        },
    )
    if start is None:  # the options given, as the settings they stand for (None: not given)
        start = new_run(
            preset,
            model,
            {
                "flip_invariance_layer": flip_invariance_layer,
                "model.decoder": decoder,
                "model.max_resolution": resolution,
                "reconstruction": reconstruction,
                "layer_loss": layer_loss,
                "mirror": mirror,
                "seed": seed,
                "workers": workers,
                "total_kimg": kimg,
                "precision": precision,
                "compile": compile_decoder,
                "recipe": recipe,
            },
            data=data,
            config_file=config_file,
            assignments=settings,
            init=init,
            out=out,
        )
        if is_main:
            console.print_json(json.dumps(start.config.to_dict()))
    if is_main and not lia_run:
        _announce_end(start.config, start.checkpoint, kimg, stop_after)
    display = _Display(is_main, resumed_from=start.checkpoint)
    lia_only = {"stage": stage, "vgg_weights": vgg_weights} if lia_run else {}
    # read before training: the checkpoint resumed from may be rotated away by the time the run ends
    origin = fine_tune_start(start.config, start.checkpoint)
    if start.checkpoint is not None:
        result = training.resume(
            start.checkpoint,
            device=device,
            report=display,
            stop_after_images=stop_after,
            total_kimg=kimg,
            **lia_only,
        )
    else:
        result = training.train(
            start.config,
            start.run_dir,
            device=device,
            report=display,
            stop_after_images=stop_after,
            **lia_only,
        )
    if not is_main:
        return
    run_dir = start.run_dir
    seen = (
        f"{result.images_seen:,} images"
        if origin is None
        else f"{result.images_seen - origin:,} images of fine-tuning"
    )
    if result.interrupted:
        say(f"[yellow]stopped at {seen};[/] continue with: automod train --resume {run_dir}", markup=True)
        # not a finished run: schedulers and `&&` chains must see the signal's exit status (130 SIGINT, 143 SIGTERM)
        raise typer.Exit(128 + (result.signal or signal.SIGINT))
    else:
        say(f"[green]done[/]: {seen}, checkpoint {result.checkpoint}", markup=True)
        if lia_run and stage == 1:
            say(f"train LIA's encoder with: automod train --stage 2 --resume {run_dir}")
    for path in result.grids[-3:]:
        say(f"  {path}")


def _announce_end(
    config, checkpoint: Optional[Path], kimg: Optional[float], stop_after: Optional[int]
) -> None:
    """Say where an automodulator (PIONEER, VAE, WAE) run will end (resolution, α) and warn when that is short of
    its target resolution. `config` is None for a resumed run: its own config then, perhaps with a new length. A
    fine-tuning run says how many images it trains instead of where its schedule ends."""
    from automod_cli.checkpoint import read_meta
    from automod_cli.config import TrainConfig
    from automod_cli.training.schedule import describe_end, run_end

    if config is None:
        config = TrainConfig.from_dict(read_meta(checkpoint)["train_config"])
        if kimg is not None:
            config = dataclasses.replace(config, total_kimg=kimg)
    end = config.total_images if stop_after is None else min(config.total_images, stop_after)
    phase, short = run_end(config, end)
    if config.init:
        say(
            f"this run fine-tunes '{config.init}' on {end - config.start_images:,} images, ending at "
            f"{phase.resolution}² (α {phase.alpha:.2f}) of {config.model.max_resolution}²"
        )
    else:
        say(f"this run ends at {describe_end(config, end)}")
    if short and stop_after is None:
        full = sum(config.phase_images.values())
        kimg_needed = (full - config.start_images) / 1000  # --kimg counts from where the run starts (--init)
        say(
            f"[yellow]note:[/] that is short of {config.model.max_resolution}² fully faded in, which the "
            f"schedule reaches at {full:,} images (--kimg {kimg_needed:g}).",
            markup=True,
        )


def set_threads(threads: int) -> None:
    """`--threads N`: torch's intra-op threads for this process."""
    import torch

    if threads < 1:
        raise AutomodError(f"--threads must be at least 1, got {threads}.")
    torch.set_num_threads(threads)


def _check_lia_options(
    lia_run: bool, stage: Optional[int], vgg_weights: Optional[Path], automod_only: dict
) -> None:
    """--stage and --weights only for LIA; for LIA none of `automod_only` (flag name → value, None when not given)."""
    if not lia_run and (stage is not None or vgg_weights is not None):
        raise AutomodError(
            "--stage and --weights belong to LIA: use them with --model lia (or --resume a LIA run)."
        )
    given = [flag for flag, value in automod_only.items() if value is not None]
    if lia_run and given:
        raise AutomodError(
            f"{given[0]} does not apply to a LIA run (the automodulator's loss options, or a new length "
            "for a resumed run: LIA's stage lengths are fixed when it starts)."
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
