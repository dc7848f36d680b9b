"""Where models come from: the one door through which every command, metric and the Python API opens a model.

`open_model(name)` takes what a user names and gives an `OpenedModel`: the network, its checkpoint's path and
metadata, its kind and its provenance (what it was trained on), from one reading of the file. Behind the door,
from the name to the file:
- here, `find_checkpoint`: a checkpoint file, a run directory (its newest checkpoint), nothing (the newest run
  under ./runs), or the name of one of the authors' published models;
- `pretrained`: those names, found in the caches or downloaded, and converted once;
- `authors`: the conversion of a file of the authors' code (also `automod import`);
- `checkpoint`: the file format of every model kind, which rebuilds the network from the file alone.
Each floor only calls the one below, and `checkpoint` knows no names, so the import graph has no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from automod_cli import authors, pretrained
from automod_cli.checkpoint import (
    CHECKPOINT_DIR,
    model_from_checkpoint,
    model_kind,
    read_checkpoint,
    run_checkpoints,
)
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.models.lia import LiaModel
from automod_cli.provenance import Provenance, from_meta

RUNS_DIR = Path("runs")


def find_checkpoint(path: Path | None) -> Path:
    """A checkpoint file as given, a run directory's latest checkpoint, or (path None) the newest run under ./runs.

    A pretrained model's name (`ffhq256`, … see `automod_cli.pretrained`) resolves to its converted checkpoint
    (found in the caches, or downloaded and converted) unless a file or folder of that name exists here. A file of
    the authors' own format is refused with the `automod import` command that converts it."""
    if path is not None and not Path(path).exists():
        if pretrained.is_name(str(path)):
            return pretrained.resolve(str(path))
    if path is None:
        runs = [p for p in RUNS_DIR.glob("*") if run_checkpoints(p)] if RUNS_DIR.is_dir() else []
        if not runs:
            raise AutomodError(
                "no model given and no trained run under ./runs: pass --model CHECKPOINT_OR_RUN_DIR."
            )
        path = max(runs, key=lambda p: run_checkpoints(p)[-1].stat().st_mtime)
    path = Path(path)
    if path.is_dir():
        found = run_checkpoints(path)
        if not found:
            raise AutomodError(
                f"'{path}' is a folder without checkpoints in {CHECKPOINT_DIR}/: is it a run directory?"
            )
        return found[-1]
    if not path.exists():
        raise AutomodError(
            f"model '{path}' does not exist: pass a checkpoint file, a run directory or a pretrained "
            f"model's name (automod models)."
        )
    if authors.is_authors_file(path):
        raise AutomodError(
            f"'{path}' is a checkpoint of the authors' code, not an automod one: convert it once with "
            f"`automod import {path} --out {path.with_suffix('.safetensors')}` and pass that file."
        )
    return path


@dataclass(frozen=True)
class OpenedModel:
    """A model and what its checkpoint says about it."""

    model: Automodulator | LiaModel
    checkpoint: (
        Path  # the file read (a run directory's newest checkpoint, a pretrained model's converted file)
    )
    meta: dict[str, Any]  # the checkpoint's metadata (`checkpoint.save_checkpoint`)
    provenance: Provenance  # what it was trained on
    ema_decoder: bool  # whether the file holds an EMA decoder (the one `model` has when `ema` was asked for)

    @property
    def kind(self) -> str:
        """automod, pioneer, vae, wae or lia (`checkpoint.model_kind`)."""
        return model_kind(self.meta)

    @property
    def trained_on(self) -> Path | None:
        """The data file the model was trained on; None for the built-in dataset (or a file that records none)."""
        data = (self.meta.get("train_config") or {}).get("data")
        return Path(data) if data else None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def open_model(
    name: Path | str | None,
    device: str | torch.device = "cpu",
    ema: bool = True,
    check: Callable[[Path, dict[str, Any]], None] | None = None,
) -> OpenedModel:
    """The model a user names (a checkpoint file, a run directory, None for the newest run, or a pretrained name),
    rebuilt from its checkpoint on `device` with the EMA decoder when the file has one (unless `ema` is False).

    The file is read once. `check(checkpoint, meta)` runs after its metadata is read and before any weight is: a
    caller's refusals (an operation this model cannot do, data that is not there) come before the work."""
    path = find_checkpoint(None if name is None else Path(name))
    tensors, meta = read_checkpoint(path, check=None if check is None else lambda meta: check(path, meta))
    model = model_from_checkpoint(tensors, meta, str(path), ema=ema).to(device)
    has_ema = any(k.startswith("decoder_ema.") for k in tensors)
    return OpenedModel(model, path, meta, from_meta(meta, model.resolution), has_ema)


def load_model(
    path: Path | str | None, device: str | torch.device = "cpu", ema: bool = True
) -> Automodulator | LiaModel:
    """`open_model(path, device, ema).model`: the network alone (an Automodulator or, from a LIA checkpoint, a
    LiaModel)."""
    return open_model(path, device, ema).model
