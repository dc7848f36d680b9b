"""What a model trained on the built-in data shows at a glance (the end of `make demo`): its held-out reconstruction
error beside the mean image's, its mixing error against the renderer's truth, and one picture of held-out pairs
with A and B next to their reconstructions and the truth next to the model's mix.

The numbers are `automod eval recon-truth` and `automod eval mix-truth` (coarse scales: B's layout in A's colours)
with their default counts: all 1,024 test images, all 512 pairs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from automod_cli.metrics.builtin import ground_truth
from automod_cli.metrics.data import quantize
from automod_cli.models import Automodulator
from automod_cli.ops.figures import captioned_grid

FIGURE_ROWS = 6  # held-out pairs in the picture
COLUMNS = ("A", "A reconstructed", "B", "B reconstructed", "truth", "model's mix")


@dataclass(frozen=True)
class Summary:
    """The numbers the README quotes for a built-in model (MSE on [0, 1] pixels, SSIM)."""

    reconstruction: ground_truth.ReconstructionTruth
    mixing: ground_truth.MixingTruth

    def lines(self) -> list[str]:
        r, m = self.reconstruction, self.mixing
        return [
            f"held-out reconstruction at {r.resolution}² ({r.images:,} test images): MSE {r.reconstruction.mse:.4f}, "
            f"SSIM {r.reconstruction.ssim:.3f}",
            f"  the mean training image: MSE {r.mean_image.mse:.4f}, SSIM {r.mean_image.ssim:.3f}",
            f"mix A B --coarse ({m.pairs} held-out pairs) against the truth, B's layout in A's colours: "
            f"MSE {m.truth.mse:.4f}, SSIM {m.truth.ssim:.3f}",
            f"  against the swapped combination: MSE {m.swapped.mse:.4f}; against A: {m.to_a.mse:.4f}; "
            f"against B: {m.to_b.mse:.4f}",
        ]

    def to_dict(self) -> dict[str, float]:
        r, m = self.reconstruction, self.mixing
        return {
            "resolution": r.resolution,
            "recon_mse": r.reconstruction.mse,
            "recon_ssim": r.reconstruction.ssim,
            "mean_image_mse": r.mean_image.mse,
            "mix_mse": m.truth.mse,
            "mix_ssim": m.truth.ssim,
            "mix_swapped_mse": m.swapped.mse,
        }


def summary(
    model: Automodulator, images: int = ground_truth.TEST_COUNT, pairs: int = ground_truth.MAX_PAIRS
) -> Summary:
    """Reconstruction error of the first `images` test images and mixing error of the first `pairs` test pairs."""
    recon = ground_truth.reconstruction_error(
        ground_truth.model_reconstructor(model), images, model.resolution
    )
    blocks = ground_truth.b_blocks(model)
    mixing = ground_truth.mixing_error(
        ground_truth.model_mixer(model, blocks), ground_truth.truth_pairs(pairs, model.resolution)
    )
    return Summary(recon, mixing)


def figure_cells(model: Automodulator, rows: int = FIGURE_ROWS) -> torch.Tensor:
    """The first `rows` test pairs, one row each, in the order of COLUMNS; generated images quantised as scored:
    (rows · 6, 3, R, R) in [-1, 1]."""
    pairs = ground_truth.truth_pairs(rows, model.resolution)
    a, b = ground_truth.model_input(pairs.images_a), ground_truth.model_input(pairs.images_b)
    reconstruct = ground_truth.model_reconstructor(model)
    with torch.inference_mode():
        made = [
            reconstruct(a),
            reconstruct(b),
            ground_truth.model_mixer(model, ground_truth.b_blocks(model))(a, b),
        ]
    recon_a, recon_b, mixed = (ground_truth.model_input(quantize(x).cpu().numpy()) for x in made)
    columns = [a, recon_a, b, recon_b, ground_truth.model_input(pairs.truth), mixed]
    return torch.stack(columns, dim=1).flatten(0, 1)


def figure(model: Automodulator, result: Summary | None = None, rows: int = FIGURE_ROWS) -> torch.Tensor:
    """The picture: `figure_cells` as a grid under a caption that names the columns (and gives `result`'s numbers);
    (3, H, W) in [-1, 1]."""
    text = (
        "Held-out pairs, one per row: A, its reconstruction, B, its reconstruction, the truth (the renderer's "
        "picture of B's layout in A's colours) and the model's mix (automod mix A B --coarse)."
    )
    if result is not None:
        r, m = result.reconstruction, result.mixing
        text += (
            f"\nReconstruction MSE {r.reconstruction.mse:.4f} (the mean image: {r.mean_image.mse:.4f}); "
            f"mix MSE against the truth {m.truth.mse:.4f} (swapped: {m.swapped.mse:.4f})."
        )
    return captioned_grid(figure_cells(model, rows), len(COLUMNS), text)
