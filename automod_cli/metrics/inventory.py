"""Every pretrained file automod can use, where it was looked for, whether it is there, and whether its bytes are
the published ones (`automod eval weights`). Nothing is downloaded.

The files: FID's Inception, LPIPS's AlexNet and VGG16 trunks (VGG16 also for the projection loss and LIA's
perceptual loss), LPIPS's calibrated linear layers (inside the lpips package), dlib's 68-landmark model for face
alignment (inside the face-recognition-models package), and the authors' five published models (`pretrained.py`).

Hashes: torch.hub's convention names a file `NAME-<first hex digits of its SHA-256>.EXT` (torchvision's and
pytorch-fid's files follow it, and torch.hub checks downloads against it), so those files are checked against the
prefix in their own names. For the others no published hash is recorded here: their SHA-256 is shown, unchecked.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from automod_cli import pretrained
from automod_cli.errors import AutomodError
from automod_cli.features import weights as weight_files

HASH_PREFIX = re.compile(
    r"-([a-f0-9]{8,})\."
)  # torch.hub.HASH_REGEX, at least the eight digits torch.hub writes
PRESENT, MISSING = "present", "missing"
OK, MISMATCH, UNCHECKED = "ok", "MISMATCH", "no known hash"


@dataclass(frozen=True)
class Entry:
    """One pretrained file on this machine."""

    name: str  # the file's standard name
    used_by: str
    state: str  # PRESENT or MISSING
    path: Path | None  # where it was found
    looked: tuple[str, ...]  # where it was looked for, in order
    sha256: str | None  # of the file found
    expected: str | None  # the known SHA-256 or its prefix (from the file name)
    check: str | None  # OK, MISMATCH or UNCHECKED for a file found; None when missing

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "used_by": self.used_by,
            "state": self.state,
            "path": None if self.path is None else str(self.path),
            "looked": list(self.looked),
            "sha256": self.sha256,
            "expected": self.expected,
            "check": self.check,
        }


def expected_hash(name: str) -> str | None:
    """The SHA-256 prefix a torch.hub-style file name carries ('alexnet-owt-7be5be79.pth' → '7be5be79')."""
    match = HASH_PREFIX.search(name)
    return match.group(1) if match else None


def entry(
    name: str, used_by: str, candidates: list[tuple[str, Path | None]], expected: str | None = None
) -> Entry:
    """The first candidate (a description of the place, the path there) that is a file, hashed and checked."""
    looked = tuple(f"{place}: {path}" if path is not None else place for place, path in candidates)
    found = next((Path(path) for _, path in candidates if path is not None and Path(path).is_file()), None)
    if found is None:
        return Entry(name, used_by, MISSING, None, looked, None, expected, None)
    digest = weight_files.file_sha256(found)
    check = UNCHECKED if expected is None else OK if digest.startswith(expected) else MISMATCH
    return Entry(name, used_by, PRESENT, found, looked, digest, expected, check)


METRIC_FILES = (  # (file, what uses it)
    (weight_files.INCEPTION, "FID, FID-mix (pytorch-fid's Inception-v3)"),
    (weight_files.ALEXNET, "LPIPS --net alex: eval lpips, ppl, compare, project reports"),
    (
        weight_files.VGG16,
        "LPIPS --net vgg; the projection loss (--loss-net vgg); LIA's perceptual loss (conv4_3)",
    ),
)


def metric_entries(files=METRIC_FILES) -> list[Entry]:
    """The feature networks' weight files, looked for as the metrics look for them (without `--weights` and without
    downloading): the environment variable, then torch's hub cache."""
    entries = []
    for weight, used_by in files:
        variable = os.environ.get(weight.env_var)
        candidates = [
            (
                f"${weight.env_var}" if variable else f"${weight.env_var} (unset)",
                Path(variable).expanduser() if variable else None,
            ),
            ("torch hub cache", weight_files.cache_dir() / weight.name),
        ]
        entries.append(entry(weight.name, used_by, candidates, expected_hash(weight.name)))
    return entries


def lpips_layer_entries() -> list[Entry]:
    """LPIPS's calibrated linear layers (v0.1), which ship inside the lpips package."""
    spec = importlib.util.find_spec("lpips")
    folder = Path(spec.origin).parent / "weights" / "v0.1" if spec is not None and spec.origin else None
    return [
        entry(
            f"lpips v0.1 {net}.pth",
            f"LPIPS --net {net}: its calibrated linear layers",
            [("lpips package", None if folder is None else folder / f"{net}.pth")],
        )
        for net in ("alex", "vgg")
    ]


def landmark_entry() -> Entry:
    """dlib's 68-landmark model, shipped by face-recognition-models (`automod prep --align`)."""
    from data_prep.align import ALIGN_EXTRA, shape_predictor_path  # noqa: PLC0415 -- scipy's 0.2 s only for faces

    try:
        path: Path | None = shape_predictor_path()
    except AutomodError:
        path = None
    return entry(
        "shape_predictor_68_face_landmarks.dat",
        f"face alignment (prep --align; {ALIGN_EXTRA})",
        [("face-recognition-models package" + ("" if path else " (not installed)"), path)],
    )


def model_entries() -> list[Entry]:
    """The authors' published models: their own file in torch's hub cache, under its name and with its own hash;
    where only the converted automod file is here, that file under its own name and hash."""
    entries = []
    for model in pretrained.MODELS.values():
        source, converted = pretrained.authors_path(model.name), pretrained.converted_path(model.name)
        used_by = f"--model {model.name} (the authors' {model.description})"
        if converted.is_file() and not source.is_file():
            entries.append(entry(converted.name, f"{used_by}, converted", [("converted", converted)]))
        else:
            entries.append(
                entry(model.filename, used_by, [("authors' file", source), ("converted", converted)])
            )
    return entries


def inventory() -> list[Entry]:
    """Every pretrained file automod can use, in the order: metrics, LPIPS layers, alignment, published models."""
    return [*metric_entries(), *lpips_layer_entries(), landmark_entry(), *model_entries()]
