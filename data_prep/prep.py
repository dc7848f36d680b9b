"""Preparing a dataset: decode (and align) every input of a source in parallel, write the
multi-resolution file, and report what was skipped and why.

Inputs are converted by `workers` processes in order, so the file's image order is the source's
order whatever the number of workers. Progress is checkpointed into the partial file; running the
same preparation again after an interruption continues from the last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from automod_cli.errors import AutomodError
from data_prep.align import align_face, detect_and_align, require_dlib
from data_prep.hdf5 import H5Writer, pyramid
from data_prep.images import MISSING, UNREADABLE, SkipImage, center_crop_square, load_rgb, require_size, resize_square
from data_prep.sources import DETECT, LANDMARKS, Item, Source

CHECKPOINT_IMAGES = 256  # checkpoint progress at least every this many inputs ...
CHECKPOINT_SECONDS = 30.0  # ... or this many seconds, whichever comes first
BATCH_PER_WORKER = 8  # inputs handed to each worker at a time (bounds memory for huge sources)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Recipe:
    """How every input becomes a square image of the target resolution (sent to the workers)."""

    resolution: int
    framing: str  # CROP, LANDMARKS or DETECT (data_prep.sources)
    min_size: int  # shorter side (CROP) or face region (DETECT) below this is skipped


@dataclass(frozen=True)
class Outcome:
    """One converted input: its pyramid, or why it was skipped; `note` remarks on a written one."""

    name: str
    levels: dict[int, np.ndarray] | None
    reason: str = ""
    note: str = ""


@dataclass(frozen=True)
class PrepResult:
    """What a preparation wrote and skipped."""

    output: Path
    skipped_report: Path  # text file: one "input<TAB>reason" line per skipped input
    source: str
    split: str
    written: int
    skipped: list[tuple[str, str]]  # (input, "kind: detail")
    notes: list[tuple[str, str]]  # (input, remark), e.g. several faces found
    resumed_from: int  # inputs already handled by an interrupted earlier run

    def skipped_by_kind(self) -> dict[str, list[str]]:
        """Skipped inputs grouped by the kind of problem (the text before the first colon)."""
        groups: dict[str, list[str]] = {}
        for name, reason in self.skipped:
            groups.setdefault(reason.split(": ", 1)[0], []).append(name)
        return groups


def convert(item: Item, recipe: Recipe) -> Outcome:
    """Decode, frame and resize one input into its pyramid; never raises for a bad input."""
    try:
        note = ""
        if item.array is not None:
            image = Image.fromarray(item.array, "RGB")
        elif item.path is not None or item.data is not None:
            image = load_rgb(item.path if item.path is not None else item.data)
        else:
            raise SkipImage(MISSING, "not found under --src")
        if recipe.framing == LANDMARKS:
            if item.landmarks is None:
                raise SkipImage(MISSING, "no landmarks for it in the metadata file")
            image = align_face(image, item.landmarks, recipe.resolution)
        elif recipe.framing == DETECT:
            image, note = detect_and_align(image, recipe.resolution, recipe.min_size)
        else:
            image = center_crop_square(image)
            require_size(image, recipe.min_size)
        return Outcome(item.name, pyramid(resize_square(image, recipe.resolution)), note=note)
    except SkipImage as skip:
        return Outcome(item.name, None, reason=str(skip))
    except Exception as exc:  # a decoder bug on one odd file must not end a long run
        return Outcome(item.name, None, reason=f"{UNREADABLE}: {type(exc).__name__}: {exc}")


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which stops them and keeps the partial file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def convert_all(items: Iterable[Item], recipe: Recipe, workers: int) -> Iterator[Outcome]:
    """Outcomes in input order; with several workers, one batch is converted while the previous is written."""
    work = partial(convert, recipe=recipe)
    if workers <= 1:
        yield from map(work, items)
        return
    # fork starts workers instantly and shares the loaded dlib models; macOS and Windows need spawn.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with multiprocessing.get_context(method).Pool(workers, initializer=_ignore_sigint) as pool:
        pending: deque = deque()
        for batch in _batches(items, workers * BATCH_PER_WORKER):
            pending.append(pool.map_async(work, batch, chunksize=BATCH_PER_WORKER // 2))
            if len(pending) > 1:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _write_skipped_report(path: Path, skipped: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{name}\t{reason}\n" for name, reason in skipped))


def prepare(source: Source, out: Path, resolution: int, *, force: bool = False, workers: int = 1,
            progress: Progress | None = None) -> PrepResult:
    """Write `source` to the multi-resolution file `out` (levels 4² .. resolution²) and list the
    skipped inputs in `<out stem>.skipped.txt`. Raises AutomodError for bad settings; an interrupted
    run leaves only the hidden partial file, which the same call later resumes."""
    out = Path(out)
    min_size = resolution if source.min_size is None else source.min_size
    recipe = Recipe(resolution=resolution, framing=source.framing, min_size=min_size)
    if recipe.framing == DETECT:
        require_dlib()
    attrs = {"source": source.name, "source_path": source.location, "alignment": source.alignment, "split": source.split}
    writer = H5Writer(out, resolution, attrs, fingerprint=f"{source.fingerprint};{recipe}", force=force)
    try:
        resumed_from = done = writer.inputs_done
        last_checkpoint = time.monotonic()
        if progress is not None:
            progress(done, source.total)
        for outcome in convert_all(source.items_from(done), recipe, workers):
            if outcome.levels is None:
                writer.log("skipped", outcome.name, outcome.reason)
            else:
                writer.add(outcome.levels)
                if outcome.note:
                    writer.log("notes", outcome.name, outcome.note)
            done += 1
            if done % CHECKPOINT_IMAGES == 0 or time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                writer.checkpoint(done)
                last_checkpoint = time.monotonic()
            if progress is not None:
                progress(done, source.total)
        writer.checkpoint(done)
        skipped, notes, written = writer.entries("skipped"), writer.entries("notes"), writer.written
        report = out.with_name(f"{out.stem}.skipped.txt")
        _write_skipped_report(report, skipped)
        if written == 0:
            writer.close()
            writer.partial.unlink()
            raise AutomodError(f"No image could be used from {source.location}; the reasons are listed in {report}.")
        output = writer.commit()
    finally:
        writer.close()
    return PrepResult(output, report, source.name, source.split, written, skipped, notes, resumed_from)
