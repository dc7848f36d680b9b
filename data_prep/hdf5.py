"""Multi-resolution image files: the pyramid, the resumable writer, and reading a file's summary.

Layout of an automod image file (DESIGN §5):
    levels/<r>   uint8 (N, 3, r, r) for r = 4, 8, ..., R; one image per chunk for random access
    digests      uint8 (N, 32): sha256 of each image's bytes over all levels, lowest first
    skipped      str (K, 2): input name and reason for every input that was not written
    notes        str (M, 2): input name and remark for written inputs (e.g. several faces found)
Root attributes: format, format_version, source, source_path, alignment, split, count,
resolutions, checksum (sha256 over the digests, hex), automod_version, created.

The file is built under a hidden `.NAME.partial` beside the output and renamed into place only
when complete. Progress is recorded in the partial file, so an interrupted run continues where it
stopped when restarted with the same inputs and settings.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch
from rich.filesize import decimal
from torch.utils.data import Dataset

from automod_cli import __version__
from automod_cli.errors import AutomodError
from automod_cli.outputs import check_outputs

FORMAT = "automod-images"
FORMAT_VERSION = 1
MIN_RESOLUTION = 4  # the decoder's 4x4 canvas (DESIGN §3)
MAX_RESOLUTION = 1024  # the FFHQ / CelebA-HQ releases
_GROW = 1024  # datasets grow by this many images at a time
_STRINGS = h5py.string_dtype()
_CONVERT_BYTES = 1 << 20  # the reader converts uint8 images to float in runs of about this many bytes
_SPACE_RESERVE = 1 << 20  # free bytes kept for the checkpoint, the commit and the skipped-file list
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def resolutions_up_to(resolution: int) -> list[int]:
    """4, 8, ..., resolution; raises AutomodError unless resolution is a power of two in range."""
    valid = [2**k for k in range(2, 11)]
    if resolution not in valid:
        raise AutomodError(
            f"Resolution {resolution} is not supported; use a power of two from {valid[0]} to {valid[-1]}."
        )
    return [r for r in valid if r <= resolution]


def pyramid(image: np.ndarray) -> dict[int, np.ndarray]:
    """Every level of one square HWC uint8 image as CHW uint8, from 4x4 to its own size.

    Each level is the 2x box (area) downscale of the next larger one. The 2x2 sums are kept in
    integers all the way down, so level r equals the exact mean over (R/r)^2 blocks of the full
    image, rounded half up, with no accumulated rounding from intermediate levels."""
    size = image.shape[0]
    if image.ndim != 3 or image.shape != (size, size, 3) or image.dtype != np.uint8:
        raise ValueError(f"expected a square HWC uint8 RGB image, got {image.shape} {image.dtype}")
    sums = image.transpose(2, 0, 1).astype(np.uint32)
    levels = {size: np.ascontiguousarray(image.transpose(2, 0, 1))}
    area = 1
    for r in reversed(resolutions_up_to(size)[:-1]):
        sums = sums.reshape(3, r, 2, r, 2).sum(axis=(2, 4))
        area *= 4
        levels[r] = ((sums + area // 2) // area).astype(np.uint8)
    return dict(sorted(levels.items()))


def image_digest(levels: dict[int, np.ndarray]) -> bytes:
    """sha256 over one image's bytes at every level, lowest resolution first."""
    digest = hashlib.sha256()
    for r in sorted(levels):
        digest.update(np.ascontiguousarray(levels[r]).tobytes())
    return digest.digest()


def partial_path(out: Path) -> Path:
    """The temporary name a file is built under: hidden, beside the output (same filesystem)."""
    return out.with_name(f".{out.name}.partial")


def check_output(out: Path, force: bool) -> None:
    """Refuse to replace an existing output unless forced, and refuse an output that cannot be written: a folder
    under its name, a file where a folder is needed, or a folder (the nearest existing one, when the output's
    folder is still to be created) that does not accept new files (automod_cli.outputs, as every command). Nothing
    is created here."""
    check_outputs([Path(out)], force)


def make_output_folder(out: Path) -> None:
    """Create the output's folder (and any missing parents), as `check_output` allowed."""
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AutomodError(
            f"Cannot create the folder {Path(out).parent} ({exc.strerror or exc}); choose another --out."
        ) from None


