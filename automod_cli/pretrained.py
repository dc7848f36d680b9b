"""Named pretrained models: the five automodulators the paper's authors published, found or fetched by name.

A name (`ffhq256`, …) resolves, in this order, to
  1. the converted file in automod's cache: `$AUTOMOD_HOME/models/NAME.safetensors` (default `~/.cache/automod`);
  2. the authors' file where torch.hub caches it: `<torch.hub.get_dir()>/checkpoints/{N}_state.pth` (honours
     `$TORCH_HOME` and `$XDG_CACHE_HOME`), converted once into 1 with `automod_cli.authors.import_checkpoint`;
  3. a download of the authors' file from their Zenodo record into 2 (unless `AUTOMOD_OFFLINE=1`), then 1.
A failed or skipped download is one AutomodError line naming the file, its address and where to put it.

The authors' files: https://zenodo.org/record/4298894 (MIT licence; Heljakka, Hou, Kannala, Solin 2020).
Progress and conversion notes go to stderr, so commands that print JSON on stdout stay machine-readable.
"""

from __future__ import annotations

import http.client
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse
from urllib.request import urlopen

import torch
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from automod_cli.checkpoint import SUFFIX, read_meta
from automod_cli.console import err_console, say
from automod_cli.features import weights
from automod_cli.outputs import atomic_write
from automod_cli.errors import AutomodError

URL = "https://zenodo.org/record/4298894/files/{number}_state.pth"
HOME_ENV = "AUTOMOD_HOME"
OFFLINE_ENV = "AUTOMOD_OFFLINE"
DEFAULT_HOME = "~/.cache/automod"
MODELS_DIR = "models"
DOWNLOAD_TIMEOUT_S = 60  # per socket operation, not for the whole file
CHUNK = 1 << 20

CONVERTED, AUTHORS, MISSING = "converted", "authors' file", "missing"


@dataclass(frozen=True)
class Pretrained:
    name: str
    number: int  # the authors' file is {number}_state.pth (their count of training images seen)
    resolution: int
    description: str
    dataset: str  # what it was trained on, as automod's dataset presets name it (automod_cli.config)

    @property
    def url(self) -> str:
        return URL.format(number=self.number)

    @property
    def filename(self) -> str:
        return f"{self.number}_state.pth"


MODELS: dict[str, Pretrained] = {
    m.name: m
    for m in (
        Pretrained("ffhq256", 34740000, 256, "FFHQ faces at 256²", "ffhq"),
        Pretrained("ffhq512", 42420000, 512, "FFHQ faces at 512² (images resized to 512)", "ffhq"),
        Pretrained(
            "celebahq256",
            31877148,
            256,
            "CelebA-HQ faces at 256² (the authors' 'small' architecture)",
            "celebahq",
        ),
        Pretrained("lsuncars256", 32057140, 256, "LSUN Cars at 256²", "lsun-car"),
        Pretrained("lsunbedrooms256", 27574284, 256, "LSUN Bedrooms at 256²", "lsun-bedroom"),
    )
}


def is_name(text: str) -> bool:
    return text in MODELS


def get(name: str) -> Pretrained:
    try:
        return MODELS[name]
    except KeyError:
        raise AutomodError(
            f"'{name}' is not a pretrained model; the names are {', '.join(MODELS)}."
        ) from None


def dataset_of_file(filename: str) -> str | None:
    """The dataset of a published model, known by its file name ({N}_state.pth); None for any other file."""
    return next((m.dataset for m in MODELS.values() if m.filename == filename), None)


def automod_home() -> Path:
    """automod's cache folder: $AUTOMOD_HOME, default ~/.cache/automod."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()


def converted_path(name: str) -> Path:
    """Where the converted automod checkpoint of `name` lives: $AUTOMOD_HOME/models/NAME.safetensors."""
    return automod_home() / MODELS_DIR / f"{get(name).name}{SUFFIX}"


def authors_path(name: str) -> Path:
    """Where torch.hub caches the authors' file of `name`: <torch.hub.get_dir()>/checkpoints/{N}_state.pth."""
    return Path(torch.hub.get_dir()) / "checkpoints" / get(name).filename


