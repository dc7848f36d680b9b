"""Codes files: latents computed once (`automod encode`) and reused in place of images (`codes.npz:3`).

A codes file is an uncompressed NumPy `.npz` holding only plain arrays (it is read with `allow_pickle=False`):

    codes           float32 (N, D)   one latent per image, in the order the images were encoded
    files           str (N,)         the image file each code came from, as it was named on the command line
    format          str              "automod-codes"
    format_version  int              1
    latent_dim      int              D
    latent_kind     str              "sphere" (automodulator, Balanced PIONEER), "gaussian" (VAE, WAE), "lia" (LIA's y)
    model           str              the checkpoint file that encoded them, as an absolute path (for messages only)
    model_sha256    str              SHA-256 of that model's weights, level and fade-in (`model_identity`)
    resolution      int              the resolution the images were resized to
    aligned         bool             whether faces were aligned first (`--align`)
    automod_version str

Codes are only decoded by the model that made them: a file of another latent size, latent kind or other weights
is refused in one line (`Codes.require_model`). An entry `FILE.npz:I` names code I (from 0); `FILE.npz` alone
names all its codes. Wherever a command takes images (`find_sources`), such entries may stand in their place,
in any order among files and folders.
"""

from __future__ import annotations

import hashlib
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, Union

import numpy as np
import torch

from automod_cli import __version__, defaults
from automod_cli.checkpoint import state_sha256
from automod_cli.errors import AutomodError
from automod_cli.ops.inputs import Inputs, check_inputs, image_paths, load_inputs
from automod_cli.ops.reconstruct import ProgressCallback, decode, encode, model_device
from automod_cli.outputs import atomic_write, refuse_overwrite

FORMAT = "automod-codes"
FORMAT_VERSION = 1
SUFFIX = defaults.CODES_SUFFIX
ENTRY = re.compile(r"^(?P<file>.+\.npz)(?::(?P<index>[^:]*))?$", re.IGNORECASE)
ENCODE_BATCH = defaults.ENCODE_BATCH  # images per encoder pass in `encode_files`


@dataclass(frozen=True)
class ModelIdentity:
    """What a code depends on: the latent space (size, kind) and the weights that map images into it."""

    latent_dim: int
    latent_kind: str
    sha256: str


def latent_kind(model: torch.nn.Module) -> str:
    return "lia" if getattr(model, "kind", None) == "lia" else model.config.latent


def model_identity(model: torch.nn.Module) -> ModelIdentity:
    """The model's latent size and kind, and a SHA-256 over its weights (`checkpoint.state_sha256`), level and
    fade-in: the same for the same checkpoint on any device, different for any other checkpoint."""
    digest = hashlib.sha256(f"{model.level} {model.alpha!r} {state_sha256(model)}".encode())
    return ModelIdentity(model.config.latent_dim, latent_kind(model), digest.hexdigest())


@dataclass(frozen=True)
class Codes:
    """The contents of a codes file."""

    path: Path
    codes: np.ndarray  # (N, D) float32
    files: list[str]
    model: str
    identity: ModelIdentity

    def __len__(self) -> int:
        return len(self.codes)

    def require_model(self, identity: ModelIdentity) -> None:
        """One line when these codes cannot be decoded by the model of `identity`."""
        mine = self.identity
        if mine.latent_dim != identity.latent_dim or mine.latent_kind != identity.latent_kind:
            raise AutomodError(
                f"'{self.path}' holds {mine.latent_dim}-d {mine.latent_kind} codes of '{self.model}'; "
                f"this model's latents are {identity.latent_dim}-d {identity.latent_kind}: encode the "
                "images again with this --model (automod encode)."
            )
        if mine.sha256 != identity.sha256:
            raise AutomodError(
                f"'{self.path}' holds codes of another model ('{self.model}', weights "
                f"{mine.sha256[:12]}; this model's are {identity.sha256[:12]}): pass --model "
                f"'{self.model}', or encode the images again with this model (automod encode)."
            )


