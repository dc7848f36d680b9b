"""Preparing a dataset: decode (and align) every input of a source in parallel, write the
multi-resolution file, and report what was skipped and why.

Inputs are converted by `workers` processes in order, so the file's image order is the source's
order whatever the number of workers. Progress is checkpointed into the partial file; running the
same preparation again after an interruption continues from the last checkpoint.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image
from rich.filesize import decimal

from automod_cli.errors import AutomodError
from data_prep.align import align_face, detect_and_align, require_dlib
from data_prep.hdf5 import DiskFull, H5Writer, is_disk_full, pyramid
from data_prep.images import (
    MISSING,
    UNREADABLE,
    SkipImage,
    center_crop_square,
    load_rgb,
    require_size,
    resize_square,
)
from data_prep.sources import DETECT, LANDMARKS, Item, Source

CHECKPOINT_IMAGES = 256  # checkpoint progress at least every this many inputs ...
CHECKPOINT_SECONDS = 30.0  # ... or this many seconds, whichever comes first
BATCH_PER_WORKER = 8  # inputs handed to each worker at a time (bounds memory for huge sources)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Conversion:
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
    skipped_report: (
        Path | None
    )  # text file: one "input<TAB>reason" line per skipped input; None when none was
    source: str
    split: str
    written: int
    skipped: list[tuple[str, str]]  # (input, "kind: detail")
    notes: list[tuple[str, str]]  # (input, remark), e.g. several faces found
    resumed_from: int  # inputs already handled by an interrupted earlier run
    discarded: str = ""  # why an unfinished file of an earlier run could not be continued, if one was found

    def skipped_by_kind(self) -> dict[str, list[str]]:
        """Skipped inputs grouped by the kind of problem (the text before the first colon)."""
        groups: dict[str, list[str]] = {}
        for name, reason in self.skipped:
            groups.setdefault(reason.split(": ", 1)[0], []).append(name)
        return groups


def convert(item: Item, conversion: Conversion) -> Outcome:
    """Decode, frame and resize one input into its pyramid; never raises for a bad input."""
    try:
        note = ""
        if item.array is not None:
            image = Image.fromarray(item.array, "RGB")
        elif item.path is not None or item.data is not None:
            image = load_rgb(item.path if item.path is not None else item.data)
        else:
            raise SkipImage(MISSING, "not found under --src")
        if conversion.framing == LANDMARKS:
            if item.landmarks is None:
                raise SkipImage(MISSING, "no landmarks for it in the metadata file")
            image = align_face(image, item.landmarks, conversion.resolution)
        elif conversion.framing == DETECT:
            image, note = detect_and_align(image, conversion.resolution, conversion.min_size)
        else:
            image = center_crop_square(image)
            require_size(image, conversion.min_size)
        return Outcome(item.name, pyramid(resize_square(image, conversion.resolution)), note=note)
    except SkipImage as skip:
        return Outcome(item.name, None, reason=str(skip))
    except Exception as exc:  # a decoder bug on one odd file must not end a long run
        return Outcome(item.name, None, reason=f"{UNREADABLE}: {type(exc).__name__}: {exc}")


_PR_SET_PDEATHSIG = 1


def _init_worker(parent: int) -> None:
    """Workers leave Ctrl-C to the main process, which stops them and keeps the partial file. When the main
    process is gone (kill -9), they end without a word: on Linux the kernel stops them with it, and a worker
    that still finishes an input dies of SIGPIPE on sending it, instead of printing BrokenPipeError tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the main process died before the line above took effect
        os._exit(0)


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def convert_all(items: Iterable[Item], conversion: Conversion, workers: int) -> Iterator[Outcome]:
    """Outcomes in input order; with several workers, one batch is converted while the previous is written."""
    work = partial(convert, conversion=conversion)
    if workers <= 1:
        yield from map(work, items)
        return
    # fork starts workers instantly and shares the loaded dlib models; macOS and Windows need spawn.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with multiprocessing.get_context(method).Pool(
        workers, initializer=_init_worker, initargs=(os.getpid(),)
    ) as pool:
        pending: deque = deque()
        for batch in _batches(items, workers * BATCH_PER_WORKER):
            pending.append(pool.map_async(work, batch, chunksize=BATCH_PER_WORKER // 2))
            if len(pending) > 1:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()


def _write_skipped_report(path: Path, skipped: list[tuple[str, str]]) -> Path | None:
    """Write the list of skipped inputs atomically; with none skipped, write nothing (and remove a list left by an
    earlier preparation of the same output, which would now be wrong)."""
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text("".join(f"{name}\t{reason}\n" for name, reason in skipped))
    os.replace(temporary, path)
    return path


def skipped_report_path(out: Path) -> Path:
    """Where the skipped inputs are listed: `<name>.skipped.txt` beside the output
    (data/faces.h5: data/faces.skipped.txt)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.skipped.txt")


def _in_h5py_dealloc(tb) -> bool:
    while tb is not None:
        if "h5py" in tb.tb_frame.f_code.co_filename and "dealloc" in tb.tb_frame.f_code.co_name:
            return True
        tb = tb.tb_next
    return False


@contextmanager
def _hdf5_write_errors() -> Iterator[list[BaseException]]:
    """Collect the errors HDF5 reports only while h5py frees an object (a chunk write to a full disk fails this
    way), instead of letting Python print a traceback for each (h5py's Cython code prints it through
    sys.excepthook, then hands it to sys.unraisablehook); any other error is printed as usual."""
    caught: list[BaseException] = []
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def unraisable_hook(unraisable) -> None:
        if _in_h5py_dealloc(unraisable.exc_traceback) or "h5py" in repr(unraisable.object):
            caught.append(unraisable.exc_value)
        else:
            previous_unraisable(unraisable)

    def except_hook(kind, value, tb) -> None:
        if not _in_h5py_dealloc(tb):
            previous_except(kind, value, tb)

    sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook
    try:
        yield caught
    finally:
        sys.unraisablehook, sys.excepthook = previous_unraisable, previous_except


class _WriteFailed(Exception):
    """HDF5 reported a failed write only through an object being freed."""


def _still_needed(writer: H5Writer, source: Source, done: int) -> str:
    remaining = max(source.total - done, 1)
    return decimal(remaining * writer.image_bytes)


def _disk_full(writer: H5Writer, source: Source, done: int, *, clean: bool, cause: BaseException) -> DiskFull:
    """Close the writer after the disk filled and say what was kept and what to do."""
    folder = writer.partial.parent
    if clean:  # stopped before writing the image that did not fit: the partial file is whole
        writer.checkpoint(done)
        writer.close()
        return DiskFull(
            f"{cause}: stopped after {done:,} of {source.total:,} inputs, and the {writer.written:,} "
            f"images written are kept in {writer.partial}; free about "
            f"{_still_needed(writer, source, done)} more (or choose another --out) and run the same "
            f"command again to continue."
        )
    if writer.close_after_failure():
        return DiskFull(
            f"The disk holding {folder} is full: writing failed after {done:,} of {source.total:,} inputs; "
            f"{writer.inputs_done:,} inputs ({writer.written_at_checkpoint:,} images) are kept in "
            f"{writer.partial} as of the last checkpoint; free about {_still_needed(writer, source, done)} "
            "more and run the same command again to continue."
        )
    writer.partial.unlink(missing_ok=True)
    return DiskFull(
        f"The disk holding {folder} filled up while writing (after {done:,} of {source.total:,} inputs): "
        f"the unfinished file could not be saved and was removed, so nothing is kept; free about "
        f"{_still_needed(writer, source, 0)} and run the same command again.",
        hdf5_failed=True,
    )


def prepare(
    source: Source,
    out: Path,
    resolution: int,
    *,
    force: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
) -> PrepResult:
    """Write `source` to the multi-resolution file `out` (levels 4² .. resolution²), creating its folder, and list
    the skipped inputs in `<out stem>.skipped.txt` (only when some were). Raises AutomodError for bad settings and
    DiskFull when the disk fills up; an interrupted or stopped run leaves only the hidden partial file, which the
    same call later resumes."""
    out = Path(out)
    min_size = resolution if source.min_size is None else source.min_size
    conversion = Conversion(resolution=resolution, framing=source.framing, min_size=min_size)
    if conversion.framing == DETECT:
        require_dlib()
    attrs = {
        "source": source.name,
        "source_path": source.location,
        "alignment": source.alignment,
        "split": source.split,
    }
    writer = H5Writer(out, resolution, attrs, fingerprint=f"{source.fingerprint};{conversion}", force=force)
    report = skipped_report_path(out)
    resumed_from = done = writer.inputs_done
    broken = False
    try:
        with _hdf5_write_errors() as failed_writes:
            try:
                last_checkpoint = time.monotonic()
                if progress is not None:
                    progress(done, source.total)
                for outcome in convert_all(source.items_from(done), conversion, workers):
                    if outcome.levels is None:
                        writer.log("skipped", outcome.name, outcome.reason)
                    else:
                        writer.add(outcome.levels)
                        if outcome.note:
                            writer.log("notes", outcome.name, outcome.note)
                    if failed_writes:
                        raise _WriteFailed(failed_writes[0])
                    done += 1
                    if (
                        done % CHECKPOINT_IMAGES == 0
                        or time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS
                    ):
                        writer.checkpoint(done)
                        last_checkpoint = time.monotonic()
                    if progress is not None:
                        progress(done, source.total)
                writer.checkpoint(done)
                if failed_writes:
                    raise _WriteFailed(failed_writes[0])
            except DiskFull as full:
                raise _disk_full(writer, source, done, clean=True, cause=full) from None
            except (OSError, RuntimeError, _WriteFailed) as exc:
                if not is_disk_full(exc):
                    raise
                broken = True  # closed (or given up on) in _disk_full; closing again would raise from HDF5
                raise _disk_full(writer, source, done, clean=False, cause=exc) from None
        skipped, notes, written = writer.entries("skipped"), writer.entries("notes"), writer.written
        try:
            kept_report = _write_skipped_report(report, skipped)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            writer.close()
            raise DiskFull(
                f"The disk holding {out.parent} is full: all {done:,} inputs are done and kept in "
                f"{writer.partial}, but the list of skipped inputs could not be written; free a little "
                "space and run the same command again to finish."
            ) from None
        if written == 0:
            writer.close()
            writer.partial.unlink()
            listed = f"the reasons are listed in {report}" if kept_report else "it has no inputs"
            raise AutomodError(f"No image could be used from {source.location}; {listed}.")
        output = writer.commit()
    finally:
        if not broken:
            writer.close()
    return PrepResult(
        output,
        kept_report,
        source.name,
        source.split,
        written,
        skipped,
        notes,
        resumed_from,
        writer.discarded,
    )
