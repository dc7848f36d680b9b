"""Where the model a user names lives: a checkpoint file, a run directory (its newest checkpoint), nothing (the
newest run under ./runs) or the name of one of the authors' published models (`automod_cli.pretrained`).

This sits above `pretrained` (which converts the authors' files with `authors`, which writes with `checkpoint`):
`checkpoint` is the file format and knows no names, so the import graph has no cycle."""

from __future__ import annotations

from pathlib import Path

import torch

from automod_cli import authors, pretrained
from automod_cli.checkpoint import CHECKPOINT_DIR, model_from_checkpoint, read_checkpoint, run_checkpoints
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.models.lia import LiaModel

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
            raise AutomodError("no model given and no trained run under ./runs: pass --model CHECKPOINT_OR_RUN_DIR.")
        path = max(runs, key=lambda p: run_checkpoints(p)[-1].stat().st_mtime)
    path = Path(path)
    if path.is_dir():
        found = run_checkpoints(path)
        if not found:
            raise AutomodError(f"'{path}' is a folder without checkpoints in {CHECKPOINT_DIR}/: is it a run directory?")
        return found[-1]
    if not path.exists():
        raise AutomodError(f"model '{path}' does not exist: pass a checkpoint file, a run directory or a pretrained "
                           f"model's name (automod models).")
    if authors.is_authors_file(path):
        raise AutomodError(f"'{path}' is a checkpoint of the authors' code, not an automod one: convert it once with "
                           f"`automod import {path} --out {path.with_suffix('.safetensors')}` and pass that file.")
    return path


def load_model(path: Path | None, device: str | torch.device = "cpu", ema: bool = True) -> Automodulator | LiaModel:
    """Rebuild a model (an Automodulator or, from a LIA checkpoint, a LiaModel) from a checkpoint file alone (EMA
    decoder weights when the file has them).

    `path` may also be a run directory (its newest checkpoint) or None (the newest run under ./runs)."""
    path = find_checkpoint(path)
    tensors, meta = read_checkpoint(path)
    return model_from_checkpoint(tensors, meta, str(path), ema=ema).to(device)
