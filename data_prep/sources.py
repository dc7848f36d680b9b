"""Where images come from: each source lists its inputs in a fixed, documented order.

A `Source` is a description (what, which split, how faces are framed) plus a way to iterate its
inputs from any position, which is what makes an interrupted prep resumable. Splits follow Supp.
App. A: FFHQ 60k train / 10k test by image index, CelebA-HQ 27k / 3k by numeric file index.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from automod_cli.errors import AutomodError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}

# Supp. App. A: FFHQ 60k/10k (train = images 00000-59999, test = 60000-69999, the release's own
# "training"/"validation" categories); CelebA-HQ 27k/3k (first 27000 by numeric index train).
FFHQ_SPLITS = {"train": range(0, 60_000), "test": range(60_000, 70_000), "all": range(0, 70_000)}
CELEBAHQ_TRAIN = 27_000
CELEBAHQ_COUNT = 30_000

CROP = "crop"  # centre square, resized
LANDMARKS = "landmarks"  # FFHQ alignment from landmarks carried by each item
DETECT = "detect"  # dlib detection, then FFHQ alignment of the largest face


@dataclass(frozen=True, eq=False)
class Item:
    """One input: exactly one of a file path, encoded bytes or a decoded HWC uint8 array (none: missing)."""

    name: str  # shown in reports: path relative to --src, LMDB key, or index
    path: Path | None = None
    data: bytes | None = None
    array: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (68, 2) x, y for LANDMARKS framing


@dataclass(frozen=True)
class Source:
    """A dataset's inputs in their fixed order and how each becomes a square image."""

    name: str  # ffhq, celebahq, lsun, folder, builtin
    location: str  # recorded in the file as source_path
    split: str  # train, test or all
    alignment: str  # recorded in the file: how faces were framed
    framing: str  # CROP, LANDMARKS or DETECT
    total: int  # number of inputs
    fingerprint: str  # changes whenever the inputs or their order would
    items_from: Callable[[int], Iterator[Item]] = field(repr=False)  # inputs from a position on
    min_size: int | None = None  # shorter side (or face region) below this is skipped; None: the resolution


def _digest(*parts: object) -> str:
    return hashlib.sha256("\n".join(str(p) for p in parts).encode()).hexdigest()


def _check_folder(src: Path, what: str) -> Path:
    if not src.is_dir():
        raise AutomodError(f"{src} is not a folder; pass the {what} folder with --src.")
    return src.resolve()


