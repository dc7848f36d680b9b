"""Encoding and decoding in batches, and reconstructions of images (Supp. App. E).

Both run under torch.inference_mode (no autograd bookkeeping): their outputs are for display and metrics, and
cannot be differentiated (clone one outside inference mode to optimise it). `reconstruct_files` reads, encodes and
decodes image files batch by batch, reporting progress and timing its work."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from automod_cli.defaults import RECONSTRUCT_BATCH
from automod_cli.models import Automodulator
from automod_cli.ops.inputs import Inputs, load_inputs, none_usable_error

ProgressCallback = Callable[[str, int, int], None]  # (stage, done, total): drives a progress bar per stage

BATCH_SIZE = RECONSTRUCT_BATCH  # images per forward pass: bounds memory when many exemplars are encoded


def model_device(model: Automodulator) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def encode(model: Automodulator, images: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Latents (N, D) of (N, 3, R, R) images in [-1, 1], on the model's device."""
    device = model_device(model)
    return torch.cat([model.encode(chunk.to(device)) for chunk in images.split(batch_size)])


@torch.inference_mode()
def decode(
    model: Automodulator, latents: torch.Tensor, noise: bool = False, batch_size: int = BATCH_SIZE
) -> torch.Tensor:
    """Images of latents (N, D) or per-block assignments (N, B, D); layer noise only when `noise`."""
    device = model_device(model)
    return torch.cat([model.decode(chunk.to(device), noise=noise) for chunk in latents.split(batch_size)])


def nonfinite_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the model's float weights and buffers that hold NaN or infinite values (a diverged run): such a
    model decodes to NaN, which image files show as black."""
    return [
        name
        for name, t in model.state_dict().items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]


def reconstruct(model: Automodulator, images: torch.Tensor, noise: bool = False) -> torch.Tensor:
    """θ(φ(x)): decode the encoding of each image."""
    return decode(model, encode(model, images), noise)


def side_by_side(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Interleave inputs and reconstructions, (2N, 3, R, R): a grid with 2 columns shows input | reconstruction."""
    return torch.stack([images.to(reconstructions.device), reconstructions], dim=1).flatten(0, 1)


@dataclass
class Reconstructed:
    """What `reconstruct_files` did: the inputs and their reconstructions (on the CPU), the files used and skipped,
    and how long reading, encoding and decoding took."""

    images: torch.Tensor  # (N, 3, R, R) in [-1, 1]
    reconstructions: torch.Tensor
    used: Inputs
    seconds: float

    @property
    def images_per_second(self) -> float:
        return len(self.images) / self.seconds if self.seconds > 0 else float("inf")


def reconstruct_files(
    model: Automodulator,
    inputs: Inputs,
    align: object = False,
    noise: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Optional[ProgressCallback] = None,
) -> Reconstructed:
    """θ(φ(x)) of checked image files, read and reconstructed `batch_size` at a time; files that fail only now (no
    face found with `align`) are skipped with their reason, and AutomodError comes only when none is usable.
    `progress("reconstructing", done, total)` follows the files."""
    began = time.perf_counter()
    images, reconstructions, used, skipped, upscaled = [], [], [], list(inputs.skipped), []
    total = len(inputs.paths)
    for start in range(0, total, batch_size):
        chunk = Inputs(inputs.paths[start : start + batch_size])
        x, loaded = load_inputs(chunk, model.resolution, align, allow_none=True)
        if len(x):
            images.append(x)
            reconstructions.append(reconstruct(model, x, noise).float().cpu())
        used += loaded.paths
        skipped += loaded.skipped
        upscaled += loaded.upscaled
        if progress is not None:
            progress("reconstructing", min(start + batch_size, total), total)
    if not used:
        raise none_usable_error(skipped)
    seconds = time.perf_counter() - began
    return Reconstructed(
        torch.cat(images), torch.cat(reconstructions), Inputs(used, skipped, upscaled), seconds
    )
