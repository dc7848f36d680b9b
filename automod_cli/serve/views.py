"""What each view of the page shows, and the `automod` command that writes the same picture.

Every view is computed with the `ops` calls, batches and captions of its command (`commands/ops.py`): a pair mix
decodes the two cached codes as `automod mix A B` does; views whose command encodes several images in one batch
(a mix grid, interpolation, exemplars of an edit) encode them here in that batch too, since a batch can round
differently from images encoded one by one. The PNG is what the command writes, pixel for pixel.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional

import torch
from PIL import Image

from automod_cli import ops
from automod_cli.errors import AutomodError
from automod_cli.images import to_uint8
from automod_cli.models.latents import SCALES
from automod_cli.serve.studio import Photo, Studio, command_line

SAMPLE_COLUMNS = 8  # as `automod sample`'s grid
MAX_SAMPLES = 64
MAX_STEPS = 32
MAX_GRID = 12  # photos per side of a mix grid


@dataclass
class View:
    """A picture for the page, the command that writes it, and the file name that command writes."""

    png: bytes
    command: str
    filename: str


def png_bytes(image: torch.Tensor) -> bytes:
    """A (3, H, W) image in [-1, 1] as PNG, written as `images.save_image` writes it."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def scale_flags(spec: str) -> list[str]:
    """`automod mix`'s option for a scale choice: --coarse, --mid, --fine or --layers i:j."""
    return [f"--{spec}"] if spec in SCALES else ["--layers", spec]


def checked_spec(spec: Optional[str]) -> Optional[str]:
    """A scale choice from the page: a named scale or 'i:j' (blocks), or None for all layers."""
    if spec is None or spec in ("", "all"):
        return None
    spec = str(spec).strip().lower()
    start, colon, stop = spec.partition(":")
    if spec in SCALES or (colon and start.strip().isdigit() and stop.strip().isdigit()):
        return spec
    raise AutomodError(f"unknown scales '{spec[:20]}': choose coarse, mid, fine or a block range i:j.")


def _bounded(value: int, low: int, high: int, what: str) -> int:
    if not low <= int(value) <= high:
        raise AutomodError(f"{what} must be between {low} and {high}, not {value}.")
    return int(value)


def _latents(studio: Studio, photos: list[Photo]) -> ops.Latents:
    """The codes of `photos` encoded in one batch, as a command given these files encodes them (`Studio.codes`)."""
    return studio.codes(photos)


def mix(studio: Studio, a: Photo, b: Photo, spec: str) -> View:
    """A with B's `spec` scales: `automod mix A B --coarse` writes this image."""
    net = studio.net
    blocks = ops.scale_range(net, checked_spec(spec) or "coarse", "style mixing")
    image = ops.mix(net, a.z[None], b.z[None], blocks)[0]
    words = [
        "mix",
        a.name,
        b.name,
        *scale_flags(checked_spec(spec) or "coarse"),
        *studio.options([a, b]),
        "-o",
        "mix.png",
    ]
    return View(png_bytes(image), command_line(words), "mix.png")


def mix_grid(studio: Studio, rows: list[Photo], cols: list[Photo], spec: str) -> View:
    """Every A (row) with every B (column): the figure `automod mix --rows A --cols B` writes."""
    net = studio.net
    for group, what in ((rows, "A (rows)"), (cols, "B (columns)")):
        if not 1 <= len(group) <= MAX_GRID:
            raise AutomodError(f"a mix grid takes 1 to {MAX_GRID} photos as {what}, not {len(group)}.")
    spec = checked_spec(spec) or "coarse"
    blocks = ops.scale_range(net, spec, "style mixing")
    z_rows, z_cols = _latents(studio, rows).z, _latents(studio, cols).z
    cells = ops.mix_grid(net, z_rows, z_cols, blocks)
    text = (
        f"Each cell: its row's A with {ops.scale_label(spec, blocks, net.block_levels)} of its column's B. "
        "Top row: B reconstructions; left column: A reconstructions."
    )
    figure = ops.captioned_grid(cells, len(cols) + 1, text)
    words = [
        "mix",
        *[w for p in rows for w in ("--rows", p.name)],
        *[w for p in cols for w in ("--cols", p.name)],
        *scale_flags(spec),
        *studio.options(rows + cols),
        "-o",
        "mix-grid.png",
    ]
    return View(png_bytes(figure), command_line(words), "mix-grid.png")


def reconstruction(studio: Studio, photo: Photo) -> View:
    """Input | reconstruction: the figure `automod reconstruct PHOTO` writes."""
    pairs = ops.side_by_side(photo.image[None], photo.reconstruction[None])
    figure = ops.captioned_grid(pairs, 2, "Pairs of input | reconstruction.")
    words = ["reconstruct", photo.name, *studio.options([photo]), "-o", "reconstructions.png"]
    return View(png_bytes(figure), command_line(words), "reconstructions.png")


@dataclass
class Direction:
    """An attribute direction: a file added to the page (by its name) or two groups of photos."""

    vector: torch.Tensor
    source: str  # as `automod edit` captions it
    words: list[str]  # the command's options that give it
    photos: tuple = ()  # the photos it was built from