def _visible_files(root: Path) -> list[Path]:
    """Every regular file under root, hidden files and folders (names starting with '.') left out,
    sorted by relative path so the order is the same on every machine."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        found.append(relative)
    return [root / p for p in sorted(found, key=lambda p: p.as_posix())]


def _limited(count: int, limit: int | None) -> int:
    if limit is not None and limit < 1:
        raise AutomodError(f"--limit must be at least 1, got {limit}.")
    return count if limit is None else min(count, limit)


def _from_list(items: list[Item]) -> Callable[[int], Iterator[Item]]:
    return lambda start: iter(items[start:])


def _file_list_fingerprint(root: Path, files: list[Path]) -> str:
    stats = ((f.relative_to(root).as_posix(), f.stat()) for f in files)
    return _digest(root, *(f"{name}:{st.st_size}:{st.st_mtime_ns}" for name, st in stats))


def folder(src: Path, align: bool = False, limit: int | None = None, min_size: int | None = None) -> Source:
    """Every file under `src` (recursive, sorted by relative path; non-images are reported as skipped).
    Centre-cropped to a square, or with `align` the largest face is detected and aligned FFHQ-style."""
    root = _check_folder(Path(src), "image")
    files = _visible_files(root)
    if not files:
        raise AutomodError(f"{root} holds no files; pass a folder of images with --src.")
    files = files[: _limited(len(files), limit)]
    items = [Item(name=f.relative_to(root).as_posix(), path=f) for f in files]
    return Source(
        name="folder",
        location=str(root),
        split="all",
        alignment="ffhq procedure on dlib 68 landmarks of the largest face"
        if align
        else "none (centre crop)",
        framing=DETECT if align else CROP,
        total=len(items),
        fingerprint=_file_list_fingerprint(root, files),
        items_from=_from_list(items),
        min_size=min_size,
    )


def _numbered_images(root: Path, pattern: str) -> dict[int, Path]:
    """Image files whose name (without suffix) matches `pattern`, keyed by the number in group 1."""
    found: dict[int, Path] = {}
    regex = re.compile(pattern)
    for path in _visible_files(root):
        match = regex.fullmatch(path.stem)
        if match is None or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        number = int(match.group(1))
        if number in found:
            raise AutomodError(
                f"{found[number]} and {path} both hold image {number}; keep one of them under --src."
            )
        found[number] = path
    return found


def _read_ffhq_landmarks(json_path: Path) -> dict[int, np.ndarray]:
    """The in-the-wild face landmarks of every image in the release's ffhq-dataset-v2.json."""
    if not json_path.is_file():
        raise AutomodError(
            f"{json_path} does not exist; pass the release's ffhq-dataset-v2.json with --landmarks."
        )
    try:
        entries = json.loads(json_path.read_text())
        return {
            int(k): np.asarray(v["in_the_wild"]["face_landmarks"], dtype=np.float64)
            for k, v in entries.items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise AutomodError(
            f"{json_path} is not the FFHQ metadata file (ffhq-dataset-v2.json): {exc}."
        ) from exc


def ffhq(src: Path, split: str = "train", landmarks: Path | None = None, limit: int | None = None) -> Source:
    """FFHQ images named by their 5-digit index anywhere under `src`: the aligned 1024² release
    (`images1024x1024/`), or with `landmarks` (ffhq-dataset-v2.json) the in-the-wild photos,
    aligned here with the FFHQ procedure. Indices of the split that are absent are reported as missing."""
    if split not in FFHQ_SPLITS:
        raise AutomodError(f"Unknown FFHQ split '{split}'; choose one of {', '.join(FFHQ_SPLITS)}.")
    root = _check_folder(Path(src), "FFHQ image")
    files = _numbered_images(root, r"(\d{5})")
    if not files:
        raise AutomodError(
            f"No FFHQ images named like 00000.png under {root}; pass images1024x1024/ or "
            "in-the-wild-images/ with --src."
        )
    indices = FFHQ_SPLITS[split]
    indices = indices[: _limited(len(indices), limit)]
    marks = _read_ffhq_landmarks(Path(landmarks)) if landmarks is not None else {}
    items = [
        Item(
            name=files[i].relative_to(root).as_posix() if i in files else f"{i:05d}",
            path=files.get(i),
            landmarks=marks.get(i),
        )
        for i in indices
    ]
    present = [files[i] for i in indices if i in files]
    return Source(
        name="ffhq",
        location=str(root),
        split=split,
        alignment=(
            "ffhq procedure on the release's in-the-wild landmarks"
            if landmarks
            else "ffhq release (pre-aligned)"
        ),
        framing=LANDMARKS if landmarks else CROP,
        total=len(items),
        fingerprint=_digest(_file_list_fingerprint(root, present), landmarks, split, limit),
        items_from=_from_list(items),
        min_size=0,  # the release defines the dataset: never skip a readable image for its size
    )


def celebahq(src: Path, split: str = "train", limit: int | None = None) -> Source:
    """CelebA-HQ as commonly distributed: 30000 1024² images named by index (e.g. 0.jpg or 00000.png).
    Files are sorted by the number in their name; the first 27000 are train, the rest test."""
    orders = {"train": slice(0, CELEBAHQ_TRAIN), "test": slice(CELEBAHQ_TRAIN, None), "all": slice(None)}
    if split not in orders:
        raise AutomodError(f"Unknown CelebA-HQ split '{split}'; choose one of {', '.join(orders)}.")
    root = _check_folder(Path(src), "CelebA-HQ image")
    numbered = _numbered_images(root, r"\D*?(\d+)")
    if not numbered:
        raise AutomodError(
            f"No images numbered by index (like 0.jpg) under {root}; pass the CelebA-HQ image folder "
            "with --src."
        )
    files = [numbered[i] for i in sorted(numbered)][orders[split]]
    files = files[: _limited(len(files), limit)]
    items = [Item(name=f.relative_to(root).as_posix(), path=f) for f in files]
    return Source(
        name="celebahq",
        location=str(root),
        split=split,
        alignment="celeba-hq release (pre-aligned)",
        framing=CROP,
        total=len(items),
        fingerprint=_digest(_file_list_fingerprint(root, files), split, len(numbered)),
        items_from=_from_list(items),
        min_size=0,
    )


def _open_lmdb(path: Path):
    try:
        import lmdb  # noqa: PLC0415 -- the optional [lsun] extra
    except ImportError as exc:
        raise AutomodError(
            "Reading LSUN's LMDB export needs the lmdb package: pip install 'automod[lsun]'."
        ) from exc
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, max_readers=64)
    except lmdb.Error as exc:
        raise AutomodError(f"{path} is not a readable LMDB database: {exc}.") from exc


