"""Attribute editing with exemplars (NeurIPS Sec. 4, Supp. App. C).

The attribute vector is the mean latent of images showing an attribute minus the mean latent of images
without it. Added (times a strength) to an input's latent, it moves the decoded image towards the attribute.
Like the authors, the edited latent z + s·v is not projected back onto the sphere: the AdaIN maps are affine
in z, so the strength acts linearly. Restricted to the blocks where the attribute lives (e.g. mid for a
smile), the noise a handful of exemplars puts into the vector cannot change the other scales (Supp. Fig. 8).

Vectors are stored as safetensors with string metadata (exemplar counts, the model); nothing is unpickled.
`load_vector` also reads a direction saved with `torch.save` as a bare (D,) or (1, D) float tensor, as the
authors' repository publishes them (smile_delta2, male_delta2, ...: (1, 512) for their 512-d FFHQ models), with a
weights-only load: a file that holds anything but tensors and plain containers is refused, never unpickled.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from automod_cli import __version__
from automod_cli.outputs import atomic_write, refuse_overwrite
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
    return latent_difference(encode(model, positives), encode(model, negatives))


def latent_difference(with_it: torch.Tensor, without_it: torch.Tensor) -> torch.Tensor:
    """The attribute vector from latents (N, D) (encodings or saved codes): mean with minus mean without, (D,)."""
    if len(with_it) == 0 or len(without_it) == 0:
        raise AutomodError("an attribute vector needs at least one image with and one without the attribute.")
    return with_it.mean(0) - without_it.to(with_it.device).mean(0)


def edit_latents(
    model: Automodulator, z: torch.Tensor, vector: torch.Tensor, strength: float, blocks: range | None = None
) -> torch.Tensor:
    """z + strength·vector for (N, D) latents: as (N, D) when `blocks` is None (every layer), else the (N, B, D)
    assignment where the edited latent drives `blocks` and the original the rest."""
    edited = z + strength * vector.to(z.device)
    if blocks is None:
        return edited
    require_mixing(model, "editing chosen scales")
    return assign(z, edited, blocks, model.num_active_blocks)


def edit(
    model: Automodulator,
    z: torch.Tensor,
    vector: torch.Tensor,
    strengths: Sequence[float],
    blocks: range | None = None,
    noise: bool = False,
) -> torch.Tensor:
    """Decoded edits of each latent at each strength, row by row: (N·S, 3, R, R) with image i's strip at
    rows i·S .. i·S+S-1 (a grid of S columns shows one strip per image)."""
    z = z.to(model_device(model))
    edits = [edit_latents(model, z, vector, s, blocks) for s in strengths]
    stacked = torch.stack(edits, dim=1).flatten(0, 1)
    return decode(model, stacked, noise)


def save_vector(path: Path, vector: torch.Tensor, info: dict[str, str], overwrite: bool = False) -> Path:
    """Write an attribute vector and string `info` (exemplar counts, model) as a safetensors file."""
    path = Path(path)
    refuse_overwrite(path, overwrite, "--save-vector path")
    metadata = {
        **info,
        "format": VECTOR_FORMAT,
        "automod_version": __version__,
        "latent_dim": str(vector.numel()),
    }
    tensors = {VECTOR_KEY: vector.detach().float().cpu().reshape(-1).contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def load_vector(path: Path, latent_dim: int | None = None) -> tuple[torch.Tensor, dict[str, str]]:
    """An attribute direction, shape (D,) float32, and its metadata; checked against `latent_dim` if given.

    Reads automod's own files (`save_vector`: safetensors) and torch-saved tensors such as the authors' deltas
    (zip or legacy `torch.save` format, a (D,) or (1, D) float tensor, or a dict holding exactly one). The format is
    told by the file's first bytes, not its name. Torch files are loaded with weights_only=True only.
    """
    path = Path(path)
    if not path.is_file():
        raise AutomodError(f"attribute vector '{path}' does not exist.")
    kind = _file_kind(path)
    if kind == "torch":
        vector, metadata = _load_torch_vector(path), {"source": path.name}
    elif kind == "safetensors":
        vector, metadata = _load_safetensors_vector(path)
    else:
        raise AutomodError(
            f"'{path}' is neither a safetensors file nor a torch-saved tensor; give a direction "
            "written by `automod edit --save-vector` or by torch.save(tensor, path)."
        )
    vector = _checked(path, vector)
    if latent_dim is not None and vector.numel() != latent_dim:
        raise AutomodError(
            f"'{path}' holds a {vector.numel()}-d vector but the model's latents are {latent_dim}-d; "
            "use a direction made for this model (or build one with --pos/--neg)."
        )
    return vector, metadata


def _file_kind(path: Path) -> str:
    """'torch' (a zip archive or a pickle: what torch.save writes), 'safetensors' (a u64 header length, then
    JSON) or 'unknown', from the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return "torch"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def _load_safetensors_vector(path: Path) -> tuple[torch.Tensor, dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            vector = handle.get_tensor(VECTOR_KEY) if VECTOR_KEY in handle.keys() else None
    except (SafetensorError, OSError, ValueError) as exc:
        raise AutomodError(
            f"'{path}' is not a readable attribute vector (not safetensors, or truncated: {exc})."
        ) from None
    if metadata.get("format") != VECTOR_FORMAT or vector is None or vector.dim() != 1:
        raise AutomodError(
            f"'{path}' is not an automod attribute vector; make one with `automod edit --save-vector`."
        )
    return vector, metadata


def _load_torch_vector(path: Path) -> torch.Tensor:
    """The tensor in a torch-saved file, read with weights_only=True; a refusal is final (no full unpickling)."""
    try:
        with warnings.catch_warnings():  # e.g. torch's note on pickle protocols: the error below says it all
            warnings.simplefilter("ignore")
            with open(
                path, "rb"
            ) as handle:  # a handle: torch.load would read a path named *.safetensors as one
                loaded = torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read an untrusted file is the user's one-line error
        text = str(exc)
        if "Weights only load failed" in text:
            raise AutomodError(
                f"'{path}' holds more than tensors, so automod will not load it ({_refusal(text)}); "
                "it never unpickles other objects: save the direction as a bare tensor with "
                "torch.save(tensor, path)."
            ) from None
        reason = _first_sentence(text) or type(exc).__name__
        raise AutomodError(
            f"'{path}' is not a readable torch file (truncated or corrupt: {reason})."
        ) from None
    if (
        isinstance(loaded, dict)
        and len(loaded) == 1
        and isinstance(next(iter(loaded.values())), torch.Tensor)
    ):
        loaded = next(iter(loaded.values()))
    if not isinstance(loaded, torch.Tensor):
        if isinstance(loaded, dict):
            what = f"a dict of {len(loaded)} {'entry' if len(loaded) == 1 else 'entries'}"
        else:
            what = f"a {type(loaded).__name__}"
        raise AutomodError(
            f"'{path}' holds {what}, not a tensor; an attribute direction file holds one (D,) or "
            "(1, D) float tensor (or a dict with just that tensor)."
        )
    return loaded


def _refusal(text: str) -> str:
    """The one-line reason in torch's multi-line weights-only error ('Unsupported global: GLOBAL exec ...')."""
    line = _first_sentence(text.split("WeightsUnpickler error:", 1)[-1])
    return f"a weights-only load refused it: {line}" if line else "a weights-only load refused it"


def _first_sentence(text: str) -> str:
    """The first sentence of the first non-empty line of an exception's text, at most 120 characters."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line.split(". ", 1)[0].rstrip(".")[:120]


def _checked(path: Path, vector: torch.Tensor) -> torch.Tensor:
    """A (D,) or (1, D) dense, finite float tensor as a plain (D,) float32 one; anything else is one line."""
    shape = tuple(vector.shape)
    if vector.layout != torch.strided:
        raise AutomodError(f"'{path}' holds a {vector.layout} tensor; save the direction as a dense tensor.")
    if not vector.is_floating_point():
        raise AutomodError(
            f"'{path}' holds {str(vector.dtype).replace('torch.', '')} values; an attribute direction "
            "is a float tensor: convert it with tensor.float() and save it again."
        )
    if not (len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)) or vector.numel() == 0:
        raise AutomodError(
            f"'{path}' holds a tensor of shape {shape}; an attribute direction is one latent, of "
            "shape (D,) or (1, D) for a model with D-d latents."
        )
    vector = vector.detach().to(torch.float32).reshape(-1).contiguous()
    if not torch.isfinite(vector).all():
        raise AutomodError(f"'{path}' holds NaN or infinite values; recompute the direction.")
    return vector