def direction_from_file(studio: Studio, name: str, path) -> Direction:
    """A direction file (`automod edit --save-vector`, or a torch-saved tensor such as the authors' deltas)."""
    vector, info = ops.load_vector(path, studio.net.config.latent_dim)
    if "positives" not in info:
        source = f"direction {name}"
    else:
        source = f"vector {name} ({info.get('positives', '?')} with / {info.get('negatives', '?')} without)"
    return Direction(vector, source, ["--direction", name])


def direction_from_photos(studio: Studio, positives: list[Photo], negatives: list[Photo]) -> Direction:
    """Mean code of photos with the attribute minus mean code of photos without it, as `edit --pos --neg`."""
    if not positives or not negatives:
        raise AutomodError(
            "a direction from photos needs at least one photo with the attribute and one without."
        )
    with_it, without_it = _latents(studio, positives).z, _latents(studio, negatives).z
    vector = ops.latent_difference(with_it, without_it)
    words = [w for p in positives for w in ("--pos", p.name)] + [
        w for p in negatives for w in ("--neg", p.name)
    ]
    return Direction(
        vector, f"{len(positives)} with / {len(negatives)} without", words, (*positives, *negatives)
    )


def edit(studio: Studio, photo: Photo, direction: Direction, strength: float, spec: Optional[str]) -> View:
    """The photo and its edit at `strength`: the figure `automod edit PHOTO --strength S` writes."""
    net = studio.net
    if not -10.0 <= float(strength) <= 10.0:
        raise AutomodError(f"the strength must be between -10 and 10, not {strength}.")
    spec = checked_spec(spec)
    blocks = ops.scale_range(net, spec, "editing chosen scales") if spec is not None else None
    latents = _latents(studio, [photo])
    x = ops.input_images(net, latents)
    edited = ops.edit(net, latents.z, direction.vector, [float(strength)], blocks)
    cells = torch.cat([x.to(edited.device), edited])
    where = ops.scale_label(spec, blocks, net.block_levels) if blocks is not None else "all layers"
    text = (
        f"Attribute vector from {direction.source}, on {where}. Columns: input, then strength "
        f"{float(strength):g}."
    )
    figure = ops.captioned_grid(cells, 2, text)
    words = [
        "edit",
        photo.name,
        *direction.words,
        *(["--scales", spec] if spec else []),
        "--strength",
        repr(float(strength)),
        *studio.options([photo, *direction.photos]),
        "-o",
        "edit.png",
    ]
    return View(png_bytes(figure), command_line(words), "edit.png")


@dataclass
class Strip:
    """An interpolation strip: its frames (for the slider) and the figure `automod interpolate` writes."""

    frames: list[bytes]
    view: View


def interpolation(studio: Studio, a: Photo, b: Photo, steps: int, spec: Optional[str]) -> Strip:
    """A strip of `steps` images from A to B along the model's latent paths."""
    net = studio.net
    steps = _bounded(steps, 2, MAX_STEPS, "the number of steps")
    spec = checked_spec(spec)
    blocks = ops.scale_range(net, spec, "interpolating chosen scales") if spec is not None else None
    z = _latents(studio, [a, b]).z
    cells = ops.interpolate(net, z[0], z[1], steps, blocks)
    where = f" on {ops.scale_label(spec, blocks, net.block_levels)}, the rest from {a.name}" if blocks else ""
    text = f"Interpolation between {a.name}, {b.name}{where}; ends are reconstructions."
    figure = ops.captioned_grid(cells, steps, text)
    words = [
        "interpolate",
        a.name,
        b.name,
        "--steps",
        str(steps),
        *(["--scales", spec] if spec else []),
        *studio.options([a, b]),
        "-o",
        "interpolation.png",
    ]
    view = View(png_bytes(figure), command_line(words), "interpolation.png")
    return Strip([png_bytes(cell) for cell in cells], view)


def sample(studio: Studio, n: int, seed: int, fix: Optional[Photo], spec: Optional[str]) -> View:
    """Random samples, or samples that keep a photo's scales: the grid.png `automod sample` writes."""
    net = studio.net
    n = _bounded(n, 1, MAX_SAMPLES, "the number of samples")
    seed = _bounded(seed, 0, 2**31 - 1, "the seed")
    generator = torch.Generator().manual_seed(seed)
    words = ["sample", "--n", str(n)]
    if fix is None:
        if spec not in (None, "", "all"):
            raise AutomodError("scales choose what a kept photo keeps: pick a photo to keep as well.")
        cells, text = ops.sample(net, n, generator), f"{n} random samples (seed {seed})"
    else:
        spec = checked_spec(spec) or "coarse"
        blocks = ops.scale_range(net, spec, "conditional sampling")
        z_fixed = _latents(studio, [fix]).z
        images = ops.conditional_sample(net, z_fixed, blocks, n, generator)
        cells = torch.cat([ops.decode(net, z_fixed), images])
        text = (
            f"First: reconstruction of {fix.name}. The others keep "
            f"{ops.scale_label(spec, blocks, net.block_levels)} with random latents elsewhere (seed {seed})."
        )
        words += ["--fix", fix.name, "--scales", spec]
    figure = ops.captioned_grid(cells, min(SAMPLE_COLUMNS, len(cells)), text)
    words += ["--seed", str(seed), *studio.options([fix] if fix else []), "-o", "samples"]
    return View(png_bytes(figure), command_line(words), "grid.png")
