"""LPIPS between unseen test images and their reconstructions (NeurIPS Table 2a, Supp. App. A).

Protocol: every test image is encoded and decoded (EMA decoder, layer noise off: a reconstruction is a
deterministic function of the input), input and reconstruction are cropped to the same window (the face
window, 128×128 of a 256² image, by default) and compared with LPIPS; the result is the mean over images.
The supplement uses the 10k FFHQ test images; `n` takes the first n of the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from automod_cli.features.crop import crop
from automod_cli.metrics.data import EvalData, image_batches
from automod_cli.features.nets import DistanceNet
from automod_cli.models import Automodulator
from automod_cli.ops.reconstruct import ProgressCallback

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class ReconstructionResult:
    lpips: float  # mean over images
    std: float  # standard deviation over images
    images: int
    data: str
    crop: str


def reconstruct(model: Automodulator, images: torch.Tensor) -> torch.Tensor:
    """θ(φ(x)) without layer noise, clamped to the image range."""
    return model.decode(model.encode(images), noise=False).clamp(-1, 1)


def reconstruction_distances(
    model: Automodulator,
    data: EvalData,
    distance: DistanceNet,
    n: int | None = None,
    crop_mode: str = "face",
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    """The distance of each of the first `n` test images (all when None) to its reconstruction, on the CPU."""
    device = next(model.parameters()).device
    total = len(data) if n is None else n
    values = []
    with torch.inference_mode():
        for batch in image_batches(data, total, batch_size):
            batch = batch.to(device)
            values.append(
                distance(crop(batch, crop_mode), crop(reconstruct(model, batch), crop_mode)).float().cpu()
            )
            if progress is not None:
                progress("reconstructions", sum(len(v) for v in values), total)
    return torch.cat(values)


def reconstruction_lpips(
    model: Automodulator,
    data: EvalData,
    distance: DistanceNet,
    n: int | None = None,
    crop_mode: str = "face",
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> ReconstructionResult:
    """Mean LPIPS between test images and their reconstructions."""
    values = reconstruction_distances(model, data, distance, n, crop_mode, batch_size, progress).double()
    std = float(values.std()) if len(values) > 1 else 0.0
    return ReconstructionResult(float(values.mean()), std, len(values), data.label, crop_mode)
