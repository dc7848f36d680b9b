"""Attribute editing with exemplars (NeurIPS Sec. 4, Supp. App. C).

The attribute vector is the mean latent of images showing an attribute minus the mean latent of images
without it. Added (times a strength) to an input's latent, it moves the decoded image towards the attribute.
Like the authors, the edited latent z + s·v is not projected back onto the sphere: the AdaIN maps are affine
in z, so the strength acts linearly. Restricted to the blocks where the attribute lives (e.g. mid for a
smile), the noise a handful of exemplars puts into the vector cannot change the other scales (Supp. Fig. 8).

Vectors are stored as safetensors with string metadata (exemplar counts, the model); nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from automod_cli import __version__
from automod_cli.checkpoint import atomic_write
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.ops.reconstruct import decode, encode, model_device
from automod_cli.ops.scales import require_mixing

VECTOR_FORMAT = "automod-attribute-vector"
VECTOR_KEY = "vector"


def attribute_vector(model: Automodulator, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Mean latent of `positives` minus mean latent of `negatives` (image batches in [-1, 1]), shape (D,)."""
    if len(positives) == 0 or len(negatives) == 0:
        raise AutomodError("an attribute vector needs at least one image with and one without the attribute.")
    return encode(model, positives).mean(0) - encode(model, negatives).mean(0)


def edit_latents(model: Automodulator, z: torch.Tensor, vector: torch.Tensor, strength: float,
                 blocks: range | None = None) -> torch.Tensor:
    """z + strength·vector for (N, D) latents: as (N, D) when `blocks` is None (every layer), else the (N, B, D)
    assignment where the edited latent drives `blocks` and the original the rest."""
    edited = z + strength * vector.to(z.device)
    if blocks is None:
        return edited
    require_mixing(model, "editing chosen scales")
    return assign(z, edited, blocks, model.num_active_blocks)


def edit(model: Automodulator, z: torch.Tensor, vector: torch.Tensor, strengths: Sequence[float],
         blocks: range | None = None, noise: bool = False) -> torch.Tensor:
    """Decoded edits of each latent at each strength, row by row: (N·S, 3, R, R) with image i's strip at
    rows i·S .. i·S+S-1 (a grid of S columns shows one strip per image)."""
    z = z.to(model_device(model))
    edits = [edit_latents(model, z, vector, s, blocks) for s in strengths]
    stacked = torch.stack(edits, dim=1).flatten(0, 1)
    return decode(model, stacked, noise)


def save_vector(path: Path, vector: torch.Tensor, info: dict[str, str], overwrite: bool = False) -> Path:
    """Write an attribute vector and string `info` (exemplar counts, model) as a safetensors file."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise AutomodError(f"'{path}' already exists: choose another --save-vector path or pass --force.")
    metadata = {**info, "format": VECTOR_FORMAT, "automod_version": __version__, "latent_dim": str(vector.numel())}
    tensors = {VECTOR_KEY: vector.detach().float().cpu().reshape(-1).contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def load_vector(path: Path, latent_dim: int | None = None) -> tuple[torch.Tensor, dict[str, str]]:
    """An attribute vector written by `save_vector` and its metadata; checked against `latent_dim` if given."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(f"attribute vector '{path}' does not exist.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            vector = handle.get_tensor(VECTOR_KEY) if VECTOR_KEY in handle.keys() else None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AutomodError(f"'{path}' is not a readable attribute vector (not safetensors, or truncated: {exc}).") \
            from None
    if metadata.get("format") != VECTOR_FORMAT or vector is None or vector.dim() != 1:
        raise AutomodError(f"'{path}' is not an automod attribute vector; make one with `automod edit --save-vector`.")
    if latent_dim is not None and vector.numel() != latent_dim:
        raise AutomodError(f"'{path}' holds a {vector.numel()}-d vector but the model's latents are {latent_dim}-d; "
                           "build the vector with this model.")
    return vector, metadata