def offline() -> bool:
    """True when AUTOMOD_OFFLINE is set to anything but '', 0, false, no or off."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def download(url: str, dst: Path) -> None:
    """Fetch `url` into `dst` with a progress bar on stderr, through a temporary file renamed into place (after a
    short reachability probe of the host, as for the metrics' weight files).

    Raises OSError (URLError, timeouts, a short read) or http.client.HTTPException on failure; `resolve` turns
    those into one line. Tests replace this function so that none of them touches the network.

    Not torch.hub.download_url_to_file (which features/weights.py uses for the metrics' small files): it opens the
    connection without a timeout, so a stalled transfer of these 1-2 GB files would hang for ever, and it renames
    whatever arrived into place without comparing it with Content-Length, so a dropped connection would leave a
    truncated checkpoint under the real name (its bar is also tqdm's, not the rich bar of every other command)."""
    if url.startswith(("http://", "https://")) and not weights.reachable(url):  # offline: fail in seconds
        raise OSError(f"cannot reach {urlparse(url).hostname}")

    def fetch(tmp: Path) -> None:
        with urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            with open(tmp, "wb") as out, Progress(*columns, console=err_console, transient=False) as progress:
                task = progress.add_task(f"downloading {Path(dst).name}", total=total)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    progress.update(task, advance=len(chunk))
            if total is not None and done != total:
                raise OSError(f"the download stopped after {done} of {total} bytes")

    atomic_write(Path(dst), fetch)


def _convert(model: Pretrained, src: Path, out: Path, replace: bool = False) -> Path:
    """Convert the authors' file `src` into `out` (replacing it atomically when `replace`); a damaged or incomplete
    file is one line saying so and how to get it again."""
    try:  # lazy: automod_cli.authors is optional (a build without it still opens converted files)
        from automod_cli import authors  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name != "automod_cli.authors":
            raise
        raise AutomodError(
            f"this automod cannot convert the authors' file '{src}' (no automod_cli.authors)."
        ) from None
    problem = authors.file_problem(src)
    if problem is not None:
        raise AutomodError(
            f"the authors' file of '{model.name}', {src}, {problem}: delete it and run the command "
            f"again to download it, or get {model.url} and put it there."
        )
    say(f"converting the authors' file {src} into {out}", err=True)
    try:
        authors.import_checkpoint(Path(src), Path(out), force=replace, dataset=model.dataset)
    except AutomodError as exc:
        if replace or not _readable(Path(out)):  # else another automod process converted it meanwhile
            raise AutomodError(
                f"{exc} (the authors' file of '{model.name}' comes from {model.url}.)"
            ) from None
    if not Path(out).is_file():
        raise AutomodError(f"converting '{src}' left no checkpoint at '{out}'.")
    return Path(out)


def _readable(path: Path) -> bool:
    try:
        read_meta(path)  # the header alone: cheap
        return True
    except AutomodError:
        return False


def replaced_source(meta: dict, source: Path) -> str | None:
    """Why the converted model of `meta` no longer stands for the authors' file `source` (replaced since, or of an
    unrecorded origin), or None when it does or `source` is gone. The size and time decide when they match the
    record; otherwise the SHA-256 does."""
    if not Path(source).is_file():
        return None
    record = meta.get("source") or {}
    if "sha256" not in record:
        return "the converted file does not record which file it came from"
    stat = Path(source).stat()
    if stat.st_size != record.get("size"):
        return f"it is {stat.st_size:,} bytes, the file converted was {record.get('size', 0):,}"
    if stat.st_mtime_ns == record.get("mtime_ns"):
        return None
    digest = weights.file_sha256(Path(source))
    return (
        None
        if digest == record["sha256"]
        else f"its SHA-256 is {digest[:12]}…, the file converted had {record['sha256'][:12]}…"
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "reason", None) or exc).split())
    return text or type(exc).__name__


def resolve(name: str, downloader: Optional[Callable[[str, Path], None]] = None) -> Path:
    """The automod checkpoint of the pretrained model `name`: the converted file in automod's cache, else the
    authors' file in torch.hub's cache converted once, else (unless AUTOMOD_OFFLINE) downloaded and converted.
    A converted file that automod cannot read (damaged, or of another checkpoint format) is converted again, and so
    is one whose authors' file was replaced since (`replaced_source`); it is kept until the new one is written.

    `downloader(url, dst)` replaces the module's `download` (which tests also replace)."""
    model = get(name)
    converted, source = converted_path(name), authors_path(name)
    replace = False
    if converted.is_file():
        try:
            stale = replaced_source(read_meta(converted), source)  # the header alone: cheap
        except AutomodError as exc:  # damaged, or written by another automod's converter: make it again
            say(f"{exc} Converting it again.", err=True)
            converted.unlink(missing_ok=True)  # the converter does not replace an existing file
        else:
            if stale is None:
                return converted
            say(
                f"the authors' file {source} is not the one {converted} was converted from ({stale}): "
                "converting it again.",
                err=True,
            )
            replace = True
    if not source.is_file():
        where = f"get {model.url} and put it at {source} (or its converted form at {converted})"
        if offline():
            raise AutomodError(
                f"pretrained model '{name}' is not here and {OFFLINE_ENV} is set, so it was not "
                f"downloaded: {where}, or unset {OFFLINE_ENV}."
            )
        try:
            (downloader or download)(model.url, source)
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            raise AutomodError(
                f"pretrained model '{name}' is not here and its file {model.filename} could not be "
                f"downloaded ({_one_line(exc)}): {where}."
            ) from None
        if not source.is_file():
            raise AutomodError(f"downloading {model.url} left no file at '{source}'.")
    return _convert(model, source, converted, replace)


@dataclass(frozen=True)
class Entry:
    """One line of `automod models`: a pretrained model and whether (and where) it is on this machine."""

    name: str
    resolution: int
    description: str
    state: str  # CONVERTED, AUTHORS or MISSING
    path: Path  # the file found, or (missing) where the authors' file would be downloaded
    url: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "description": self.description,
            "state": self.state,
            "path": str(self.path),
            "url": self.url,
        }


def listing() -> list[Entry]:
    """Every named model with its state on this machine; nothing is downloaded or converted."""
    entries = []
    for model in MODELS.values():
        converted, source = converted_path(model.name), authors_path(model.name)
        if converted.is_file():
            state, path = CONVERTED, converted
        elif source.is_file():
            state, path = AUTHORS, source
        else:
            state, path = MISSING, source
        entries.append(Entry(model.name, model.resolution, model.description, state, path, model.url))
    return entries
