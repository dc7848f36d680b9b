"""What the commands share: the typer options of every command that opens a model (`--model`, `--device`,
`--seed`, `--force`, the image commands' `--align`, `--face`, `--noise`, `--scales`, eval's `--data`, `--weights`,
`--crop`, `--net`, ...) and their choices, declared once for every command module; the rich helpers (progress bars
on stderr); and the steps of the image commands (`commands/ops.py`, `commands/encode.py`): the
checks made before any work, loading the model, checked inputs, failed writes and skipped files as one line each."""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from automod_cli.console import err_console, say, warn
from automod_cli.errors import AutomodError
from automod_cli.outputs import check_outputs, image_format

if TYPE_CHECKING:  # torch and the models are imported when a command runs, never for --help
    import torch

    from automod_cli import ops
    from automod_cli.locate import OpenedModel


class Crop(str, Enum):
    face = "face"
    center = "center"
    none = "none"


class Net(str, Enum):
    alex = "alex"
    vgg = "vgg"


class Start(str, Enum):
    encoder = "encoder"
    random = "random"
    mean = "mean"


MODEL = typer.Option(
    None,
    "--model",
    "-m",
    help="Checkpoint file, run directory or a named model such as ffhq256 "
    "(see automod models; default: newest run under ./runs).",
)
REF_DATA = typer.Option(
    None, "--data", help="Reference .h5 file (default: the data the model was trained on)."
)
TEST_DATA = typer.Option(
    None, "--data", help="Unseen test .h5 file (default: the built-in test split for built-in models)."
)
WEIGHTS = typer.Option(
    [], "--weights", help="Pretrained weight file(s) (standard names); else env variable or torch cache."
)
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ...")
SEED = typer.Option(0, "--seed", help="Seed for random latents and layer noise.")
JSON = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
CROP = typer.Option(
    Crop.face, "--crop", help="Image window compared: face (StyleGAN's, the papers'), center, none."
)
NET = typer.Option(Net.alex, "--net", help="LPIPS trunk: alex (lpips default) or vgg.")
FORCE = typer.Option(False, "--force", help="Replace existing output files.")
NOISE = typer.Option(
    False, "--noise/--no-noise", help="Layer noise in the decoder (off by default, as in evaluation)."
)
ALIGN = typer.Option(
    None,
    "--align/--no-align",
    help="Align the largest face FFHQ-style first (needs automod's align "
    "extra). Default: on for models trained on aligned faces (FFHQ, "
    "CelebA-HQ) when the extra is installed, else off.",
)
FACE = typer.Option(
    [],
    "--face",
    help="With several faces in a photo: align face N (0 = the largest, the default) in "
    "every photo, or FILE=N in one file; repeatable.",
)
SCALES = typer.Option(None, "--scales", help="coarse (4²–8²), mid (16²–32²), fine (64²+) or blocks 'i:j'.")
SKIPS_SHOWN = 10  # skipped input files named one per line; the rest are counted


def torch_device(name: str) -> torch.device:
    """`--device`, checked: one line for a name this machine cannot use."""
    from automod_cli.devices import pick_device

    return pick_device(name)


@contextmanager
def progress_bars() -> Iterator:
    """A rich bar per stage on stderr, fed with (stage, done, total)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def check_device_and_outputs(
    device: str, outputs: List[Path], force: bool, images: List[Path] = ()
) -> torch.device:
    """The checks made before any work: the device name, the names of the `images` among the outputs (a suffix
    automod writes), then every output (writable, replacing nothing)."""
    target = torch_device(device)
    for path in images:
        image_format(path)
    check_outputs(outputs, force)
    return target


def open_model(model: Optional[Path], device: torch.device, seed: int) -> OpenedModel:
    """Seed torch and open the model (`locate.open_model`), saying which checkpoint was picked when it was not named
    exactly and what the model was trained on, and warning about weights that training broke."""
    import torch

    from automod_cli import ops

    torch.manual_seed(seed)
    opened = ops.open_model(model, device)
    if model is None or Path(model).is_dir():
        say(f"model: {opened.checkpoint}")
    say(f"trained on: {opened.provenance.describe()}")
    broken = ops.nonfinite_tensors(opened.model)
    if broken:
        warn(
            f"{len(broken)} weight tensors of '{opened.checkpoint}' hold NaN or infinite values ({broken[0]}, ...): "
            "training diverged, and its images come out black or meaningless; use an earlier checkpoint."
        )
    return opened


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """A failed write as one line (checked writable before the work: the disk filled up, or the folder changed)."""
    try:
        yield
    except OSError as exc:
        raise AutomodError(
            f"could not write '{path}' ({exc.strerror or exc}); no existing file was replaced."
        ) from None


def checked_inputs(items: List[Path], exact: bool = False) -> ops.Inputs:
    """The input files, expanded and decoded once before the model is loaded (`ops.check_inputs`)."""
    from automod_cli import ops

    return ops.check_inputs(items, exact)


def report_skipped(used: ops.Inputs) -> None:
    """Skipped input files named, one line each (the first few), and how many were used; then the files used but
    upscaled (smaller than the model's resolution)."""
    for path, reason in used.skipped[:SKIPS_SHOWN]:
        warn(f"skipped '{path}' ({reason}).")
    if len(used.skipped) > SKIPS_SHOWN:
        warn(f"... and {len(used.skipped) - SKIPS_SHOWN} more files skipped.")
    if used.skipped:
        warn(f"used {len(used.paths)} of {len(used.paths) + len(used.skipped)} input files.")
    for path, reason in used.upscaled[:SKIPS_SHOWN]:
        warn(f"'{path}' is {reason}.")
    if len(used.upscaled) > SKIPS_SHOWN:
        warn(f"... and {len(used.upscaled) - SKIPS_SHOWN} more files smaller than the model's resolution.")