def save_codes(
    path: Path,
    codes: torch.Tensor,
    files: Sequence[Path | str],
    identity: ModelIdentity,
    model: str,
    resolution: int,
    aligned: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write a codes file atomically (see the module's docstring); an existing file only with `overwrite`."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise AutomodError(f"a codes file is an .npz file: name it e.g. '{path.with_suffix(SUFFIX).name}'.")
    refuse_overwrite(path, overwrite)
    values = codes.detach().float().cpu().numpy()
    if values.ndim != 2 or len(values) != len(files) or values.shape[1] != identity.latent_dim:
        raise AutomodError(
            f"codes of shape {tuple(values.shape)} do not match {len(files)} files of "
            f"{identity.latent_dim}-d latents."
        )
    arrays = {
        "codes": values,
        "files": np.array([str(f) for f in files], dtype=str),
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "latent_dim": np.array(identity.latent_dim),
        "latent_kind": np.array(identity.latent_kind),
        "model": np.array(_absolute(model)),
        "model_sha256": np.array(identity.sha256),
        "resolution": np.array(resolution),
        "aligned": np.array(bool(aligned)),
        "automod_version": np.array(__version__),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to the temporary name
            np.savez(handle, **arrays)

    atomic_write(path, write)
    return path


def _absolute(model: Path | str) -> str:
    """The model's path made absolute, so that the advice 'pass --model PATH' works from any folder; a name that is
    not a path here (a pretrained model's name) is kept as it is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def _scalar(arrays, key: str, kind: str):
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kind:
        raise ValueError(f"'{key}' is not a single value")
    return value.item()


@contextmanager
def _npz(path: Path) -> Iterator:
    """The arrays of an .npz file, read without unpickling; ValueError for a single array (.npy) or other contents."""
    arrays = np.load(path, allow_pickle=False)
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise ValueError("a single array")
    with arrays:
        yield arrays


FIELDS = ("codes", "files", "format", "format_version", "latent_dim", "latent_kind", "model", "model_sha256")
WRITE_AGAIN = "write codes with automod encode IMAGES --out FILE.npz"


def load_codes(path: Path) -> Codes:
    """Read a codes file written by `save_codes`; one line for anything else (nothing is unpickled): a missing file,
    a damaged or empty one (not a zip archive), an .npz without automod's fields, or fields of the wrong kind."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(
            f"codes file '{path}' does not exist: write one with automod encode IMAGES --out {path}."
        )
    if not zipfile.is_zipfile(path):
        what = "an empty file" if path.stat().st_size == 0 else "damaged, or not an .npz (zip) archive at all"
        raise AutomodError(f"'{path}' is not a codes file: it is {what}; {WRITE_AGAIN}.")
    try:
        with _npz(path) as arrays:
            missing = [name for name in FIELDS if name not in arrays.files]
            if missing:
                held = ", ".join(arrays.files[:5]) + (", ..." if len(arrays.files) > 5 else "")
                raise AutomodError(
                    f"'{path}' is an .npz archive but not a codes file written by automod encode: it "
                    f"lacks the fields {', '.join(missing)} (it holds {held or 'no arrays'}); "
                    f"{WRITE_AGAIN}."
                )
            if _scalar(arrays, "format", "U") != FORMAT:
                raise ValueError("another format")
            if _scalar(arrays, "format_version", "iu") > FORMAT_VERSION:
                raise AutomodError(
                    f"'{path}' was written by a newer automod (codes format "
                    f"{_scalar(arrays, 'format_version', 'iu')}); update automod to read it."
                )
            codes, files = arrays["codes"], arrays["files"]
            identity = ModelIdentity(
                int(_scalar(arrays, "latent_dim", "iu")),
                _scalar(arrays, "latent_kind", "U"),
                _scalar(arrays, "model_sha256", "U"),
            )
            model = _scalar(arrays, "model", "U")
    except AutomodError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise AutomodError(
            f"'{path}' is not a codes file written by automod encode: its fields cannot be read as "
            f"plain arrays ({_reason(exc)}; pickled objects are never loaded); {WRITE_AGAIN}."
        ) from None
    if (
        codes.dtype.kind != "f"
        or codes.ndim != 2
        or codes.shape[1] != identity.latent_dim
        or files.dtype.kind != "U"
        or files.shape != (len(codes),)
    ):
        raise AutomodError(
            f"'{path}' is a damaged codes file: codes {codes.shape} {codes.dtype}, files {files.shape}."
        )
    return Codes(path, codes.astype(np.float32), [str(f) for f in files], model, identity)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().strip("'\"")
    return text if text else type(exc).__name__


@dataclass(frozen=True)
class Code:
    """Code `index` of the codes file `file`, standing in for an image."""

    file: Path
    index: int

    def __str__(self) -> str:
        return f"{self.file}:{self.index}"


Source = Union[Path, Code]


def codes_entry(item: Path | str) -> tuple[Path, int | None] | None:
    """(file, index) for `FILE.npz:I`, (file, None) for `FILE.npz`, None for anything else (an image or folder)."""
    match = ENTRY.match(str(item))
    if match is None:
        return None
    index = match["index"]
    if index is not None and not index.isdigit():
        raise AutomodError(f"'{item}': name a code by its number, from 0, as {match['file']}:0.")
    return Path(match["file"]), None if index is None else int(index)


@dataclass
class Sources:
    """A command's inputs in order: image files and codes, and the image files skipped with their reason."""

    entries: list[Source]
    codes: dict[Path, Codes] = field(default_factory=dict)  # each codes file named, read once
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def images(self) -> list[Path]:
        return [entry for entry in self.entries if isinstance(entry, Path)]


def _codes_of(item, files: dict[Path, Codes]) -> list[Code]:
    file, index = codes_entry(item)
    if file not in files:
        files[file] = load_codes(file)
    count = len(files[file])
    if index is None:
        return [Code(file, i) for i in range(count)]
    if index >= count:
        raise AutomodError(
            f"'{item}': '{file}' holds {count} codes (0–{count - 1}); there is no code {index}."
        )
    return [Code(file, index)]


def find_sources(items: Sequence[Path | str]) -> Sources:
    """Expand folders into their image files (`image_paths`) and `FILE.npz[:I]` entries into codes, keeping the
    order; codes files are read and the entries checked, image files are not opened yet (`check_sources`)."""
    if not items:
        raise AutomodError("no input images were given.")
    entries: list[Source] = []
    files: dict[Path, Codes] = {}
    for item in items:
        if codes_entry(item) is not None and not Path(item).is_dir():
            entries += _codes_of(item, files)
        else:
            entries += image_paths([Path(item)])
    return Sources(entries, files)


def check_sources(sources: Sources, exact: bool = False) -> Sources:
    """Decode every image file once, before any model is loaded (`check_inputs`): unusable files are dropped and
    listed in `skipped`, or (`exact`) the first is the error."""
    if not sources.images:
        return sources
    checked = check_inputs(sources.images, exact)
    usable = set(checked.paths)  # a file given twice is usable both times or neither
    kept = [entry for entry in sources.entries if not isinstance(entry, Path) or entry in usable]
    return Sources(kept, sources.codes, sources.skipped + checked.skipped)


@dataclass
class Latents:
    """The latents of checked sources, in order, with what each came from."""

    z: torch.Tensor  # (N, D) on the model's device
    images: list[torch.Tensor | None]  # the input image of each row (3, R, R), None for a code
    names: list[str]  # file name, or FILE.npz:I (source file name)
    used: Inputs  # the image files encoded, and every image file skipped with its reason


def source_latents(
    model: torch.nn.Module, sources: Sources, align: bool = False, exact: bool = False
) -> Latents:
    """Codes as they are (each file checked against the model first) and images encoded, in the sources' order. An
    image that fails only now (no face found with `align`) is dropped and listed, or (`exact`) is the error."""
    if sources.codes:
        identity = model_identity(model)
        for codes in sources.codes.values():
            codes.require_model(identity)
    encoded: dict[Path, tuple[torch.Tensor, torch.Tensor]] = {}
    used = Inputs([], list(sources.skipped))
    if sources.images:
        x, loaded = load_inputs(Inputs(sources.images), model.resolution, align, exact)
        encoded = dict(zip(loaded.paths, zip(encode(model, x), x)))
        used = Inputs(loaded.paths, used.skipped + loaded.skipped, loaded.upscaled)
    device = model_device(model)
    rows, images, names = [], [], []
    for entry in sources.entries:
        if isinstance(entry, Code):
            codes = sources.codes[entry.file]
            rows.append(torch.from_numpy(codes.codes[entry.index]).to(device))
            images.append(None)
            names.append(f"{entry} ({Path(codes.files[entry.index]).name})")
        elif entry in encoded:
            rows.append(encoded[entry][0])
            images.append(encoded[entry][1])
            names.append(str(entry))  # the path as given (folder included), as reconstruct names files
    if not rows:
        raise AutomodError("none of the inputs can be used.")
    return Latents(torch.stack(rows), images, names, used)


def input_images(model: torch.nn.Module, latents: Latents, noise: bool = False) -> torch.Tensor:
    """What stands for each input in a figure, (N, 3, R, R): the image itself, or a code's reconstruction."""
    codes = [i for i, image in enumerate(latents.images) if image is None]
    decoded = dict(zip(codes, decode(model, latents.z[codes], noise))) if codes else {}
    device = model_device(model)
    return torch.stack(
        [decoded[i] if image is None else image.to(device) for i, image in enumerate(latents.images)]
    )


@dataclass
class Encoded:
    """What `encode_files` did: the codes of the files used, the files skipped, and how long it took."""

    codes: torch.Tensor  # (N, D) on the CPU
    used: Inputs
    seconds: float

    @property
    def images_per_second(self) -> float:
        return len(self.codes) / self.seconds if self.seconds > 0 else float("inf")


def encode_files(
    model: torch.nn.Module,
    inputs: Inputs,
    align: bool = False,
    batch_size: int = ENCODE_BATCH,
    progress: ProgressCallback | None = None,
    inspect: Callable[[torch.Tensor], None] | None = None,
) -> Encoded:
    """Encode checked image files batch by batch (the next batch is read from disk while one is encoded), so any
    number of files fits in memory. Files that fail only now (no face with `align`) are skipped with their reason;
    AutomodError when none is usable. `progress("encoding", done, total)` follows the files; `inspect(images)` sees
    each batch of images (N, 3, R, R) as it was encoded (the command checks them against the training data)."""
    if batch_size < 1:
        raise AutomodError("the batch size must be at least 1.")
    chunks = [inputs.paths[i : i + batch_size] for i in range(0, len(inputs.paths), batch_size)]

    def read(chunk: list[Path]) -> tuple[torch.Tensor, Inputs]:
        return load_inputs(Inputs(chunk), model.resolution, align, allow_none=True)

    began = time.perf_counter()
    codes, used, skipped, upscaled, done = [], [], list(inputs.skipped), [], 0
    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, chunks[0]) if chunks else None
        for i, chunk in enumerate(chunks):
            x, loaded = pending.result()
            pending = reader.submit(read, chunks[i + 1]) if i + 1 < len(chunks) else None
            if len(x):
                codes.append(encode(model, x, batch_size).float().cpu())
                if inspect is not None:
                    inspect(x)
            used += loaded.paths
            skipped += loaded.skipped
            upscaled += loaded.upscaled
            done += len(chunk)
            if progress is not None:
                progress("encoding", done, len(inputs.paths))
    if not used:
        raise AutomodError(
            f"none of the {len(skipped)} inputs could be encoded: "
            + "; ".join(f"'{p}' ({r})" for p, r in skipped[:3])
            + "."
        )
    seconds = time.perf_counter() - began
    return Encoded(torch.cat(codes), Inputs(used, skipped, upscaled), seconds)
