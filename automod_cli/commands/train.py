"""`automod train`: its options, mapped onto what they ask for (`training.start.Request`: the settings they stand
for, the run to resume, the data); the core checks them and gives the run's start (`training.start.plan`), which
`training.launch` runs; the command shows the config, the progress and the end (`commands/train_report.py`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer

from automod_cli.commands.options import DEVICE
from automod_cli.commands.train_report import Display, announce_end, say_end
from automod_cli.config import DECODERS
from automod_cli.console import console, say
from automod_cli.errors import AutomodError
from automod_cli.kinds import KINDS
from automod_cli.presets import TRAIN_PRESETS

DATA_ARG = typer.Argument(None, metavar="[DATA]", help="HDF5 file made by `automod prep` (same as --data).")
DATA = typer.Option(None, "--data", help="HDF5 file made by `automod prep` (default: the built-in dataset).")
PRESET = typer.Option(
    None,
    "--preset",
    help=f"Schedule preset: {', '.join(TRAIN_PRESETS)} (default: builtin without data, custom with).",
)
RECIPE = typer.Option(
    None,
    "--recipe",
    help="authors (the authors' code where it differs from the papers' text; step for step, "
    "tests/test_parity.py) or paper; default: authors for the dataset presets, else the one measured "
    "better on the built-in data (docs/training.md).",
)
KIND = typer.Option(
    None,
    "--model",
    help=f"Model to train: {', '.join(KINDS)} (default automod); each brings its paper settings.",
)
STAGE = typer.Option(
    None,
    "--stage",
    help="LIA only: 1 (the GAN) or 2 (the encoder, continuing a finished stage 1 with --resume); default both in "
    "sequence.",
)
VGG_WEIGHTS = typer.Option(
    None,
    "--weights",
    help="LIA only: VGG16 weight file (vgg16-397923af.pth) for stage 2's perceptual loss (default: "
    "$AUTOMOD_VGG16_WEIGHTS or the torch cache).",
)
DECODER = typer.Option(
    None, "--decoder", help=f"Decoder: {', '.join(DECODERS)} (default: adain; classic for pioneer)."
)
OUT = typer.Option(None, "--out", help="Run directory (default: runs/<preset>, numbered if taken).")
RESUME = typer.Option(
    None, "--resume", help="Continue a run directory (or checkpoint) exactly where it stopped."
)
INIT = typer.Option(
    None,
    "--init",
    help="Fine-tune: start from this model's weights (a named model such as ffhq256, a checkpoint or a run "
    "directory) at its resolution, with fresh optimisers.",
)
RESOLUTION = typer.Option(None, "--max-res", "--resolution", help="Target resolution (a power of two).")
KIMG = typer.Option(
    None,
    "--kimg",
    help="Train for this many thousand images in total (default: the preset's schedule; past it the last phase "
    "goes on).",
)
RECONSTRUCTION = typer.Option(
    None, "--reconstruction", help="Image reconstruction distance: robust (d_ρ), l1 or l2."
)
LAYER_LOSS = typer.Option(
    None, "--layer-loss/--no-layer-loss", help="Layer disentanglement loss L_j (on by default)."
)
FLIP_INVARIANCE_LAYER = typer.Option(
    None,
    "--flip-invariance-layer",
    help="Flip invariance (NeurIPS Eq. 10-11): decoder blocks < J carry the pose; adds a support block J, no "
    "layer noise (paper: J=2; 0: off).",
)
MIRROR = typer.Option(
    None, "--mirror/--no-mirror", help="Random horizontal flips (preset default: on for faces)."
)
SEED = typer.Option(None, "--seed", help="Random seed.")
WORKERS = typer.Option(None, "--workers", help="Data loader worker processes.")
THREADS = typer.Option(
    None,
    "--threads",
    help="CPU threads for the networks (default: chosen as the run goes by measured speed, one per core on an "
    "idle machine; a fixed N also fixes the arithmetic).",
)
CONFIG_FILE = typer.Option(None, "--config", help="JSON file of settings (same names as --set).")
SETTINGS = typer.Option(
    [],
    "--set",
    help="Override any setting: NAME=VALUE, e.g. lr.64=0.001, kl_margin=0.5, model.latent_dim=256, "
    "recipe.fake_pool=0 (one element of the recipe).",
)
TIME_BUDGET = typer.Option(
    None,
    "--time-budget",
    metavar="MINUTES",
    help="End training within this many minutes (summed over restarts) on any machine: the last phase shortens to "
    "fit, never below a fifth of its images; the phases before it keep theirs. 0: no budget. With --resume: the "
    "run's new budget.",
)
STOP_AFTER = typer.Option(
    None, "--stop-after", help="Stop (with a checkpoint) after this many images in total."
)
PRECISION = typer.Option(
    None,
    "--precision",
    help="fp32 (the default), bf16 (the networks' forward passes under bf16 autocast; weights, optimiser and "
    "losses stay fp32) or auto (bf16 where the CPU or GPU computes it natively, else fp32; the builtin "
    "preset's).",
)
COMPILE = typer.Option(
    None,
    "--compile/--no-compile",
    help="torch.compile the decoder's forward (off by default; a long first step).",
)


def train(
    data_arg: Optional[Path] = DATA_ARG,
    data: Optional[Path] = DATA,
    preset: Optional[str] = PRESET,
    recipe: Optional[str] = RECIPE,
    model: Optional[str] = KIND,
    stage: Optional[int] = STAGE,
    vgg_weights: Optional[Path] = VGG_WEIGHTS,
    decoder: Optional[str] = DECODER,
    out: Optional[Path] = OUT,
    resume: Optional[Path] = RESUME,
    init: Optional[str] = INIT,
    resolution: Optional[int] = RESOLUTION,
    kimg: Optional[float] = KIMG,
    reconstruction: Optional[str] = RECONSTRUCTION,
    layer_loss: Optional[bool] = LAYER_LOSS,
    flip_invariance_layer: Optional[int] = FLIP_INVARIANCE_LAYER,
    mirror: Optional[bool] = MIRROR,
    seed: Optional[int] = SEED,
    workers: Optional[int] = WORKERS,
    threads: Optional[int] = THREADS,
    config_file: Optional[Path] = CONFIG_FILE,
    settings: List[str] = SETTINGS,
    device: str = DEVICE,
    stop_after: Optional[int] = STOP_AFTER,
    time_budget: Optional[float] = TIME_BUDGET,
    precision: Optional[str] = PRECISION,
    compile_decoder: Optional[bool] = COMPILE,
) -> None:
    """Train an automodulator (or a baseline: Balanced PIONEER, VAE, WAE, LIA) progressively (4×4 up to the target
    resolution), resumable at any time.

    Examples:
      automod train                                  # built-in dataset, 32×32, ~10 min on a laptop CPU
      automod train --model vae --decoder classic    # a baseline of NeurIPS Table 2a, in runs/builtin-vae
      automod train --model lia --stage 1            # LIA's GAN; then --stage 2 --resume runs/builtin-lia
      automod train --data data/ffhq-train.h5 --preset ffhq --out runs/ffhq --max-res 256
      automod train --kimg 50                        # a shorter (or longer) run: 50k images in total
      automod train --time-budget 10                 # training ends within 10 minutes
      automod train --resume runs/ffhq               # after Ctrl-C or a crash
      automod train data/mine.h5 --preset ffhq --init ffhq256 --kimg 500   # fine-tune the authors' FFHQ model
      torchrun --nproc_per_node=4 -m automod_cli train data/ffhq-train.h5 --preset ffhq
    """
    from automod_cli import training  # lazy, as every import of torch here: `--help` stays free of it
    from automod_cli.training.start import Request, plan

    is_main = int(os.environ.get("RANK", "0")) == 0
    if threads is not None:
        set_threads(threads)
    if data_arg is not None and data is not None and data_arg != data:
        raise AutomodError("give the data file once: either as an argument or with --data.")
    as_settings = {  # the options that stand for settings, as `--set` names (None: not given)
        "flip_invariance_layer": flip_invariance_layer,
        "model.decoder": decoder,
        "model.max_resolution": resolution,
        "reconstruction": reconstruction,
        "layer_loss": layer_loss,
        "mirror": mirror,
        "seed": seed,
        "workers": workers,
        "total_kimg": kimg,
        "time_budget_min": time_budget,
        "precision": precision,
        "compile": compile_decoder,
        "recipe": recipe,
    }
    start = plan(
        Request(
            as_settings,
            preset=preset,
            model=model,
            data=data or data_arg,
            config_file=config_file,
            assignments=tuple(settings),
            init=init,
            out=out,
            resume=resume,
            stage=stage,
            vgg_weights=vgg_weights,
        )
    )
    if is_main:
        for note in start.notes:
            say(f"[yellow]note:[/] {note}; resuming from {start.checkpoint.name}", markup=True)
        if start.config is not None:
            console.print_json(json.dumps(start.config.to_dict()))
        if not start.staged:
            announce_end(start, stop_after)
    display = Display(is_main, resumed_from=start.checkpoint)
    result = training.launch(start, device=device, report=display, stop_after_images=stop_after)
    if is_main:
        say_end(start, result)


def set_threads(threads: int) -> None:
    """`--threads N`: torch's intra-op threads for this process, fixed (no thread chooser: training/threads.py)."""
    from automod_cli.training.threads import pin

    if threads < 1:
        raise AutomodError(f"--threads must be at least 1, got {threads}.")
    pin(threads)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
