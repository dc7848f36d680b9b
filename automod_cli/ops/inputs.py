"""Image files in: any size and mode → (N, 3, R, R) tensors in [-1, 1] at the model's resolution.

Files are decoded safely (`data_prep.images.load_rgb`: grayscale, palette, CMYK, alpha and 16-bit become 8-bit
RGB), centre-cropped to a square and resized with Lanczos — up as well as down, so a tiny picture still gives a
(blurry) result, and is listed (`Inputs.upscaled`) for the command to warn about. With `align=True` the largest
face is aligned FFHQ-style first (the prep alignment; needs the `[align]` extra); `align=Align(Faces(...))` picks
another face (`--face`) and collects notes on photos with several faces; with `align=AlignIfFace()` a file without
a face is used unaligned and listed instead. Every problem with a file becomes one AutomodError naming the file —
or, where the command can go on without it (`check_inputs`, `load_inputs`), a skipped file with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from automod_cli.errors import AutomodError
from automod_cli.images import from_uint8
from data_prep.builtin import generate
from data_prep.images import NO_FACE, SkipImage, center_crop_square, load_rgb, resize_square

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"}
)


def image_paths(items: Sequence[Path]) -> list[Path]:
    """Files as given, and the image files of any folder among `items` (sorted by name, not recursive)."""
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise AutomodError(
                    f"folder '{item}' holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})."
                )
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise AutomodError(f"input '{item}' does not exist: pass image files or folders of images.")
    if not paths:
        raise AutomodError("no input images were given.")
    return paths


@dataclass
class Faces:
    """Which detected face to align (`--face`): number `default` in every file (0 = the largest), or the number
    given for a file by its path or its name (`--face a.jpg=1`)."""

    default: int = 0
    by_file: dict[str, int] = field(default_factory=dict)

    def index(self, path: Path) -> int:
        return self.by_file.get(str(path), self.by_file.get(Path(path).name, self.default))


class Align:
    """An `align` value that is on and says more than True: which face to align in each file (`faces`), and it
    collects, for the caller to say, the notes on files with several faces (`notes`: (path, note))."""

    def __init__(self, faces: Faces | None = None) -> None:
        self.faces = faces or Faces()
        self.notes: list[tuple[Path, str]] = []
        self.unaligned: list[Path] = []

    def __bool__(self) -> bool:  # aligning is on
        return True


class AlignIfFace(Align):
    """An `align` value: align the chosen face (the largest by default) where one is found, and use a file without a
    face as it is (centre crop) instead of skipping it, listing it in `unaligned` for the caller to name. The image
    commands use it for models trained on aligned faces when neither --align nor --no-align was given."""


def upscale_note(size: tuple[int, int], resolution: int) -> str | None:
    """Why a picture of `size` (width, height) gives a blurred input at `resolution`, or None: its shorter side is
    below the resolution (automod prep skips such pictures as too small; here they are upscaled)."""
    if min(size) >= resolution:
        return None
    return (
        f"{size[0]}×{size[1]}, smaller than the model's {resolution}² (automod prep skips such pictures): "
        "upscaled, so expect a blurred result"
    )


def _pixels(path: Path, resolution: int, align: bool | Align) -> tuple[torch.Tensor, tuple[int, int]]:
    """One image file as (3, R, R) in [-1, 1] and the file's picture size, or SkipImage saying why it cannot be
    used."""
    picture = load_rgb(Path(path))
    size = picture.size
    if align:
        from data_prep.align import detect_and_align  # noqa: PLC0415 -- scipy's 0.2 s only when aligning

        face = align.faces.index(Path(path)) if isinstance(align, Align) else 0
        try:
            picture, note = detect_and_align(picture, resolution, min_face=1, face=face)
            if note and isinstance(align, Align):
                align.notes.append((Path(path), note))
        except AutomodError as exc:  # no face of that number
            raise AutomodError(f"'{path}': {exc}") from None
        except SkipImage as exc:
            if not (isinstance(align, AlignIfFace) and exc.kind == NO_FACE):
                raise
            align.unaligned.append(Path(path))
    return from_uint8(np.array(resize_square(center_crop_square(picture), resolution))), size


def _refusal(path: Path, exc: SkipImage) -> str:
    hint = "; drop --align or crop the face by hand" if exc.kind == NO_FACE else ""
    return f"cannot use '{path}' as an image ({exc}){hint}."


def load_image(path: Path, resolution: int, align: bool = False) -> torch.Tensor:
    """One image file as a (3, R, R) tensor in [-1, 1]: RGB, (face-aligned,) centre-cropped, resized to R."""
    path = Path(path)
    try:
        return _pixels(path, resolution, align)[0]
    except SkipImage as exc:
        raise AutomodError(_refusal(path, exc)) from None


def load_images(paths: Sequence[Path], resolution: int, align: bool = False) -> torch.Tensor:
    """Several image files as one (N, 3, R, R) batch; see `load_image`."""
    if align:
        from data_prep.align import require_dlib  # noqa: PLC0415 -- scipy's 0.2 s only when aligning

        require_dlib()
    return torch.stack([load_image(p, resolution, align) for p in paths])


@dataclass
class Inputs:
    """The usable input files, in order, and those skipped with the reason (`check_inputs`, `load_inputs`); from
    `load_inputs`, also the files used but upscaled, with `upscale_note`'s reason."""

    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    upscaled: list[tuple[Path, str]] = field(default_factory=list)


