"""Writing outputs safely. Checks made before any work: no existing file is replaced without `--force`
(`refuse_overwrite`, `check_outputs`), and every output can actually be written (its folder, or the nearest one
that exists when missing folders are to be created, is a writable folder). A failure is one AutomodError naming
the path. Every file is then written atomically (`atomic_write`): a crash never leaves half a file under the
real name.

Image outputs are written in the format their suffix names (`image_format`); an unknown suffix is refused here,
before any work (`check_image_outputs`), rather than given PNG bytes under a misleading name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from automod_cli.errors import AutomodError

# suffix → Pillow format written by `images.save_image`
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def image_format(path: Path) -> str:
    """The Pillow format for an output image's suffix; AutomodError for a suffix automod does not write."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(IMAGE_FORMATS))
        raise AutomodError(
            f"cannot write an image named '{path}': the suffix '{Path(path).suffix}' is not one automod "
            f"writes ({known}); name the output e.g. '{Path(path).stem or 'out'}.png'."
        )
    return fmt


def _existing_ancestor(path: Path) -> Path:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(path: Path, option: str = "--out") -> None:
    """Refuse when `path` cannot be created: a folder under its name, a file where a folder should be, or a folder
    this process may not write to (read-only mount, no permission); `option` names the flag that chose it."""
    path = Path(path)
    if path.is_dir():
        raise AutomodError(f"cannot write '{path}': it is a folder; give a file name.")
    folder = _existing_ancestor(path)
    if not folder.is_dir():
        raise AutomodError(f"cannot write '{path}': '{folder}' is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        where = "its folder" if folder == path.parent else "the folder to create it in,"
        raise AutomodError(
            f"cannot write '{path}': {where} '{folder}' is not writable (read-only or no permission); "
            f"choose another {option}."
        )


def check_outputs(paths: Iterable[Path], force: bool = False, option: str = "--out") -> None:
    """Before any work: every output can be written and none replaces an existing file unless `force`; `option`
    names the flag that chose the paths."""
    for path in map(Path, paths):
        if not path.is_dir():
            refuse_overwrite(path, force, option)
        check_writable(path, option)


def check_image_outputs(paths: Iterable[Path], force: bool = False, option: str = "--out") -> None:
    """`check_outputs` for images, and every name must have a suffix automod writes (`image_format`)."""
    paths = [Path(path) for path in paths]
    check_outputs(paths, force, option)  # a folder under an output's name is refused as such
    for path in paths:
        image_format(path)


def check_output_folder(folder: Path, option: str = "--out") -> None:
    """An output that is a folder (of several files): a name with a suffix that is not an existing folder looks like
    a file name (sample -o s.png) and is refused rather than made a folder."""
    folder = Path(folder)
    if folder.suffix and not folder.is_dir():
        raise AutomodError(
            f"{option} names a folder for several files, but '{folder}' looks like a file name: give "
            f"a folder such as '{folder.with_suffix('')}'."
        )


def refuse_overwrite(path: Path, force: bool, option: str = "--out") -> None:
    """Stop with one line when `path` exists and `force` was not given; `option` names the flag that chose it."""
    if Path(path).exists() and not force:
        raise AutomodError(f"'{path}' already exists: choose another {option} or pass --force to overwrite.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)` and rename the result onto `path`; the temporary file never survives a failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(
            tmp, 0o666 & ~_umask()
        )  # mkstemp makes the file private (0600); give it a new file's usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
