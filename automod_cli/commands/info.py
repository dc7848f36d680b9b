"""`automod info`: what a checkpoint holds (config, resolution, training progress)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from automod_cli.checkpoint import find_checkpoint, model_from_checkpoint, read_checkpoint

console = Console()


def model_kind(meta: dict) -> str:
    """Which model a checkpoint holds (automod, pioneer, vae, wae, ...): the training run's kind, else (for files
    without one) what the network's latent space and decoder show."""
    kind = meta.get("kind") or meta.get("train_config", {}).get("kind")
    if kind:
        return kind
    model = meta.get("model_config", {})
    if model.get("variational"):
        return "vae"
    if model.get("latent") == "gaussian":
        return "wae"
    return "pioneer" if model.get("decoder") == "classic" else "automod"


def info(
    model: Optional[Path] = typer.Argument(None, help="Checkpoint file or run directory (default: newest run under ./runs)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout."),
) -> None:
    """Show a checkpoint's model config, resolution and training progress.

    Example: automod info runs/demo
    """
    path = find_checkpoint(model)
    tensors, meta = read_checkpoint(path)
    net = model_from_checkpoint(tensors, meta, str(path))
    summary = {
        "checkpoint": str(path),
        "kind": model_kind(meta),
        "resolution": net.resolution,
        "level": net.level,
        "alpha": net.alpha,
        "parameters": {
            "encoder": sum(p.numel() for p in net.encoder.parameters()),
            "decoder": sum(p.numel() for p in net.decoder.parameters()),
        },
        "ema_decoder": any(k.startswith("decoder_ema.") for k in tensors),
        "model_config": meta["model_config"],
        **{k: v for k, v in meta.items() if k not in ("model_config", "level", "alpha", "kind")},
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    table = Table(title=str(path), show_header=False)
    for key, value in summary.items():
        if key != "checkpoint":
            table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