SKIPS_NAMED = 3  # unusable files named in the error when none is usable


def none_usable_error(skipped: list[tuple[Path, str]]) -> AutomodError:
    """The error when no input can be used: the unusable files (the first few) named with their reasons."""
    if len(skipped) == 1:
        path, reason = skipped[0]
        return AutomodError(f"cannot use '{path}' as an image ({reason}).")
    named = "; ".join(f"'{path}' ({reason})" for path, reason in skipped[:SKIPS_NAMED])
    more = f"; and {len(skipped) - SKIPS_NAMED} more" if len(skipped) > SKIPS_NAMED else ""
    return AutomodError(f"none of the {len(skipped)} inputs can be used as an image: {named}{more}.")


def check_inputs(items: Sequence[Path], exact: bool = False) -> Inputs:
    """Expand folders (`image_paths`) and decode every file once, before any model is loaded.

    `exact`: each file is needed (the A and B of a mix, interpolation ends): the first unusable one is the error.
    Otherwise unusable files (not images, truncated, unreadable) are skipped with their reason, as `automod prep`
    skips them, and the rest go on; AutomodError only when none is usable.
    """
    usable, skipped = [], []
    for path in image_paths(items):
        try:
            load_rgb(path)
        except SkipImage as exc:
            if exact:
                raise AutomodError(_refusal(path, exc)) from None
            skipped.append((path, str(exc)))
            continue
        usable.append(path)
    if not usable:
        raise none_usable_error(skipped)
    return Inputs(usable, skipped)


def load_inputs(
    inputs: Inputs, resolution: int, align: bool = False, exact: bool = False, allow_none: bool = False
) -> tuple[torch.Tensor, Inputs]:
    """The usable files of `inputs` as one (N, 3, R, R) batch, and the files used; a file that fails now (no face
    found with `align`) is skipped like those `check_inputs` skipped, or is the error when `exact`. When none is
    usable: AutomodError, or with `allow_none` (one batch of many) an empty batch."""
    if align:
        from data_prep.align import require_dlib  # noqa: PLC0415 -- scipy's 0.2 s only when aligning

        require_dlib()
    images, used, skipped, upscaled = [], [], list(inputs.skipped), list(inputs.upscaled)
    for path in inputs.paths:
        try:
            image, size = _pixels(path, resolution, align)
        except SkipImage as exc:
            if exact:
                raise AutomodError(_refusal(path, exc)) from None
            skipped.append(
                (
                    path,
                    "no face found to align; --no-align uses it as it is"
                    if exc.kind == NO_FACE
                    else str(exc),
                )
            )
            continue
        images.append(image)
        used.append(path)
        note = upscale_note(size, resolution)
        upscaled += [(path, note)] if note else []
    if not used:
        if allow_none:
            return torch.empty(0, 3, resolution, resolution), Inputs(used, skipped, upscaled)
        raise none_usable_error(skipped)
    return torch.stack(images), Inputs(used, skipped, upscaled)


def builtin_images(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """n pictures of the built-in dataset rendered at `resolution`, (n, 3, R, R) in [-1, 1]: inputs that need no
    files (examples, quick checks)."""
    pictures, _ = generate(n, seed=seed, size=resolution)
    return from_uint8(pictures.transpose(0, 2, 3, 1))
