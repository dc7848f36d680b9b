"""What the evaluation commands share: typer options (`--model`, `--data`, `--weights`, `--crop`, `--net`, ...),
their choices, and the rich helpers (progress bars on stderr, console), used by `commands/eval.py` and
`commands/project.py` alike."""

from __future__ import annotations

from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from automod_cli.metrics.data import LoadedModel, load_for_eval

console = Console()
err_console = Console(stderr=True)


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


MODEL = typer.Option(None, "--model", "-m", help="Checkpoint file, run directory or a named model such as ffhq256 (see automod models; default: newest run under ./runs).")
REF_DATA = typer.Option(None, "--data", help="Reference .h5 file (default: the data the model was trained on).")
TEST_DATA = typer.Option(None, "--data", help="Unseen test .h5 file (default: the built-in test split for built-in models).")
WEIGHTS = typer.Option([], "--weights", help="Pretrained weight file(s) (standard names); else env variable or torch cache.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ...")
SEED = typer.Option(0, "--seed", help="Seed for latents and layer noise.")
JSON = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
CROP = typer.Option(Crop.face, "--crop", help="Image window compared: face (StyleGAN's, the papers'), center, none.")
NET = typer.Option(Net.alex, "--net", help="LPIPS trunk: alex (lpips default) or vgg.")
FORCE = typer.Option(False, "--force", help="Replace existing output files.")


def torch_device(name: str) -> torch.device:
    """`--device`, checked: one line for a name this machine cannot use."""
    from automod_cli.devices import pick_device

    return pick_device(name)


def load_model_for_eval(model: Optional[Path], device: str, seed: int) -> LoadedModel:
    """Seed torch's generator, then read the checkpoint named by `--model` onto `--device`."""
    torch.manual_seed(seed)
    return load_for_eval(model, torch_device(device))


@contextmanager
def progress_bars() -> Iterator:
    """A rich bar per stage on stderr, fed with (stage, done, total)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