def free_bytes(folder: Path) -> int:
    """Free space on the file system holding `folder`, in bytes."""
    return shutil.disk_usage(folder).free


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (Python's or HDF5's, whose messages carry the C errno) says the disk is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


class DiskFull(AutomodError):
    """The disk holding the output has no room for the next image. `hdf5_failed`: HDF5 itself hit the full disk,
    after which the library cannot shut down cleanly (its exit handler crashes), so the caller should exit at once."""

    def __init__(self, message: str, hdf5_failed: bool = False) -> None:
        super().__init__(message)
        self.hdf5_failed = hdf5_failed


class DamagedPartial(Exception):
    """A partial file that cannot be resumed (unreadable, or its recorded progress does not match its images)."""


class H5Writer:
    """Appends images (as pyramids) to a partial file and renames it into place on `commit`.

    `fingerprint` names the inputs and settings; a partial file with the same fingerprint is
    resumed (`inputs_done` says how many inputs it already covers), any other is started over."""

    def __init__(
        self, out: Path, resolution: int, attrs: dict[str, str], fingerprint: str, force: bool = False
    ) -> None:
        self.out = Path(out)
        self.force = force
        check_output(self.out, force)
        make_output_folder(self.out)
        self.resolutions = resolutions_up_to(resolution)
        self.partial = partial_path(self.out)
        self.discarded = ""  # why an earlier partial file was started over, if one was
        fingerprint = f"{fingerprint};resolutions={self.resolutions}"
        self.file = self._resume(fingerprint) or self._create(attrs, fingerprint)
        progress = json.loads(self.file.attrs["progress"])
        self.inputs_done: int = progress["inputs"]
        self.written: int = progress["written"]
        self.written_at_checkpoint = self.written  # what a later run resumes with
        self._logged = {"skipped": progress["skipped"], "notes": progress["notes"]}
        self.image_bytes = (
            int(1.1 * sum(3 * r * r for r in self.resolutions)) + 512
        )  # pixels, digest, chunk index
        self._next_space_check = self.written

    def _resume(self, fingerprint: str) -> h5py.File | None:
        if not self.partial.exists():
            return None
        try:
            file = h5py.File(self.partial, "r+")
        except OSError as exc:
            if "unable to lock file" in str(exc).lower():
                raise AutomodError(
                    f"{self.partial} is open in another program (another `automod prep` writing "
                    f"{self.out}?); wait for it to finish or choose another --out."
                ) from None
            return self._discard(None, "it could not be opened (damaged, e.g. by a full disk or a crash)")
        try:
            if file.attrs.get("fingerprint") != fingerprint:
                return self._discard(file, "it was started with other inputs or settings", damaged=False)
            self._check_resumable(file)
        except Exception as exc:  # noqa: BLE001 -- any failure to read it back means it cannot be continued
            return self._discard(file, f"it is damaged ({_first_line(exc)}), e.g. by a full disk or a crash")
        return file

    def _check_resumable(self, file: h5py.File) -> None:
        """Raise unless the recorded progress matches what the file holds: every level and the digest list have
        room for the images counted, and the last one counted reads back with its digest (an interrupted write to
        a full disk leaves the count ahead of the images, or unreadable chunks)."""
        progress = json.loads(file.attrs["progress"])
        written = int(progress["written"])
        for key in ("inputs", "skipped", "notes"):
            int(progress[key])
        for name, rows in [
            *((f"levels/{r}", written) for r in self.resolutions),
            ("digests", written),
            ("skipped", progress["skipped"]),
            ("notes", progress["notes"]),
        ]:
            if file[name].shape[0] < rows:
                raise DamagedPartial(f"{name} holds {file[name].shape[0]} rows, {rows} recorded")
        if written:
            levels = {r: file[f"levels/{r}"][written - 1] for r in self.resolutions}
            if image_digest(levels) != file["digests"][written - 1].tobytes():
                raise DamagedPartial(f"image {written - 1} does not match its digest")
        for name in ("skipped", "notes"):
            file[name][: progress[name]]

    def _discard(self, file: h5py.File | None, why: str, damaged: bool = True) -> None:
        if file is not None:
            try:
                file.close()
            except Exception:  # noqa: BLE001 -- a damaged file may not even close; it is removed either way
                pass
        self.partial.unlink()
        if damaged:  # a partial file from other inputs or settings is replaced without a word, as always
            self.discarded = f"the unfinished {self.partial.name} from an earlier run was started over: {why}"
        return None

    def _create(self, attrs: dict[str, str], fingerprint: str) -> h5py.File:
        file = h5py.File(self.partial, "w")
        file.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, **attrs})
        file.attrs["resolutions"] = np.array(self.resolutions, dtype=np.int64)
        file.attrs["fingerprint"] = fingerprint
        file.attrs["progress"] = json.dumps({"inputs": 0, "written": 0, "skipped": 0, "notes": 0})
        for r in self.resolutions:
            file.create_dataset(
                f"levels/{r}",
                shape=(0, 3, r, r),
                maxshape=(None, 3, r, r),
                chunks=(1, 3, r, r),
                dtype=np.uint8,
            )
        file.create_dataset("digests", shape=(0, 32), maxshape=(None, 32), chunks=(_GROW, 32), dtype=np.uint8)
        for name in ("skipped", "notes"):
            file.create_dataset(name, shape=(0, 2), maxshape=(None, 2), chunks=(256, 2), dtype=_STRINGS)
        return file

    def _ensure_room(self, name: str, rows: int) -> None:
        dataset = self.file[name]
        if dataset.shape[0] < rows:
            dataset.resize(max(rows, dataset.shape[0] + _GROW), axis=0)

    def check_space(self) -> None:
        """Raise DiskFull, before anything is written, when the disk has no room for one more image besides a
        reserve for the checkpoint and the commit. The free space is asked again once about half of what it
        allowed is used (every image when it is nearly full)."""
        if self.written < self._next_space_check:
            return
        free = free_bytes(self.partial.parent)
        room = (free - _SPACE_RESERVE) // self.image_bytes
        if room < 1:
            raise DiskFull(f"The disk holding {self.partial.parent} is full ({decimal(free)} free)")
        self._next_space_check = self.written + max(1, room // 2)

    def add(self, levels: dict[int, np.ndarray]) -> None:
        """Append one image given as its pyramid (as made by `pyramid`); raises DiskFull, writing nothing, when
        the disk has no room for it."""
        if sorted(levels) != self.resolutions:
            raise ValueError(f"expected levels {self.resolutions}, got {sorted(levels)}")
        self.check_space()
        index = self.written
        for r in self.resolutions:
            self._ensure_room(f"levels/{r}", index + 1)
            self.file[f"levels/{r}"][index] = levels[r]
        self._ensure_room("digests", index + 1)
        self.file["digests"][index] = np.frombuffer(image_digest(levels), dtype=np.uint8)
        self.written = index + 1  # counted last: an interrupted add is simply overwritten on resume

    def log(self, name: str, input_name: str, message: str) -> None:
        """Record a skipped input (`name="skipped"`) or a remark on a written one (`name="notes"`)."""
        row = self._logged[name]
        self._ensure_room(name, row + 1)
        self.file[name][row] = [input_name, message]
        self._logged[name] = row + 1

    def entries(self, name: str) -> list[tuple[str, str]]:
        """Every (input, message) row recorded so far under "skipped" or "notes"."""
        rows = self.file[name][: self._logged[name]].astype(str)
        return [(str(a), str(b)) for a, b in rows]

    def checkpoint(self, inputs_done: int) -> None:
        """Record that the first `inputs_done` inputs are fully handled, and flush to disk."""
        self.inputs_done = inputs_done
        progress = {"inputs": inputs_done, "written": self.written, **self._logged}
        self.file.attrs["progress"] = json.dumps(progress)
        self.file.flush()
        self.written_at_checkpoint = self.written

    def commit(self) -> Path:
        """Trim, seal with count and checksum, and rename the partial file to the output name."""
        for name, rows in [
            *((f"levels/{r}", self.written) for r in self.resolutions),
            ("digests", self.written),
            *self._logged.items(),
        ]:
            self.file[name].resize(rows, axis=0)
        checksum = hashlib.sha256(self.file["digests"][:].tobytes()).hexdigest()
        self.file.attrs.update({"count": self.written, "checksum": checksum, "automod_version": __version__})
        self.file.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for key in ("fingerprint", "progress"):
            del self.file.attrs[key]
        self.file.close()
        check_output(self.out, self.force)  # a file may have appeared there during a long run
        os.replace(self.partial, self.out)
        return self.out

    def close(self) -> None:
        """Close without committing; the partial file stays for a later run to resume."""
        if self.file.id.valid:
            self.file.close()

    def close_after_failure(self) -> bool:
        """Close after a failed write (a full disk), as far as HDF5 still can. Returns False when it could not:
        the file's last writes are lost and the library is left in a state its exit handler crashes on."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- whatever HDF5 raises here, the answer is the same
            return False
        return True


@dataclass(frozen=True)
class H5Info:
    """What an automod image file holds (its root attributes)."""

    path: Path
    source: str
    source_path: str
    alignment: str
    split: str
    count: int
    resolutions: tuple[int, ...]
    checksum: str
    automod_version: str
    created: str
    skipped: int


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _damaged(path: Path, exc: BaseException) -> AutomodError:
    return AutomodError(
        f"{path} is a damaged or truncated HDF5 file ({_first_line(exc)}); "
        "write it again with `automod prep`."
    )


def _has_hdf5_signature(path: Path) -> bool:
    """Whether the file starts with the HDF5 signature (at 0, or after a user block of 512, 1024, ... bytes)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset + len(_HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def open_images_file(path: Path) -> h5py.File:
    """Open an automod image file read-only, or raise AutomodError saying why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(f"{path} does not exist; write it with `automod prep`.")
    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        if _has_hdf5_signature(path):
            raise _damaged(path, exc) from None
        raise AutomodError(f"{path} is not an HDF5 file; write one with `automod prep`.") from None
    try:
        attrs = dict(file.attrs)
    except Exception as exc:  # noqa: BLE001 -- the header opened but its attributes cannot be read
        file.close()
        raise _damaged(path, exc) from None
    if attrs.get("format") != FORMAT:
        file.close()
        raise AutomodError(
            f"{path} is an HDF5 file but not an automod image file; write one with `automod prep`."
        )
    if "checksum" not in attrs:
        file.close()
        raise AutomodError(
            f"{path} is an unfinished prep file; run the same `automod prep` command again to finish it."
        )
    return file


def read_info(path: Path) -> H5Info:
    """The summary attributes of an automod image file."""
    with open_images_file(path) as file:
        attrs = file.attrs
        return H5Info(
            path=Path(path),
            source=str(attrs["source"]),
            source_path=str(attrs["source_path"]),
            alignment=str(attrs["alignment"]),
            split=str(attrs["split"]),
            count=int(attrs["count"]),
            resolutions=tuple(int(r) for r in attrs["resolutions"]),
            checksum=str(attrs["checksum"]),
            automod_version=str(attrs["automod_version"]),
            created=str(attrs["created"]),
            skipped=int(file["skipped"].shape[0]),
        )


def verify(path: Path, progress: Callable[[int, int], None] | None = None) -> list[int]:
    """Recompute every image's digest and the file checksum. Returns the indices of images whose
    bytes changed; raises AutomodError when only the digest list itself no longer matches."""
    with open_images_file(path) as file:
        count = int(file.attrs["count"])
        resolutions = [int(r) for r in file.attrs["resolutions"]]
        bad = []
        try:
            stored = file["digests"][:]
            for index in range(count):
                levels = {r: file[f"levels/{r}"][index] for r in resolutions}
                if image_digest(levels) != stored[index].tobytes():
                    bad.append(index)
                if progress is not None:
                    progress(index + 1, count)
        except (OSError, KeyError) as exc:  # e.g. cut short after its header was written: chunks past the end
            raise _damaged(path, exc) from None
        if not bad and hashlib.sha256(stored.tobytes()).hexdigest() != file.attrs["checksum"]:
            raise AutomodError(
                f"{path}: the stored digests do not match the checksum; write the file again with "
                "`automod prep`."
            )
    return bad


def _one_plain_chunk_per_image(level: h5py.Dataset, resolution: int) -> bool:
    """Whether each image of `level` is one chunk stored as raw bytes (no compression or other filter), as the
    writer lays it out: then a chunk's bytes are the image."""
    return (
        level.chunks == (1, 3, resolution, resolution)
        and level.dtype == np.uint8
        and level.id.get_create_plist().get_nfilters() == 0
    )


def read_batch(dataset, indices: list[int]) -> list[torch.Tensor]:
    """The images at `indices` of any indexable dataset: through its batch read (`__getitems__`, as H5Images has)
    where it has one, else one at a time."""
    getitems = getattr(dataset, "__getitems__", None)
    return getitems(indices) if getitems is not None else [dataset[index] for index in indices]


class H5Images(Dataset):
    """Training images at one resolution of an automod image file, as float32 CHW tensors in [-1, 1].

    No HDF5 handle is opened in `__init__`: each process (DataLoader worker, DDP rank) opens the
    file on its first read, and a handle inherited through fork is replaced, so the dataset is safe
    to pass to workers. Only the requested level is read, one chunk per image: the writer stores each
    image as one uncompressed chunk, which is read straight into the batch (`read_direct_chunk`,
    about 20x faster than h5py's slicing; benchmarks/RESULTS.md); a file laid out otherwise is
    sliced. A DataLoader fetches a whole batch through `__getitems__`. With `mirror`, each image is
    flipped horizontally with probability 1/2 using torch's RNG (seeded per worker).
    Workers copy the dataset when a DataLoader starts iterating: after `set_resolution`, start a
    new iteration (or DataLoader, if its workers are persistent) for the change to reach them."""

    def __init__(self, path: Path, resolution: int, mirror: bool = False) -> None:
        self.path = Path(path)
        self.mirror = mirror
        with open_images_file(self.path) as file:
            self.resolutions = tuple(int(r) for r in file.attrs["resolutions"])
            self.count = int(file.attrs["count"])
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._direct: dict[int, bool] = {}  # per resolution: one plain chunk per image (read_direct_chunk)
        self.set_resolution(resolution)

    def set_resolution(self, resolution: int) -> None:
        """Read another level from now on (progressive training phases)."""
        if resolution not in self.resolutions:
            have = ", ".join(str(r) for r in self.resolutions)
            raise AutomodError(
                f"{self.path} has no {resolution}x{resolution} images (it has {have}); "
                f"prepare it again with `automod prep ... --res {resolution}` or train at most at "
                f"{self.resolutions[-1]}."
            )
        self.resolution = resolution

    def __len__(self) -> int:
        return self.count

    def _level(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file[f"levels/{self.resolution}"]

    def _pixels(self, indices: list[int]) -> np.ndarray:
        """The images at `indices` as uint8 (n, 3, r, r), in the order asked (repeats allowed)."""
        for index in indices:
            if not -self.count <= index < self.count:
                raise IndexError(f"image {index} out of range for {self.count} images")
        level, r = self._level(), self.resolution
        out = np.empty((len(indices), 3, r, r), dtype=np.uint8)
        if r not in self._direct:  # the layout is asked once per level, not once per batch
            self._direct[r] = _one_plain_chunk_per_image(level, r)
        if self._direct[r]:
            for k, index in enumerate(indices):
                _, raw = level.id.read_direct_chunk((index % self.count, 0, 0, 0))
                out[k] = np.frombuffer(raw, dtype=np.uint8).reshape(3, r, r)
        else:
            for k, index in enumerate(indices):
                out[k] = level[index % self.count]
        return out

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        """A batch of images (DataLoader calls this with each batch's indices): read together, converted to float
        in runs of images whose floats fit in about a megabyte of cache (all of a small batch at once; at 256²,
        one image at a time: converting a whole 256² batch in one go was 1.6x slower)."""
        pixels = self._pixels(indices)
        run = max(1, _CONVERT_BYTES // (4 * pixels[0].size)) if len(pixels) else 1
        images: list[torch.Tensor] = []
        for start in range(0, len(pixels), run):
            images += (
                torch.from_numpy(pixels[start : start + run]).to(torch.float32).div_(127.5).sub_(1.0).unbind()
            )
        if self.mirror:
            images = [image.flip(-1) if torch.rand(()) < 0.5 else image for image in images]
        return images

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.__getitems__([index])[0]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None  # handles never travel to other processes
        return state

    def close(self) -> None:
        """Close this process's handle (reopened on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None
