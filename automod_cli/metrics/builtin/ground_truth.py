"""Scores against the built-in dataset's ground truth: style mixing and reconstruction of held-out images.

The built-in renderer knows every image's factors (`data_prep/builtin.py`), so the right answer to a style mix is
known. The model's mix follows `automod mix A B --coarse`: A's latent drives every block but the chosen ones
(coarse by default: 4²–8², NeurIPS Sec. 4), which B's latent drives. The renderer splits its factors in two:
coarse factors (the layout), which the decoder's layout blocks (4²–8², `LAYOUT_SCALE`) should carry, and fine
factors (colours and texture), which the blocks above them should carry. Block 0 (4²) always carries layout, so
the truth is the layout of whoever drives block 0 in the colours of the other (`truth_for`): with B's blocks
including block 0 (the default, coarse), `render(combine(B, A))`, B's layout in A's colours; otherwise
`render(combine(A, B))`, A's layout in B's colours. The truth is exact when B's blocks are the layout blocks or all
the blocks above them; a range that splits either group between A and B has no exact truth (`Truth.exact`).

Each mix is scored against four images, so a number comes with its floor and its ceiling:

- the truth (0 MSE / SSIM 1 for a perfect mixer);
- the swapped combination, the other layout in the other colours: what a mixer with the scales the wrong way
  round would draw;
- A and B themselves: a mixer that ignores one of its inputs is as close to one of them as to the truth.

Pairs are held-out images: pair i is images 2i and 2i+1 of the test split (seed `SPLITS["test"]`), rendered at
64² and box-downscaled to the model's resolution exactly as the training data is. Generated images are
quantised to uint8 as an image file would store them; MSE and SSIM are computed on [0, 1] intensities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from automod_cli.defaults import MIX_TRUTH_SCALES
from automod_cli.errors import AutomodError
from automod_cli.metrics.data import quantize
from automod_cli.features.ssim import WINDOW, ssim
from automod_cli.models import Automodulator
from automod_cli.ops.mixing import mix
from automod_cli.ops.reconstruct import ProgressCallback
from automod_cli.models.latents import scale_blocks
from automod_cli.ops.scales import scale_range
from automod_cli.ops.reconstruct import encode, reconstruct
from data_prep.builtin import NATIVE_SIZE, SPLITS, Factors, combine, downscale, render, sample_factors

Mixer = Callable[
    [torch.Tensor, torch.Tensor], torch.Tensor
]  # images A, images B → mixes, (N, 3, R, R) in [-1, 1]
Reconstructor = Callable[[torch.Tensor], torch.Tensor]  # images → reconstructions, (N, 3, R, R) in [-1, 1]

TEST_SEED, TEST_COUNT = SPLITS["test"]
MAX_PAIRS = TEST_COUNT // 2  # disjoint pairs of the documented test split
MEAN_IMAGE_COUNT = 2048  # training images averaged into the mean-image baseline
DEFAULT_BATCH = 32
DEFAULT_SCALES = MIX_TRUTH_SCALES  # B's blocks in the mix: the layout the truth takes from B
LAYOUT_SCALE = "coarse"  # the blocks that should carry the renderer's coarse factors (the layout): 4²–8²


def check_resolution(resolution: int) -> int:
    """The resolutions these scores are defined at: rendered at 64² at most, SSIM's window needs at least 16²."""
    valid = [r for r in (4, 8, 16, 32, 64) if r >= WINDOW]
    if resolution not in valid:
        raise AutomodError(
            f"ground-truth scores need a model at {', '.join(map(str, valid))} pixels (the built-in "
            f"data is drawn up to {NATIVE_SIZE}² and SSIM uses an {WINDOW}×{WINDOW} window), got "
            f"{resolution}."
        )
    return resolution


def builtin_at(factors: Factors, resolution: int) -> np.ndarray:
    """The images of `factors` as the training data shows them: rendered at 64², box-downscaled; uint8 NCHW."""
    return downscale(render(factors, NATIVE_SIZE), resolution)


def _unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images as float64 in [0, 1]."""
    return torch.as_tensor(images).to(torch.float64) / 255.0


@dataclass(frozen=True)
class Scores:
    """Mean and standard deviation over images of the pixel MSE and of the SSIM (both on [0, 1] intensities)."""

    mse: float
    mse_std: float
    ssim: float
    ssim_std: float

    @classmethod
    def of(cls, mse_values: torch.Tensor, ssim_values: torch.Tensor) -> "Scores":
        spread = (lambda v: float(v.std())) if len(mse_values) > 1 else (lambda v: 0.0)
        return cls(
            float(mse_values.mean()), spread(mse_values), float(ssim_values.mean()), spread(ssim_values)
        )


def per_image_scores(images: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSE, SSIM) of each image against its reference, both (N, C, H, W) in [0, 1]; two (N,) float64 tensors."""
    images, reference = images.to(torch.float64), reference.to(torch.float64)
    return (images - reference).pow(2).mean(dim=(1, 2, 3)), ssim(images, reference)