def lsun(src: Path, limit: int | None = None, min_size: int | None = None) -> Source:
    """An LSUN category: the official LMDB export (a folder with data.mdb, images in key order) or a
    folder of images. Centre-cropped to a square, as the paper crops LSUN Cars (Supp. App. A)."""
    root = _check_folder(Path(src), "LSUN LMDB (or image)")
    if not (root / "data.mdb").is_file():
        return _relabel(folder(root, limit=limit, min_size=min_size), name="lsun")
    with _open_lmdb(root) as env:
        entries = env.stat()["entries"]
    total = _limited(entries, limit)

    def items_from(start: int) -> Iterator[Item]:
        with _open_lmdb(root) as env, env.begin() as txn:
            cursor = txn.cursor()
            for key, value in islice(cursor.iternext(keys=True, values=True), start, total):
                yield Item(name=key.decode(errors="replace"), data=bytes(value))

    return Source(
        name="lsun",
        location=str(root),
        split="all",
        alignment="none (centre crop)",
        framing=CROP,
        total=total,
        fingerprint=_digest(root, entries, (root / "data.mdb").stat().st_size, total),
        items_from=items_from,
        min_size=min_size,
    )


def _relabel(source: Source, name: str) -> Source:
    return Source(**{**source.__dict__, "name": name})


def builtin(split: str = "train", resolution: int = 64, limit: int | None = None) -> Source:
    """The generated built-in dataset (data_prep.builtin) at `resolution`: rendered at 64² (or more) and
    box-downscaled below that, so the pixels equal what BuiltinDataset serves to training."""
    # lazy: data_prep.builtin imports torch, and this module is read by `automod prep --help`
    from data_prep.builtin import NATIVE_SIZE, SPLITS, downscale, generate  # noqa: PLC0415

    if split not in SPLITS:
        raise AutomodError(f"Unknown built-in split '{split}'; choose one of {', '.join(SPLITS)}.")
    seed, count = SPLITS[split]
    count = _limited(count, limit)

    def items_from(start: int) -> Iterator[Item]:
        images, _ = generate(count, seed=seed, size=max(resolution, NATIVE_SIZE))
        if resolution < NATIVE_SIZE:
            images = downscale(images, resolution)
        for i in range(start, count):
            yield Item(name=f"{split}/{i}", array=np.ascontiguousarray(images[i].transpose(1, 2, 0)))

    return Source(
        name="builtin",
        location=f"data_prep.builtin seed {seed}",
        split=split,
        alignment="none (generated)",
        framing=CROP,
        total=count,
        fingerprint=_digest("builtin", split, seed, count, resolution),
        items_from=items_from,
        min_size=0,
    )
