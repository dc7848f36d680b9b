"""Import of the paper authors' checkpoints (AaltoVision/automodulator, `Session.save_all`) as automod checkpoints.

The authors' file is one `torch.save` dict: `G_state_dict` (the raw generator), `G_running_state_dict` (its
EMA), `D_state_dict` (the encoder), each key prefixed `module.` (DataParallel); the optimisers; `iteration`,
`phase`, `alpha`; `SNU`, the spectral-norm u vectors of the encoder's convs in construction order (two per block,
not in the state dict); `adaptive_loss_<j>`, 1-tuples holding the robust loss's state dict for resolution 4·2^j.

automod's network computes what theirs computes (docs/architecture.md, "The authors' network"), so the import is
a renaming plus the reading of the shapes:
- decoder block i (resolution 4·2^i) is their `progression.i`, `noise.i`, `to_rgb.i`; block 0 is one conv on the
  constant input, every other block two;
- encoder level L is their `progression.(n−1−L)` and `from_rgb.(n−1−L)`, n = 9 blocks (the 4×4 head is the
  last); `SNU[2k]`, `SNU[2k+1]` are the u vectors of block k's two convs;
- widths, the latent size and the level come from the tensors' shapes and `phase`, so every width of their
  code (the default "balanced" and the `small` decoders, any nz) imports.
Blocks beyond `phase` were never trained and are not imported. The file is read with `weights_only=True` only.

Settings their file does not record: their options `--upsampling bilinear`, `--blurSN` and `--stylefc` change the
computation without changing any tensor. The published models use none of them; a file trained with one would
import with the wrong computation, and nothing in the file can tell.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from automod_cli.checkpoint import save_checkpoint
from automod_cli.config import ModelConfig, level_resolution
from automod_cli.errors import AutomodError
from automod_cli.features.weights import file_sha256
from automod_cli.models import Automodulator
from automod_cli.outputs import refuse_overwrite

PREFIX = "module."
SOURCE_FORMAT = "authors"  # meta["source"]["format"] of an imported checkpoint
_REQUIRED = ("G_state_dict", "G_running_state_dict", "D_state_dict", "SNU", "phase")
# How a file of their code is told apart without unpickling anything: torch.save writes the pickled dict (its key
# names as plain bytes, the tensors' data elsewhere) at the start of the file, in both of its formats.
_MARKERS = (b"G_running_state_dict", b"D_state_dict")
_HEAD_BYTES = 4 << 20
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6: a zip archive
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."  # its older format: a pickled magic number first


def is_authors_file(path: Path) -> bool:
    """Whether `path` is a file of the authors' checkpoint format (whole or not): its first bytes hold the key names
    of their checkpoint dict. Only bytes are read; nothing is unpickled."""
    try:
        with open(path, "rb") as handle:
            if not handle.read(len(LEGACY_MAGIC)).startswith((ZIP_MAGIC, LEGACY_MAGIC)):
                return False
            handle.seek(0)
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return False
    return all(marker in head for marker in _MARKERS)


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be a whole PyTorch checkpoint, as a clause ('is not a PyTorch checkpoint ...', 'is
    damaged or incomplete ...'), or None when it may be one. Reads the file's start and, for the zip format, its
    table of contents at the end."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(len(LEGACY_MAGIC))
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path):
                return None
        except (zipfile.BadZipFile, OSError):
            return (
                f"is damaged or incomplete: its {size:,} bytes end before the table of contents that closes "
                "every file torch.save writes (an interrupted download or copy)"
            )
    if head.startswith(LEGACY_MAGIC):
        return None
    return (
        "is not a PyTorch checkpoint (neither of the formats torch.save writes: it does not start as a zip "
        "archive or a pickled PyTorch file)"
    )


def read(path: Path) -> dict[str, Any]:
    """The authors' checkpoint dict, loaded with PyTorch's weights-only unpickler (never a full unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise AutomodError(
            f"'{path}' does not exist: pass the authors' checkpoint file (e.g. 34740000_state.pth)."
        )
    problem = file_problem(path)
    if problem is not None:
        again = (
            "; copy or download it again"
            if problem.startswith("is damaged")
            else ": pass the authors' checkpoint file (e.g. 34740000_state.pth)"
        )
        raise AutomodError(f"'{path}' {problem}{again}.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the safe unpickler refused the file, or its contents are broken
        if is_authors_file(
            path
        ):  # their layout, but unreadable: damaged inside (their files hold tensors only)
            raise AutomodError(
                f"'{path}' is a checkpoint of the authors' code but damaged: PyTorch cannot read it "
                f"({type(exc).__name__}); copy or download it again."
            ) from None
        reason = _first_sentence(str(exc)) or type(exc).__name__
        raise AutomodError(
            f"'{path}' cannot be read as a weights-only PyTorch checkpoint ({reason}); "
            "automod never unpickles arbitrary objects, so it cannot import this file."
        ) from None
    if not isinstance(data, dict) or any(key not in data for key in _REQUIRED):
        missing = [key for key in _REQUIRED if not isinstance(data, dict) or key not in data]
        raise AutomodError(
            f"'{path}' is not a checkpoint of the authors' code (it lacks {', '.join(missing)})."
        )
    return data


def _first_sentence(text: str, limit: int = 160) -> str:
    """An exception's first sentence on one line, cut at a word with '…' past `limit` characters."""
    sentence = " ".join(text.split()).split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[:limit].rsplit(" ", 1)[0] + " …"


def source_record(path: Path) -> dict[str, Any]:
    """What an imported checkpoint records of the file it came from, so that a replaced file is noticed: its size,
    modification time (ns) and SHA-256."""
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": file_sha256(Path(path))}


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in state.items()}


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    indices = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    if indices != set(range(len(indices))):
        raise AutomodError(
            f"the checkpoint's layers matching '{pattern}' are not numbered 0..n−1: not the authors' layout."
        )
    return len(indices)


def model_config(
    generator: dict[str, torch.Tensor], encoder: dict[str, torch.Tensor], phase: int
) -> ModelConfig:
    """The automod network shape of an authors' checkpoint at `phase`: widths and latent size from the shapes."""
    blocks = _count(encoder, r"progression\.(\d+)\.")
    if not 0 <= phase < min(blocks, _count(generator, r"to_rgb\.(\d+)\.")):
        raise AutomodError(f"the checkpoint's phase {phase} is outside its 0..{blocks - 1} resolution steps.")
    decoder_widths = tuple(int(generator[f"to_rgb.{i}.weight"].shape[1]) for i in range(phase + 1))
    encoder_widths = tuple(
        int(encoder[f"from_rgb.{blocks - 1 - level}.weight"].shape[0]) for level in range(phase + 1)
    )
    latent = int(generator["progression.0.conv.3.mod.weight"].shape[1])
    return ModelConfig(
        max_resolution=level_resolution(phase),
        latent_dim=latent,
        channels=decoder_widths,
        encoder_channels=None if encoder_widths == decoder_widths else encoder_widths,
    )


def _conv(names: dict, target: str, source: str) -> None:
    names.update(
        {
            f"{target}.weight": f"{source}.weight_orig",
            f"{target}.weight_gain": f"{source}.weight_gain",
            f"{target}.bias": f"{source}.bias",
        }
    )


def _linear(names: dict, target: str, source: str) -> None:
    names.update({f"{target}.weight": f"{source}.weight", f"{target}.bias": f"{source}.bias"})


def decoder_names(phase: int) -> dict[str, str]:
    """automod's AutomodulatorDecoder tensor names for blocks 0..phase → the names of the same tensors in their
    Generator state dict (without 'module.'; the AdaNorm maps under their `progression` alias)."""
    names: dict[str, str] = {}
    _conv(names, "blocks.0.conv", "progression.0.conv.1.conv")
    _linear(names, "blocks.0.adain.affine", "progression.0.conv.3.mod")
    for i in range(1, phase + 1):
        _conv(names, f"blocks.{i}.conv1", f"progression.{i}.conv.0.0.conv")
        _linear(names, f"blocks.{i}.adain1.affine", f"progression.{i}.conv.0.3.mod")
        _conv(names, f"blocks.{i}.conv2", f"progression.{i}.conv.1.conv")
        _linear(names, f"blocks.{i}.adain2.affine", f"progression.{i}.conv.3.mod")
        for j in (0, 1):
            names[f"blocks.{i}.noise{j + 1}.strength"] = f"noise.{i}.{j}.noise_scale"
    for i in range(phase + 1):
        _linear(names, f"to_rgb.{i}", f"to_rgb.{i}")
    return names


def decoder_state(generator: dict[str, torch.Tensor], phase: int) -> dict[str, torch.Tensor]:
    """automod's AutomodulatorDecoder state dict for blocks 0..phase of their Generator state dict."""
    return {
        target: generator[source].reshape(1) if target.endswith(".weight_gain") else generator[source]
        for target, source in decoder_names(phase).items()
    }


def encoder_names(phase: int, blocks: int = 9) -> dict[str, str]:
    """automod's Encoder tensor names for levels 0..phase → their Discriminator's names (without 'module.'), the
    spectral-norm vectors as 'SNU.k' (entry k of their SNU list); `blocks` is their encoder's block count."""
    names: dict[str, str] = {}
    for level in range(phase + 1):
        k = blocks - 1 - level
        _linear(names, f"from_rgb.{level}", f"from_rgb.{k}")
        target = "head" if level == 0 else f"blocks.{level - 1}"
        for j, (name, conv) in enumerate((("conv", "conv1"), ("collapse", "conv2"))):
            slot = f"{target}.{name if level == 0 else conv}"
            source = f"progression.{k}.conv.{2 * j}.conv"
            names.update(
                {
                    f"{slot}.weight": f"{source}.weight_orig",
                    f"{slot}.bias": f"{source}.bias",
                    f"{slot}.u": f"SNU.{2 * k + j}",
                }
            )
    return names


def encoder_state(
    encoder: dict[str, torch.Tensor], snu: list[torch.Tensor], phase: int
) -> dict[str, torch.Tensor]:
    """automod's Encoder state dict for levels 0..phase of their Discriminator state dict and SNU list."""
    blocks = _count(encoder, r"progression\.(\d+)\.")
    if len(snu) != 2 * blocks:
        raise AutomodError(
            f"the checkpoint holds {len(snu)} spectral-norm vectors (SNU) for {blocks} encoder blocks; "
            f"expected {2 * blocks}."
        )
    return {
        target: snu[int(source[4:])].reshape(-1, 1) if source.startswith("SNU.") else encoder[source]
        for target, source in encoder_names(phase, blocks).items()
    }


def robust_state(data: dict[str, Any], phase: int) -> dict[str, torch.Tensor]:
    """d_ρ's per-pixel parameters at the trained resolution, (3, R, R) each (theirs are flattened C·H·W), or {}."""
    entry = data.get(f"adaptive_loss_{phase}")
    state = entry[0] if isinstance(entry, (tuple, list)) and entry else entry
    if not isinstance(state, dict) or not {"latent_alpha", "latent_scale"} <= set(state):
        return {}
    res = level_resolution(phase)
    return {f"latent_{name}": state[f"latent_{name}"].reshape(3, res, res) for name in ("alpha", "scale")}


def convert(
    data: dict[str, Any], source: str = "", dataset: str | None = None
) -> tuple[Automodulator, dict[str, torch.Tensor], dict[str, Any]]:
    """An authors' checkpoint dict as (the model with the EMA decoder loaded, checkpoint tensors, checkpoint meta).

    The tensors hold the encoder (with its spectral-norm u vectors), the raw decoder ('decoder.'), the EMA decoder
    ('decoder_ema.', what every image operation uses) and d_ρ's parameters ('robust.'), so `train --init` can go on
    training from the file. The meta's `source` records the file, and `dataset`, what it was trained on, when given
    (`automod import` and the named models pass the published model's, known by its file name)."""
    generator_raw = _strip(data["G_state_dict"])
    generator = _strip(data["G_running_state_dict"])
    encoder = _strip(data["D_state_dict"])
    if any(k.startswith(("supportProgression", "supportTorgbBlock8")) for k in generator):
        raise AutomodError(
            "this checkpoint was trained with the authors' --flip_invariance_layer (a support block); "
            "automod cannot import that layout yet."
        )
    phase = int(data["phase"])
    alpha = float(data.get("alpha", 1.0))
    alpha = alpha if 0.0 <= alpha < 1.0 else 1.0  # their networks fade in only for 0 ≤ α < 1
    config = model_config(generator, encoder, phase)
    try:
        enc = encoder_state(encoder, list(data["SNU"]), phase)
        raw = decoder_state(generator_raw, phase)
        ema = decoder_state(generator, phase)
    except KeyError as exc:
        raise AutomodError(
            f"'{source}' lacks the tensor {exc} that the authors' layout has: a damaged or foreign file."
        ) from None
    model = Automodulator(config, level=phase, alpha=alpha)
    try:
        model.encoder.load_state_dict(enc)
        model.decoder.load_state_dict(raw)  # checks the raw generator's shapes
        model.decoder.load_state_dict(ema)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise AutomodError(f"'{source}' does not fit the network its shapes describe ({first}).") from None
    tensors = {f"encoder.{k}": v for k, v in enc.items()}
    tensors.update({f"decoder.{k}": v for k, v in raw.items()})
    tensors.update({f"decoder_ema.{k}": v for k, v in ema.items()})
    tensors.update({f"robust.{k}": v for k, v in robust_state(data, phase).items()})
    meta = {
        "model_config": config.to_dict(),
        "level": phase,
        "alpha": alpha,
        "kind": "automod",
        "source": {
            "format": SOURCE_FORMAT,
            "file": Path(source).name,
            "iteration": int(data.get("iteration", 0)),
        },
    }
    if dataset:
        meta["source"]["dataset"] = dataset
    return model.eval(), tensors, meta


def load(path: Path) -> Automodulator:
    """The model of an authors' checkpoint file, EMA decoder, in evaluation mode (nothing written)."""
    model, _, _ = convert(read(path), str(path))
    return model


def import_checkpoint(src: Path, out: Path, force: bool = False, dataset: str | None = None) -> Path:
    """Convert the authors' checkpoint `src` into the automod checkpoint `out` (written atomically); returns `out`.
    `dataset` records what the model was trained on; the file's size, time and SHA-256 are recorded too
    (`source_record`)."""
    out = Path(out)
    refuse_overwrite(out, force)
    _, tensors, meta = convert(read(src), str(src), dataset)
    meta["source"].update(source_record(src))
    save_checkpoint(out, tensors, meta)
    return out
