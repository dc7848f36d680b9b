"""The built-in dataset: a coloured shape standing in a two-tone landscape, generated from a seed (no downloads).

Each image is drawn from known factors of variation, split by the scale at which they act:

- coarse factors move the global layout only: which shape, where, how big, its rotation and aspect ratio, and the
  height and tilt of the horizon that splits the background into sky and ground;
- fine factors change colour and texture only: the shape's, the sky's and the ground's colours, a high-frequency
  stripe or checker texture on the shape (frequency, angle, phase, contrast) and a per-pixel grain.

`render(combine(a, b))` therefore draws a's layout in b's colours: the ground truth for style mixing, where the
decoder's coarse layers (4²–8²) should carry layout and its fine layers (64²) colour and texture (NeurIPS Sec. 4).
Silhouettes are rendered at 2× supersampling with an antialiased edge and box-downscaled; the texture is
box-prefiltered analytically, so it fades out instead of aliasing at low resolution (its period is 2.7–5.3 pixels
at 64², so it lives at the fine scale). The geometry is in `layout_masks`, which sees the coarse factors only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from automod_cli.errors import AutomodError
from data_prep.builtin_shapes import SHAPE_KINDS, shape_distance

NATIVE_SIZE = 64
MAX_RENDER_SIZE = 1024
SUPERSAMPLE = 2  # silhouettes are drawn at 2× and box-downscaled
CHUNK_PIXELS = 64 * 128 * 128  # supersampled pixels rendered at a time (about 20 MB of working memory)

COARSE_FACTORS: tuple[str, ...] = (
    "shape_kind",  # index into SHAPE_KINDS
    "center_x",  # shape centre, fraction of the width from the left edge
    "center_y",  # fraction of the height from the top edge
    "size",  # shape radius, fraction of the width
    "rotation",  # radians
    "aspect",  # stretch along the shape's own x axis over its y axis (area kept)
    "horizon_height",  # where the horizon crosses the vertical centre line, fraction of the height from the top
    "horizon_tilt",  # radians; positive tilts the horizon down to the right
)
FINE_FACTORS: tuple[str, ...] = (
    "shape_hue",
    "shape_saturation",
    "shape_value",
    "sky_hue",
    "sky_saturation",
    "sky_value",
    "ground_hue",
    "ground_saturation",
    "ground_value",
    "texture_kind",  # index into TEXTURE_KINDS
    "texture_frequency",  # cycles per image width
    "texture_angle",  # radians, direction of the texture's wave vector
    "texture_phase",  # radians, relative to the shape's centre
    "texture_contrast",  # relative brightness swing of the texture
    "grain_amplitude",  # half-width of the uniform grain (one value per output pixel), in [0, 1] intensity units
    "grain_seed",  # integer that picks the grain pattern
)
TEXTURE_KINDS = ("stripes", "checker")

# Discrete factors: number of levels, sampled uniformly and stored as float indices.
_LEVELS = {"shape_kind": len(SHAPE_KINDS), "texture_kind": len(TEXTURE_KINDS), "grain_seed": 2**31}
# Continuous factors: uniform on [low, high). Shapes are saturated and bright, skies pale and bright, grounds dark,
# so the silhouette and the horizon stay visible in every combination of colours.
_RANGES = {
    "center_x": (0.3, 0.7),
    "center_y": (0.3, 0.7),
    "size": (0.14, 0.24),
    "rotation": (0.0, 2 * np.pi),
    "aspect": (0.7, 1.4),
    "horizon_height": (0.3, 0.75),
    "horizon_tilt": (-0.35, 0.35),
    "shape_hue": (0.0, 1.0),
    "shape_saturation": (0.6, 1.0),
    "shape_value": (0.65, 1.0),
    "sky_hue": (0.0, 1.0),
    "sky_saturation": (0.05, 0.35),
    "sky_value": (0.7, 0.97),
    "ground_hue": (0.0, 1.0),
    "ground_saturation": (0.3, 0.7),
    "ground_value": (0.15, 0.45),
    "texture_frequency": (12.0, 24.0),
    "texture_angle": (0.0, np.pi),
    "texture_phase": (0.0, 2 * np.pi),
    "texture_contrast": (0.12, 0.35),
    "grain_amplitude": (0.0, 0.06),
}

# Documented splits: (seed, number of images). Different seeds, so train and test share no image.
SPLITS: dict[str, tuple[int, int]] = {"train": (20200, 8192), "test": (20201, 1024)}


@dataclass(frozen=True)
class Factors:
    """A batch of factor values: row i of `coarse` and of `fine` describe image i (columns as COARSE/FINE_FACTORS)."""

    coarse: np.ndarray
    fine: np.ndarray

    def __post_init__(self) -> None:
        coarse = np.asarray(self.coarse, dtype=np.float64)
        fine = np.asarray(self.fine, dtype=np.float64)
        if coarse.ndim != 2 or coarse.shape[1] != len(COARSE_FACTORS):
            raise AutomodError(
                f"coarse factors must have shape (N, {len(COARSE_FACTORS)}), got {coarse.shape}."
            )
        if fine.ndim != 2 or fine.shape[1] != len(FINE_FACTORS):
            raise AutomodError(f"fine factors must have shape (N, {len(FINE_FACTORS)}), got {fine.shape}.")
        if len(coarse) != len(fine):
            raise AutomodError(
                f"coarse and fine factors must describe as many images, got {len(coarse)} and {len(fine)}."
            )
        object.__setattr__(self, "coarse", coarse)
        object.__setattr__(self, "fine", fine)

    def __len__(self) -> int:
        return len(self.coarse)

    def __getitem__(self, idx) -> "Factors":
        if isinstance(idx, (int, np.integer)):
            idx = [idx]
        return Factors(self.coarse[idx], self.fine[idx])

    def column(self, name: str) -> np.ndarray:
        """The values of one named factor, shape (N,)."""
        if name in COARSE_FACTORS:
            return self.coarse[:, COARSE_FACTORS.index(name)]
        if name in FINE_FACTORS:
            return self.fine[:, FINE_FACTORS.index(name)]
        raise AutomodError(
            f"unknown factor '{name}': choose one of {', '.join(COARSE_FACTORS + FINE_FACTORS)}."
        )


def _check_count(n: int, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise AutomodError(f"{what} must be a positive whole number of images, got {n!r}.")
    return int(n)


def sample_factors(n: int, seed: int) -> Factors:
    """Draw n independent factor rows from `seed`; the first k rows do not depend on n (prefix-stable)."""
    n = _check_count(n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise AutomodError(f"seed must be a non-negative whole number, got {seed!r}.")
    names = COARSE_FACTORS + FINE_FACTORS
    # One row of uniforms per image, drawn row by row, so image i is the same whatever n is.
    uniform = np.random.default_rng(seed).random((n, len(names)))
    values = np.empty_like(uniform)
    for column, name in enumerate(names):
        if name in _LEVELS:
            values[:, column] = np.floor(uniform[:, column] * _LEVELS[name])
        else:
            low, high = _RANGES[name]
            values[:, column] = low + (high - low) * uniform[:, column]
    return Factors(values[:, : len(COARSE_FACTORS)], values[:, len(COARSE_FACTORS) :])


def combine(coarse_from: Factors, fine_from: Factors) -> Factors:
    """Layout of `coarse_from`, colours and texture of `fine_from`; a batch of one is repeated to the other's length."""
    n_coarse, n_fine = len(coarse_from), len(fine_from)
    if n_coarse != n_fine and 1 not in (n_coarse, n_fine):
        raise AutomodError(
            f"cannot combine {n_coarse} layouts with {n_fine} colourings: give equal counts or one of either."
        )
    n = max(n_coarse, n_fine)
    return Factors(
        np.repeat(coarse_from.coarse, n // n_coarse, axis=0), np.repeat(fine_from.fine, n // n_fine, axis=0)
    )


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 4 <= size <= MAX_RENDER_SIZE:
        raise AutomodError(
            f"image size must be a whole number of pixels from 4 to {MAX_RENDER_SIZE}, got {size!r}."
        )
    return int(size)


def _pixel_centres(size: int) -> np.ndarray:
    return (np.arange(size, dtype=np.float32) + np.float32(0.5)) / np.float32(size)


def _chunks(n: int, size: int) -> list[slice]:
    """Consecutive batches of images small enough to render at once (64 at a time at 64²)."""
    step = max(1, CHUNK_PIXELS // (size * SUPERSAMPLE) ** 2)
    return [slice(start, start + step) for start in range(0, n, step)]


def _box_reduce(x: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor×factor blocks of the last two axes (factor a power of two), 2×2 at a time."""
    while factor > 1:
        pairs = x[..., 0::2] + x[..., 1::2]
        x = (pairs[..., 0::2, :] + pairs[..., 1::2, :]) * np.float32(0.25)
        factor //= 2
    return x


def _layout_chunk(coarse: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shape and sky coverage in [0, 1] of a few images, shape (n, size, size) each."""
    fine_size = size * SUPERSAMPLE
    t = _pixel_centres(fine_size)
    x, y = t[None, None, :], t[None, :, None]
    col = {name: coarse[:, i].astype(np.float32)[:, None, None] for i, name in enumerate(COARSE_FACTORS)}
    # Coverage = a one-pixel linear ramp across the edge: clip(0.5 − signed distance in pixels), then the box filter.
    # Horizon: signed distance to the line through (0.5, horizon_height) at angle horizon_tilt; sky lies above it.
    tilt = col["horizon_tilt"]
    sky = (0.5 - fine_size * np.cos(tilt) * (y - col["horizon_height"])) + fine_size * np.sin(tilt) * (
        x - 0.5
    )
    np.clip(sky, 0.0, 1.0, out=sky)
    # Shape: rotate and stretch the pixel grid into the shape's own frame, where its radius is 1.
    dx, dy = x - col["center_x"], y - col["center_y"]
    cos_r, sin_r = np.cos(col["rotation"]), np.sin(col["rotation"])
    stretch = np.sqrt(col["aspect"])
    u = (cos_r / (col["size"] * stretch)) * dx + (sin_r / (col["size"] * stretch)) * dy
    v = (cos_r * stretch / col["size"]) * dy - (sin_r * stretch / col["size"]) * dx
    shape = np.empty(u.shape, dtype=np.float32)
    kinds = coarse[:, 0].astype(int)
    for kind in np.unique(kinds):
        rows = np.flatnonzero(kinds == kind)
        # distances are in shape units: the radius `size` converts them to image widths, fine_size to pixels
        shape[rows] = 0.5 - shape_distance(int(kind), u[rows], v[rows]) * (col["size"][rows] * fine_size)
    np.clip(shape, 0.0, 1.0, out=shape)
    return _box_reduce(shape, SUPERSAMPLE), _box_reduce(sky, SUPERSAMPLE)


def layout_masks(coarse: np.ndarray, size: int = NATIVE_SIZE) -> np.ndarray:
    """The geometry alone: coverage of the shape (channel 0) and of the sky (channel 1), float32 (N, 2, size, size).

    Takes only coarse factors (an (N, len(COARSE_FACTORS)) array), so fine factors cannot move anything.
    """
    size = _check_size(size)
    coarse = Factors(coarse, np.zeros((len(coarse), len(FINE_FACTORS)))).coarse
    out = np.empty((len(coarse), 2, size, size), dtype=np.float32)
    for rows in _chunks(len(coarse), size):
        out[rows, 0], out[rows, 1] = _layout_chunk(coarse[rows], size)
    return out


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """(N,) HSV in [0, 1] → (N, 3) RGB in [0, 1] (the standard hexcone model)."""
    sector = hue * 6.0
    channel_offsets = np.array([5.0, 3.0, 1.0])  # R, G, B
    k = (channel_offsets[None, :] + sector[:, None]) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return value[:, None] - (value * saturation)[:, None] * ramp


def _filtered_wave(
    dx: np.ndarray, dy: np.ndarray, kx: np.ndarray, ky: np.ndarray, phase: np.ndarray, pixel: float
):
    """cos(2π k·d + phase) averaged over a square pixel of side `pixel`: the box filter scales it by sinc·sinc."""
    gain = np.sinc(kx * pixel) * np.sinc(ky * pixel)
    return gain * np.cos(2 * np.pi * (kx * dx + ky * dy) + phase)


def _texture_chunk(coarse: np.ndarray, fine: np.ndarray, size: int) -> np.ndarray:
    """Zero-mean texture in [-1, 1] anchored at the shape centre, prefiltered for `size` pixels, (n, size, size)."""
    t = _pixel_centres(size)
    dx = t[None, None, :] - coarse[:, 1, None, None].astype(np.float32)
    dy = t[None, :, None] - coarse[:, 2, None, None].astype(np.float32)
    f = {name: fine[:, i, None, None].astype(np.float32) for i, name in enumerate(FINE_FACTORS)}
    frequency, angle, phase = f["texture_frequency"], f["texture_angle"], f["texture_phase"]
    kx, ky = frequency * np.cos(angle), frequency * np.sin(angle)
    pixel = 1.0 / size
    texture = np.empty((len(coarse), size, size), dtype=np.float32)
    stripes = np.flatnonzero(f["texture_kind"][:, 0, 0] == TEXTURE_KINDS.index("stripes"))
    texture[stripes] = _filtered_wave(
        dx[stripes], dy[stripes], kx[stripes], ky[stripes], phase[stripes], pixel
    )
    # checker = sin(a)·sin(b) for perpendicular waves a, b of frequency f/√2 = ½[cos(a − b) − cos(a + b)]:
    # two plane waves of frequency f along the diagonals, each prefiltered on its own.
    checker = np.flatnonzero(f["texture_kind"][:, 0, 0] == TEXTURE_KINDS.index("checker"))
    a_x, a_y = kx[checker] / np.sqrt(2), ky[checker] / np.sqrt(2)
    dx, dy, phase = dx[checker], dy[checker], phase[checker]
    difference = _filtered_wave(dx, dy, a_x + a_y, a_y - a_x, 0.0, pixel)
    texture[checker] = 0.5 * (difference - _filtered_wave(dx, dy, a_x - a_y, a_y + a_x, 2 * phase, pixel))
    return texture


def _grain(seeds: np.ndarray, size: int) -> np.ndarray:
    """Uniform noise in [-1, 1], one value per pixel, from a counter-based hash of (seed, pixel index)."""
    index = np.arange(size * size, dtype=np.uint64)[None, :]
    state = seeds.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15) + index
    # SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective mix of the 64-bit counter.
    state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    state = state ^ (state >> np.uint64(31))
    unit = (state >> np.uint64(40)).astype(np.float32) / np.float32(2**24)
    return (2.0 * unit - 1.0).reshape(-1, size, size)


def _render_chunk(coarse: np.ndarray, fine: np.ndarray, size: int) -> np.ndarray:
    shape, sky = _layout_chunk(coarse, size)
    f = {name: fine[:, i] for i, name in enumerate(FINE_FACTORS)}
    shape_rgb = _hsv_to_rgb(f["shape_hue"], f["shape_saturation"], f["shape_value"]).astype(np.float32)
    sky_rgb = _hsv_to_rgb(f["sky_hue"], f["sky_saturation"], f["sky_value"]).astype(np.float32)
    ground_rgb = _hsv_to_rgb(f["ground_hue"], f["ground_saturation"], f["ground_value"]).astype(np.float32)
    contrast = f["texture_contrast"].astype(np.float32)[:, None, None]
    brightness = 1.0 + contrast * _texture_chunk(coarse, fine, size)  # (n, H, W)
    shape, sky, brightness = shape[:, None], sky[:, None], brightness[:, None]
    background = sky * sky_rgb[:, :, None, None] + (1.0 - sky) * ground_rgb[:, :, None, None]
    image = shape * (shape_rgb[:, :, None, None] * brightness) + (1.0 - shape) * background
    image += (
        f["grain_amplitude"].astype(np.float32)[:, None, None, None] * _grain(f["grain_seed"], size)[:, None]
    )
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def render(factors: Factors, size: int = NATIVE_SIZE) -> np.ndarray:
    """Draw every row of `factors`: uint8 RGB images, shape (N, 3, size, size)."""
    size = _check_size(size)
    out = np.empty((len(factors), 3, size, size), dtype=np.uint8)
    for rows in _chunks(len(factors), size):
        out[rows] = _render_chunk(factors.coarse[rows], factors.fine[rows], size)
    return out


def generate(n: int, seed: int = 0, size: int = NATIVE_SIZE) -> tuple[np.ndarray, Factors]:
    """n images drawn from `seed` and the factors they were drawn from."""
    factors = sample_factors(n, seed)
    return render(factors, size), factors


def downscale(images: np.ndarray, resolution: int) -> np.ndarray:
    """Box-filter uint8 NCHW square images down by a power of two, rounding to nearest (ties up).

    Equal to averaging 2×2 blocks repeatedly and rounding once at the end.
    """
    size = images.shape[-1]
    if images.ndim != 4 or images.shape[-2] != size or images.dtype != np.uint8:
        raise AutomodError(
            f"downscale takes uint8 images of shape (N, C, S, S), got {images.dtype} {images.shape}."
        )
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, np.integer))
        or resolution < 1
        or size % resolution
    ):
        raise AutomodError(
            f"cannot box-downscale {size}×{size} images to {resolution!r}: give a power-of-two "
            f"divisor of {size}."
        )
    factor = size // resolution
    if factor & (factor - 1):
        raise AutomodError(
            f"{size}/{resolution} is not a power of two: give a resolution of {size} halved some times."
        )
    if factor == 1:
        return images.copy()
    n, c = images.shape[:2]
    sums = images.reshape(n, c, resolution, factor, resolution, factor).sum(axis=(3, 5), dtype=np.uint32)
    area = factor * factor
    return ((sums + area // 2) // area).astype(np.uint8)


def bilinear_downscale(images: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 NCHW square images shrunk to `resolution` as the authors' loader shrinks them: PIL's bilinear filter,
    after a 2× bilinear upscale (their pipeline enlarges the source before its final resize)."""
    out = np.empty((*images.shape[:2], resolution, resolution), dtype=np.uint8)
    for k, image in enumerate(images):
        picture = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)))
        large = picture.resize((2 * image.shape[2], 2 * image.shape[1]), Image.BILINEAR)
        out[k] = np.asarray(large.resize((resolution, resolution), Image.BILINEAR)).transpose(2, 0, 1)
    return out


# how BuiltinDataset shrinks its renders (config.Recipe.real_downscale)
DOWNSCALES = {"area": downscale, "bilinear": bilinear_downscale}


def _check_resolution(resolution: int) -> int:
    valid = [4 * 2**k for k in range((NATIVE_SIZE // 4).bit_length())]
    if resolution not in valid or isinstance(resolution, bool):
        raise AutomodError(
            f"resolution must be one of {', '.join(map(str, valid))} for the built-in dataset, got "
            f"{resolution!r}."
        )
    return int(resolution)


class BuiltinDataset(Dataset):
    """Images of one split held in memory as uint8 (12 kB each at 64²), served as float32 CHW tensors in [-1, 1]
    at the current resolution (4..64, power of two), each pixel box-averaged from the 64² render (`resample`
    "area"), or shrunk as the authors' loader shrinks images ("bilinear", `bilinear_downscale`).

    `count` images (default: the split's documented size) are the first ones of the split's seed, so a smaller
    count is a prefix of the full split. With `mirror`, each image is flipped horizontally with probability 1/2,
    drawn from torch's RNG (so DataLoader worker seeding applies).
    """

    def __init__(
        self,
        split: str = "train",
        resolution: int = NATIVE_SIZE,
        mirror: bool = False,
        count: int | None = None,
        resample: str = "area",
    ):
        if resample not in DOWNSCALES:
            raise AutomodError(
                f"unknown resampling '{resample}' for the built-in dataset: choose {' or '.join(DOWNSCALES)}."
            )
        self.shrink = DOWNSCALES[resample]
        if split not in SPLITS:
            raise AutomodError(
                f"unknown split '{split}' of the built-in dataset: choose one of {', '.join(SPLITS)}."
            )
        seed, default_count = SPLITS[split]
        count = default_count if count is None else _check_count(count, "count")
        self.split, self.mirror = split, mirror
        self.native, self.factors = generate(count, seed, NATIVE_SIZE)
        self.set_resolution(resolution)

    def set_resolution(self, resolution: int) -> None:
        """Serve images at `resolution` from now on (progressive training calls this at each phase change)."""
        self.resolution = _check_resolution(resolution)
        self.images = (
            self.native if self.resolution == NATIVE_SIZE else self.shrink(self.native, self.resolution)
        )

    def __len__(self) -> int:
        return len(self.native)

    def __getitem__(self, i) -> torch.Tensor:
        image = torch.from_numpy(self.images[i]).to(torch.float32) / 127.5 - 1.0
        if self.mirror and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image
