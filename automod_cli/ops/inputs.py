"""Image files in: any size and mode → (N, 3, R, R) tensors in [-1, 1] at the model's resolution.

Files are decoded safely (`data_prep.images.load_rgb`: grayscale, palette, CMYK, alpha and 16-bit become 8-bit
RGB), centre-cropped to a square and resized with Lanczos — up as well as down, so a tiny picture still gives a
(blurry) result. With `align=True` the largest face is aligned FFHQ-style first (the prep alignment; needs the
`[align]` extra). Every problem with a file becomes one AutomodError naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from automod_cli.errors import AutomodError
from automod_cli.images import from_uint8
from data_prep.images import NO_FACE, SkipImage, center_crop_square, load_rgb, resize_square

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})


def image_paths(items: Sequence[Path]) -> list[Path]:
    """Files as given, and the image files of any folder among `items` (sorted by name, not recursive)."""
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise AutomodError(f"folder '{item}' holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise AutomodError(f"input '{item}' does not exist: pass image files or folders of images.")
    if not paths:
        raise AutomodError("no input images were given.")
    return paths


def load_image(path: Path, resolution: int, align: bool = False) -> torch.Tensor:
    """One image file as a (3, R, R) tensor in [-1, 1]: RGB, (face-aligned,) centre-cropped, resized to R."""
    path = Path(path)
    try:
        picture = load_rgb(path)
        if align:
            from data_prep.align import detect_and_align

            picture, _ = detect_and_align(picture, resolution, min_face=1)
        pixels = resize_square(center_crop_square(picture), resolution)
    except SkipImage as exc:
        hint = "; drop --align or crop the face by hand" if exc.kind == NO_FACE else ""
        raise AutomodError(f"cannot use '{path}' as an image ({exc}){hint}.") from None
    return from_uint8(np.array(pixels))


def load_images(paths: Sequence[Path], resolution: int, align: bool = False) -> torch.Tensor:
    """Several image files as one (N, 3, R, R) batch; see `load_image`."""
    if align:
        from data_prep.align import require_dlib

        require_dlib()
    return torch.stack([load_image(p, resolution, align) for p in paths])


def builtin_images(n: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """n pictures of the built-in dataset rendered at `resolution`, (n, 3, R, R) in [-1, 1]: inputs that need no
    files (examples, quick checks)."""
    from data_prep.builtin import generate

    pictures, _ = generate(n, seed=seed, size=resolution)
    return from_uint8(pictures.transpose(0, 2, 3, 1))
