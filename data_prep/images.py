"""Safe image loading: any file or byte string to an RGB picture, or a reason to skip it.

Every problem a long prep run can meet in one file (not an image, truncated, unreadable, too
small) becomes a `SkipImage` with a short kind for grouping in reports and a detail for the
file list. Grayscale, palette, CMYK, alpha and 16-bit pictures are converted, not skipped.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Kinds of skip, shared by every source so reports group them the same way.
NOT_AN_IMAGE = "not an image"
TRUNCATED = "truncated"
UNREADABLE = "unreadable"
EMPTY = "empty file"
TOO_SMALL = "too small"
NO_FACE = "no face found"
MISSING = "missing"

# Transparent pixels are composited over white so they do not reveal arbitrary colours.
ALPHA_BACKGROUND = (255, 255, 255)


class SkipImage(Exception):
    """One input that cannot become a training image; `kind` groups it in the report."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def load_rgb(source: Path | bytes) -> Image.Image:
    """Decode a whole image file (path or bytes) into an upright RGB picture, or raise SkipImage."""
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise SkipImage(UNREADABLE, exc.strerror or str(exc)) from exc
    else:
        data = source
    if not data:
        raise SkipImage(EMPTY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF and decompression-bomb warnings: the checks below decide
            image = Image.open(io.BytesIO(data))
            image.load()
            image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError as exc:
        raise SkipImage(NOT_AN_IMAGE) from exc
    except Image.DecompressionBombError as exc:
        raise SkipImage(UNREADABLE, "larger than Pillow's decompression-bomb limit") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        kind = TRUNCATED if "truncated" in message.lower() else UNREADABLE
        raise SkipImage(kind, message) from exc
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: alpha over white, 16/32-bit scaled, CMYK and palettes mapped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBa", "La", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
        background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grayscale keeps its top 8 bits; float images are read as 0..1."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        values = values * 255.0
    elif values.max(initial=0) > 255:  # 16-bit range; 8-bit data stored in a wide mode is left alone
        values = values / 257.0
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), "RGB")


def center_crop_square(image: Image.Image) -> Image.Image:
    """The largest centred square (LSUN and folder sources; the paper crops LSUN Cars this way)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def require_size(image: Image.Image, min_size: int) -> None:
    """Skip pictures whose shorter side is below `min_size` (they would need upscaling)."""
    width, height = image.size
    if min(width, height) < min_size:
        raise SkipImage(TOO_SMALL, f"{width}x{height}, shorter side below {min_size}")


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """Resize a square picture to size x size with Lanczos (antialiased when shrinking); HWC uint8."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)