@dataclass(frozen=True)
class Truth:
    """Which combination of A's and B's factors is the right answer to a mix in which B drives some blocks."""

    layout_from: str  # "A" or "B": whoever drives block 0 (4²), which always carries the layout
    split: str | None = None  # "layout" or "colour": the group of blocks that A and B share; None: neither

    @property
    def exact(self) -> bool:
        """B drives all the layout blocks and nothing else, or all the others and nothing else."""
        return self.split is None

    @property
    def colours_from(self) -> str:
        return "A" if self.layout_from == "B" else "B"

    @property
    def label(self) -> str:
        """E.g. 'B's layout in A's colours'."""
        return f"{self.layout_from}'s layout in {self.colours_from}'s colours"

    @property
    def swapped_label(self) -> str:
        return f"{self.colours_from}'s layout in {self.layout_from}'s colours"


def truth_of(blocks: range, layout_blocks: range, num_blocks: int) -> Truth:
    """The truth of a mix in which B drives `blocks` of `num_blocks`, `layout_blocks` (starting at block 0) being
    those that should carry the layout: the layout of whoever drives block 0, the colours of the other."""
    b_blocks, layout = set(blocks), set(layout_blocks)
    colour = set(range(num_blocks)) - layout
    shared = [
        name
        for name, group in (("layout", layout), ("colour", colour))
        if b_blocks & group != group and b_blocks & group
    ]
    return Truth("B" if 0 in b_blocks else "A", shared[0] if shared else None)


def truth_for(model: Automodulator, blocks: range) -> Truth:
    """The truth of `model`'s mix in which B drives `blocks` (its layout blocks: 4²–8² by resolution)."""
    layout = scale_blocks(LAYOUT_SCALE, model.num_active_blocks, model.block_levels)
    return truth_of(blocks, layout, model.num_active_blocks)


@dataclass(frozen=True)
class TruthPairs:
    """Held-out pairs (A, B) with their factors and the images a mixer is compared with, uint8 (N, 3, R, R)."""

    a: Factors
    b: Factors
    images_a: np.ndarray
    images_b: np.ndarray
    truth: (
        np.ndarray
    )  # layout_from "B": render(combine(B, A)), B's layout in A's colours (`automod mix A B --coarse`)
    swapped: (
        np.ndarray
    )  # the other combination: layout_from "B": render(combine(A, B)), A's layout in B's colours
    resolution: int
    layout_from: str = "B"  # whose layout the truth has (`Truth.layout_from`)

    def __len__(self) -> int:
        return len(self.a)


def truth_pairs(n: int, resolution: int, layout_from: str = "B") -> TruthPairs:
    """The first `n` pairs of the test split (pair i: images 2i and 2i+1), drawn at `resolution`; the truth has
    `layout_from`'s layout ("A" or "B") in the other's colours."""
    check_resolution(resolution)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PAIRS:
        raise AutomodError(
            f"the built-in test split holds {MAX_PAIRS} disjoint pairs: ask for 1 to {MAX_PAIRS}, got {n!r}."
        )
    if layout_from not in ("A", "B"):
        raise AutomodError(f"the truth takes its layout from A or B, got {layout_from!r}.")
    factors = sample_factors(2 * n, TEST_SEED)  # prefix-stable: the first 2n images of the test split
    a, b = factors[np.arange(0, 2 * n, 2)], factors[np.arange(1, 2 * n, 2)]
    b_layout, a_layout = builtin_at(combine(b, a), resolution), builtin_at(combine(a, b), resolution)
    truth, swapped = (b_layout, a_layout) if layout_from == "B" else (a_layout, b_layout)
    return TruthPairs(
        a, b, builtin_at(a, resolution), builtin_at(b, resolution), truth, swapped, resolution, layout_from
    )


@dataclass(frozen=True)
class MixingTruth:
    """Scores of a mixer's images against the truth and against the three wrong answers."""

    truth: Scores
    swapped: Scores
    to_a: Scores
    to_b: Scores
    pairs: int
    resolution: int

    def rows(self) -> dict[str, Scores]:
        """The four comparisons by name, the truth first."""
        return {"truth": self.truth, "swapped": self.swapped, "a": self.to_a, "b": self.to_b}


