"""Encoding and decoding in batches, and reconstructions of images (Supp. App. E).

Both run under torch.inference_mode (no autograd bookkeeping): their outputs are for display and metrics, and
cannot be differentiated (clone one outside inference mode to optimise it)."""

from __future__ import annotations

import torch

from automod_cli.models import Automodulator

BATCH_SIZE = 16  # images per forward pass: bounds memory when many exemplars are encoded


def model_device(model: Automodulator) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def encode(model: Automodulator, images: torch.Tensor, batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Latents (N, D) of (N, 3, R, R) images in [-1, 1], on the model's device."""
    device = model_device(model)
    return torch.cat([model.encode(chunk.to(device)) for chunk in images.split(batch_size)])


@torch.inference_mode()
def decode(model: Automodulator, latents: torch.Tensor, noise: bool = False,
           batch_size: int = BATCH_SIZE) -> torch.Tensor:
    """Images of latents (N, D) or per-block assignments (N, B, D); layer noise only when `noise`."""
    device = model_device(model)
    return torch.cat([model.decode(chunk.to(device), noise=noise) for chunk in latents.split(batch_size)])


def nonfinite_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the model's float weights and buffers that hold NaN or infinite values (a diverged run): such a
    model decodes to NaN, which image files show as black."""
    return [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]


def reconstruct(model: Automodulator, images: torch.Tensor, noise: bool = False) -> torch.Tensor:
    """θ(φ(x)): decode the encoding of each image."""
    return decode(model, encode(model, images), noise)


def side_by_side(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Interleave inputs and reconstructions, (2N, 3, R, R): a grid with 2 columns shows input | reconstruction."""
    return torch.stack([images.to(reconstructions.device), reconstructions], dim=1).flatten(0, 1)
