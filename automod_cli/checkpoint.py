"""Safe checkpoint files: tensors in safetensors, the full model config and run state as JSON metadata.

Nothing here unpickles: a checkpoint can be opened from an untrusted source. `model_from_checkpoint` rebuilds the
network from the file alone (`automod_cli.locate.load_model` finds the file a user names and calls it). Writes go
to a temporary file in the same folder and are renamed into place, so a crash never leaves a half-written checkpoint
under the real name.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from automod_cli import __version__, kinds
from automod_cli.errors import AutomodError
from automod_cli.losses import legacy_scale_parameter
from automod_cli.models import Automodulator
from automod_cli.models.lia import LiaModel
from automod_cli.outputs import atomic_write

FORMAT = "automod-checkpoint"
# 2: the network computes what the authors' code computes (docs/architecture.md, "The authors' network"). Files of
# format 1 hold the earlier network, whose tensors neither fit nor mean the same; they are refused with a reason.
# 3: d_ρ's scale parameter in Barron's form (losses.AdaptiveRobustLoss); format 2 files are read into it.
FORMAT_VERSION = 3
SUFFIX = ".safetensors"
# each network by the metadata key of its config (a kind's `config_key` in automod_cli/kinds.py)
NETWORKS: dict[str, type[Automodulator] | type[LiaModel]] = {
    cls.CONFIG_KEY: cls for cls in (Automodulator, LiaModel)
}


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write `tensors` and the JSON-serialisable `meta` atomically to `path`."""
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "automod_version": __version__,
        "meta": json.dumps(meta, sort_keys=True),
    }
    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(plain, str(tmp), metadata=header))


def read_checkpoint(
    path: Path, device: str | torch.device = "cpu", check: Callable[[dict[str, Any]], None] | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of an automod checkpoint, with one-line errors for anything else. The file is opened
    once: its header is read and checked first, then `check(meta)` runs (a caller's refusals before any weight is
    read), then the tensors."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(f"checkpoint '{path}' does not exist.")
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(safe_open(str(path), framework="pt", device=str(device)))
            header = handle.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise _unreadable(path, exc) from None
        meta = _checked_meta(path, header)
        if check is not None:
            check(meta)
        try:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise _unreadable(path, exc) from None
    legacy_scale = "robust.latent_scale" in tensors and meta.get("source", {}).get("format") != "authors"
    if legacy_scale and int(header.get("format_version", "0")) < 3:  # d_ρ's scale as format 2 stored it
        tensors["robust.latent_scale"] = legacy_scale_parameter(tensors["robust.latent_scale"])
    return tensors, meta


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata of an automod checkpoint alone (no tensors are read), with one-line errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(f"checkpoint '{path}' does not exist.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    return _checked_meta(path, header)


def _unreadable(path: Path, exc: Exception) -> AutomodError:
    return AutomodError(f"'{path}' is not a readable checkpoint (truncated or not safetensors: {exc}).")


def _checked_meta(path: Path, header: dict[str, str]) -> dict[str, Any]:
    """The JSON metadata of a safetensors header, refused in one line unless automod wrote it in a format read here."""
    if header.get("format") != FORMAT:
        raise AutomodError(
            f"'{path}' is a safetensors file but not an automod checkpoint (no '{FORMAT}' header)."
        )
    version = int(header.get("format_version", "0"))
    if version > FORMAT_VERSION:
        raise AutomodError(
            f"'{path}' was written by a newer automod ({header.get('automod_version')}); upgrade to read it."
        )
    if version < 2:
        raise AutomodError(
            f"'{path}' holds automod {header.get('automod_version')}'s earlier network (checkpoint "
            f"format {version}), which was changed to the authors' own; retrain it (or use automod "
            "0.1.0 to read it)."
        )
    try:
        return json.loads(header["meta"])
    except (KeyError, json.JSONDecodeError):
        raise AutomodError(f"'{path}' has a damaged metadata header; it cannot be used.") from None


def tensors_under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The state dict saved under `prefix` ('encoder', 'decoder_ema', ...), with the prefix taken off the names."""
    start = prefix + "."
    return {k[len(start) :]: v for k, v in tensors.items() if k.startswith(start)}


def module_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every module's state dict under its name as prefix: {'encoder': enc} → {'encoder.<name>': tensor, ...}."""
    return {f"{prefix}.{k}": v for prefix, module in modules.items() for k, v in module.state_dict().items()}


def state_sha256(module: torch.nn.Module) -> str:
    """SHA-256 (hex) over a module's state dict in its order: each tensor's name and shape, then its bytes. The same
    weights give the same digest on any device; any changed value gives another."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def is_lia_checkpoint(meta: dict[str, Any]) -> bool:
    """Whether checkpoint metadata describes a LIA model (its kind's network config is LiaModel's)."""
    return kinds.of_meta(meta).config_key == LiaModel.CONFIG_KEY


def model_tensors(
    model: Automodulator | LiaModel, decoder_state: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """The model's weights under 'encoder.' and 'decoder.'; `decoder_state` replaces the decoder (e.g. its EMA).
    A model without an encoder (LIA after stage 1 only) has none to save."""
    tensors = module_tensors({"encoder": model.encoder} if model.has_encoder else {})
    decoder = decoder_state if decoder_state is not None else model.decoder.state_dict()
    tensors.update({f"decoder.{k}": v for k, v in decoder.items()})
    return tensors


def model_meta(model: Automodulator | LiaModel) -> dict[str, Any]:
    """What `model_from_checkpoint` needs besides the weights: the network's config, level and α (and what else its
    class records: `checkpoint_meta`)."""
    return model.checkpoint_meta()


def save_model(path: Path, model: Automodulator | LiaModel, extra_meta: dict[str, Any] | None = None) -> None:
    """Write a self-contained model file (weights + config + level/α) that `model_from_checkpoint` rebuilds."""
    save_checkpoint(path, model_tensors(model), {**model_meta(model), **(extra_meta or {})})


def model_from_checkpoint(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], source: str, ema: bool = True
) -> Automodulator | LiaModel:
    """Rebuild the model described by `meta` (training or exported checkpoint) and load its weights; the EMA
    decoder ('decoder_ema.') is preferred when present. The kind's network config (`kinds.ModelKind.config_key`)
    says which network (NETWORKS); a LiaModel's encoder is loaded when the file has one."""
    kind = kinds.of_meta(meta)
    if kind.config_key not in meta:
        raise AutomodError(
            f"'{source}' holds no {kind.title} config in its metadata; it is not a model checkpoint."
        )
    network = NETWORKS[kind.config_key]
    model = network.from_checkpoint_meta(meta, has_encoder=any(k.startswith("encoder.") for k in tensors))
    decoder_prefix = (
        "decoder_ema" if ema and any(k.startswith("decoder_ema.") for k in tensors) else "decoder"
    )
    try:
        if model.has_encoder:
            model.encoder.load_state_dict(tensors_under(tensors, "encoder"))
        model.decoder.load_state_dict(tensors_under(tensors, decoder_prefix))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise AutomodError(
            f"'{source}' does not match the {kind.title} architecture its config describes ({first})."
        ) from None
    return model.eval()


def model_kind(meta: dict[str, Any]) -> str:
    """Which model kind a checkpoint holds (automod, pioneer, vae, wae, lia: `kinds.of_meta`)."""
    return kinds.of_meta(meta).name


CHECKPOINT_DIR = "checkpoints"


def run_checkpoints(run_dir: Path) -> list[Path]:
    """A run directory's checkpoints, oldest first (names carry the zero-padded count of images seen)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(folder.glob(f"ckpt-*{SUFFIX}")) if folder.is_dir() else []