def mixing_error(
    mixer: Mixer, pairs: TruthPairs, batch_size: int = DEFAULT_BATCH, progress: ProgressCallback | None = None
) -> MixingTruth:
    """Call `mixer` on the pairs batch by batch and score its quantised images against the four references."""
    references = {"truth": pairs.truth, "swapped": pairs.swapped, "a": pairs.images_a, "b": pairs.images_b}
    values: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {name: [] for name in references}
    for start in range(0, len(pairs), batch_size):
        rows = slice(start, start + batch_size)
        with torch.inference_mode():
            mixed = mixer(model_input(pairs.images_a[rows]), model_input(pairs.images_b[rows]))
        mixed = _unit(quantize(mixed).cpu())
        for name, reference in references.items():
            values[name].append(per_image_scores(mixed, _unit(reference[rows])))
        if progress is not None:
            progress("mixes", min(start + batch_size, len(pairs)), len(pairs))
    scores = {name: _gather(parts) for name, parts in values.items()}
    return MixingTruth(
        scores["truth"], scores["swapped"], scores["a"], scores["b"], len(pairs), pairs.resolution
    )


GRID_COLUMNS = ("A", "B", "mix", "truth", "swapped")  # one row per pair in `mixing_grid`


def mixing_grid(mixer: Mixer, pairs: TruthPairs, rows: int = 8) -> torch.Tensor:
    """The first `rows` pairs as grid cells, row by row: A, B, the mixer's image (quantised as scored), the truth
    and the swapped combination; (rows · 5, 3, R, R) in [-1, 1] for `images.make_grid` with 5 columns."""
    rows = min(rows, len(pairs))
    with torch.inference_mode():
        mixed = mixer(model_input(pairs.images_a[:rows]), model_input(pairs.images_b[:rows]))
    mixed = model_input(quantize(mixed).cpu().numpy())
    columns = [
        model_input(pairs.images_a[:rows]),
        model_input(pairs.images_b[:rows]),
        mixed,
        model_input(pairs.truth[:rows]),
        model_input(pairs.swapped[:rows]),
    ]
    return torch.stack(columns, dim=1).flatten(0, 1)


def _gather(parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Scores:
    return Scores.of(torch.cat([mse for mse, _ in parts]), torch.cat([s for _, s in parts]))


def model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 3, R, R) → float32 in [-1, 1], the model's input range (as `BuiltinDataset` serves them)."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32) / 127.5 - 1.0


def b_blocks(model: Automodulator, scales: str = DEFAULT_SCALES) -> range:
    """The blocks B's latent drives: `--scales` (coarse, mid, fine or i:j) of `model`."""
    return scale_range(model, scales, "the ground-truth mixing error")


def model_mixer(model: Automodulator, blocks: range) -> Mixer:
    """The model's style mix as `automod mix A B` draws it: φ(B) drives `blocks`, φ(A) every other block (layer
    noise off)."""

    def mixer(images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        z_a, z_b = encode(model, images_a), encode(model, images_b)
        return mix(model, z_a, z_b, blocks)  # mix(base, other, blocks): `other` drives `blocks`

    return mixer


@dataclass(frozen=True)
class ReconstructionTruth:
    """Scores of reconstructions of held-out images, and of the training set's mean image as a baseline."""

    reconstruction: Scores
    mean_image: Scores
    images: int
    resolution: int


def mean_image(resolution: int, count: int = MEAN_IMAGE_COUNT) -> torch.Tensor:
    """The pixel-wise mean of the first `count` training images at `resolution`, (3, R, R) float64 in [0, 1]."""
    images = builtin_at(sample_factors(count, SPLITS["train"][0]), resolution)
    return _unit(images).mean(dim=0)


def reconstruction_error(
    reconstructor: Reconstructor,
    n: int,
    resolution: int,
    batch_size: int = DEFAULT_BATCH,
    mean_count: int = MEAN_IMAGE_COUNT,
    progress: ProgressCallback | None = None,
) -> ReconstructionTruth:
    """MSE and SSIM of the first `n` test images' reconstructions, and of the mean image, against the images."""
    check_resolution(resolution)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= TEST_COUNT:
        raise AutomodError(
            f"the built-in test split holds {TEST_COUNT} images: ask for 1 to {TEST_COUNT}, got {n!r}."
        )
    images = builtin_at(sample_factors(n, TEST_SEED), resolution)
    average = mean_image(resolution, mean_count)
    recon_parts, mean_parts = [], []
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        with torch.inference_mode():
            recon = _unit(quantize(reconstructor(model_input(batch))).cpu())
        recon_parts.append(per_image_scores(recon, _unit(batch)))
        mean_parts.append(per_image_scores(average.expand(len(batch), -1, -1, -1), _unit(batch)))
        if progress is not None:
            progress("reconstructions", min(start + batch_size, n), n)
    return ReconstructionTruth(_gather(recon_parts), _gather(mean_parts), n, resolution)


def model_reconstructor(model: Automodulator) -> Reconstructor:
    """θ(φ(x)) with layer noise off."""
    return lambda images: reconstruct(model, images)
