"""`automod prep SOURCE`: turn a dataset into a multi-resolution HDF5 file, and `automod prep info`.

Only parsing and reporting here; the work is in `data_prep` (sources, prep, hdf5)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.markup import escape

from automod_cli.console import console, say
from automod_cli.errors import AutomodError
from data_prep import sources

if TYPE_CHECKING:  # data_prep.prep (with torch) is imported when a command runs, not for --help
    from data_prep.prep import PrepResult

prep_app = typer.Typer(
    help="Prepare a dataset as a multi-resolution HDF5 file for `automod train FILE.h5`.",
    no_args_is_help=True,
)

DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)
EXAMPLES_SHOWN = 3  # skipped inputs named per reason in the report (all are in the .skipped.txt)


class Split(str, Enum):
    train = "train"
    test = "test"
    all = "all"


class BuiltinSplit(str, Enum):
    train = "train"
    test = "test"


OUT = typer.Option(
    ...,
    "--out",
    "-o",
    help="The .h5 file to write (never replaced unless --force); missing folders are created.",
)
FORCE = typer.Option(False, "--force", help="Replace --out if it exists.")
WORKERS = typer.Option(
    DEFAULT_WORKERS, "--workers", "-j", min=1, help="Processes decoding (and aligning) images."
)
LIMIT = typer.Option(None, "--limit", min=1, help="Use only the first N inputs (of the split).")
MIN_SIZE = typer.Option(
    None, "--min-size", min=1, help="Skip images (or faces) smaller than this; by default the --res value."
)


def _res(default: int) -> Any:
    return typer.Option(
        default, "--res", "--resolution", help="Highest resolution stored; levels 4² up to it are written."
    )


def _rate(task) -> str:
    return f"{task.speed:,.1f} img/s" if task.speed else ""


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar with rate and ETA, driven by (done, total) callbacks."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task_id = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total)
            bar.update(task_id, rate=_rate(bar.tasks[task_id]))

        yield update


def _report(result: PrepResult) -> None:
    if result.discarded:
        console.print(f"[yellow]note[/] {result.discarded}")
    resumed = f" (continued after {result.resumed_from:,} inputs)" if result.resumed_from else ""
    say(
        f"[green]wrote[/] {result.written:,} images ({result.source}, split {result.split}) to "
        f"{result.output}{resumed}",
        markup=True,
    )
    groups = result.skipped_by_kind()
    if groups:
        table = Table(title=f"skipped {len(result.skipped):,} inputs", title_justify="left")
        table.add_column("reason")
        table.add_column("count", justify="right")
        table.add_column("for example")
        for kind, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            table.add_row(kind, f"{len(names):,}", ", ".join(names[:EXAMPLES_SHOWN]))
        console.print(table)
    for name, note in result.notes[:EXAMPLES_SHOWN]:
        console.print(f"[yellow]note[/] {name}: {note}")
    if len(result.notes) > EXAMPLES_SHOWN:
        console.print(
            f"[yellow]note[/] ... and {len(result.notes) - EXAMPLES_SHOWN:,} more notes (stored in the "
            "file's 'notes')"
        )
    if result.skipped_report is not None:
        say(f"skipped-file list: {result.skipped_report}")


def _run(
    make_source: Callable[[], sources.Source], out: Path, resolution: int, force: bool, workers: int
) -> None:
    from data_prep.hdf5 import DiskFull, check_output, partial_path, resolutions_up_to
    from data_prep.prep import prepare

    resolutions_up_to(resolution)  # bad settings fail before a long scan of the inputs
    check_output(out, force)
    source = make_source()
    try:
        with _progress_bar(f"{source.name} {source.split}") as progress:
            result = prepare(source, out, resolution, force=force, workers=workers, progress=progress)
    except KeyboardInterrupt:
        say(
            f"[yellow]interrupted[/]: progress is kept in {partial_path(out)}; run the same command again "
            "to continue.",
            markup=True,
        )
        raise typer.Exit(130) from None
    except DiskFull as exc:
        if (
            exc.hdf5_failed
        ):  # HDF5's exit handler crashes (exit 139) after a failed write: say why and leave now
            say(f"[bold red]error:[/] {escape(str(exc))}", markup=True, err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        raise
    _report(result)


@prep_app.command("ffhq")
def ffhq(
    src: Path = typer.Option(
        ..., "--src", help="images1024x1024/ of the release, or in-the-wild-images/ with --landmarks."
    ),
    out: Path = OUT,
    landmarks: Optional[Path] = typer.Option(
        None, "--landmarks", help="The release's ffhq-dataset-v2.json: align in-the-wild photos with it."
    ),
    split: Split = typer.Option(
        Split.train, "--split", help="train = images 0-59999, test = 60000-69999 (Supp. App. A)."
    ),
    resolution: int = _res(256),
    limit: Optional[int] = LIMIT,
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """FFHQ, pre-aligned or aligned here from in-the-wild photos; 60k train / 10k test by index.

    Example: automod prep ffhq --src ffhq/images1024x1024 --out data/ffhq-256.h5 --res 256
    """
    _run(lambda: sources.ffhq(src, split.value, landmarks, limit), out, resolution, force, workers)


@prep_app.command("celebahq")
def celebahq(
    src: Path = typer.Option(..., "--src", help="Folder of the 30000 CelebA-HQ 1024² images named by index."),
    out: Path = OUT,
    split: Split = typer.Option(
        Split.train, "--split", help="train = first 27000 by file index, test = the rest."
    ),
    resolution: int = _res(256),
    limit: Optional[int] = LIMIT,
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """CelebA-HQ; files sorted by the number in their name, 27k train / 3k test (Supp. App. A).

    Example: automod prep celebahq --src celeba-hq/data1024x1024 --out data/celebahq-256.h5
    """
    _run(lambda: sources.celebahq(src, split.value, limit), out, resolution, force, workers)


@prep_app.command("lsun")
def lsun(
    src: Path = typer.Option(..., "--src", help="An LSUN LMDB folder (with data.mdb) or a folder of images."),
    out: Path = OUT,
    resolution: int = _res(256),
    limit: Optional[int] = LIMIT,
    min_size: Optional[int] = MIN_SIZE,
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """An LSUN category, centre-cropped to a square (LMDB needs: pip install 'automod\\[lsun]').

    Example: automod prep lsun --src lsun/car_lmdb --out data/cars-256.h5 --limit 100000
    """
    _run(lambda: sources.lsun(src, limit, min_size), out, resolution, force, workers)


@prep_app.command("folder")
def folder(
    src: Path = typer.Option(..., "--src", help="Folder searched recursively for images."),
    out: Path = OUT,
    align: bool = typer.Option(
        False,
        "--align",
        help="Detect the largest face and align it FFHQ-style (pip install 'automod\\[align]').",
    ),
    resolution: int = _res(256),
    limit: Optional[int] = LIMIT,
    min_size: Optional[int] = MIN_SIZE,
    workers: int = WORKERS,
    force: bool = FORCE,
) -> None:
    """Any folder of images, centre-cropped to a square, or face-aligned with --align.

    Example: automod prep folder --src ~/photos --out data/faces-128.h5 --res 128 --align
    """
    _run(lambda: sources.folder(src, align, limit, min_size), out, resolution, force, workers)


@prep_app.command("builtin")
def builtin(
    out: Path = OUT,
    split: BuiltinSplit = typer.Option(
        BuiltinSplit.train, "--split", help="The built-in dataset's train or test split."
    ),
    resolution: int = _res(64),
    limit: Optional[int] = LIMIT,
    force: bool = FORCE,
) -> None:
    """The generated built-in dataset (no download), e.g. for trying the tools out.

    Example: automod prep builtin --out data/builtin.h5 --res 64
    """
    _run(lambda: sources.builtin(split.value, resolution, limit), out, resolution, force, workers=1)


@prep_app.command("info")
def info(
    file: Path = typer.Argument(..., help="An .h5 file written by automod prep."),
    check: bool = typer.Option(True, "--verify/--no-verify", help="Recompute every image's checksum."),
) -> None:
    """Show what a prepared file holds and verify its checksum.

    Example: automod prep info data/ffhq-256.h5
    """
    from data_prep.hdf5 import read_info, verify

    summary = read_info(file)
    table = Table(title=str(file), show_header=False, title_justify="left")
    for key, value in vars(summary).items():
        if key != "path":
            table.add_row(key, ", ".join(map(str, value)) if isinstance(value, tuple) else f"{value}")
    console.print(table)
    if not check:
        return
    with _progress_bar("verify") as progress:
        bad = verify(file, progress)
    if bad:
        listed = ", ".join(map(str, bad[:10]))
        raise AutomodError(
            f"{file}: {len(bad)} images do not match their checksum (e.g. {listed}); prepare the file again."
        )
    console.print("[green]checksum ok[/]")


def register(app: typer.Typer) -> None:
    """Attach `automod prep ...` to the main app."""
    app.add_typer(prep_app, name="prep")
