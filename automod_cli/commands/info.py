"""`automod info`: what a checkpoint holds (config, resolution, training progress)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from automod_cli import kinds
from automod_cli.config import TrainConfig, level_resolution, recipe_name
from automod_cli.console import console, say
from automod_cli.errors import AutomodError


def model_section(meta: dict) -> dict:
    """The network shape and, for LIA, its NICE mapping network: `model_config` (encoder and synthesis network,
    LIA's from meta["lia_config"]["model"]) and `lia_config` (the rest of the LIA config)."""
    key = kinds.of_meta(meta).config_key
    if key == "model_config":
        return {"model_config": meta[key]}
    own = meta[key]  # a kind with its own config type (LIA's): the network's shape under "model"
    return {"model_config": own["model"], key: {k: v for k, v in own.items() if k != "model"}}


def training_progress(meta: dict) -> dict:
    """'progress': '80,000 / 104,000 images, 16² of 32²' for a training checkpoint of an automodulator run ('1,024 /
    1,000 images of fine-tuning ffhq256, 256² of 256²' for a run started with --init)."""
    if "train_config" not in meta or "images_seen" not in meta or "lia_train_config" in meta:
        return {}
    config = TrainConfig.from_dict(meta["train_config"])
    res = level_resolution(int(meta["level"]))
    where = f"{res}² of {config.model.max_resolution}²"
    if config.init:  # fine-tuning counts its own images, not the schedule's start at the model's level
        start = config.start_images
        return {
            "progress": f"{meta['images_seen'] - start:,} / {config.total_images - start:,} images of "
            f"fine-tuning {config.init}, {where}"
        }
    return {"progress": f"{meta['images_seen']:,} / {config.total_images:,} images, {where}"}


def duration(seconds: float) -> str:
    """A training time for people: '42.3 s', '9 min 40 s', '2 h 05 min'."""
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def info(
    model: Optional[Path] = typer.Argument(
        None,
        help="Checkpoint file, run directory or a named model such as "
        "ffhq256 (see automod models; default: newest run under "
        "./runs).",
    ),
    model_option: Optional[Path] = typer.Option(
        None, "--model", "-m", help="The same as MODEL, as the other commands take it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON on stdout."),
) -> None:
    """Show a checkpoint's model kind and config, resolution, the data it was trained on and training progress.

    Example: automod info runs/demo

    Example: automod info --model ffhq256
    """
    if model is not None and model_option is not None and model != model_option:
        raise AutomodError(f"give the model once: '{model}' and --model '{model_option}' were both given.")
    from automod_cli.locate import open_model

    opened = open_model(model if model is not None else model_option)
    path, meta, net = opened.checkpoint, opened.meta, opened.model
    listed = {"model_config", "lia_config", "level", "alpha", "kind"}  # given above, or not repeated
    listed |= {"train_config"} if "lia_train_config" in meta else set()  # LIA's holds it under "train"
    summary = {
        "checkpoint": str(path),
        "kind": opened.kind,
        "resolution": net.resolution,
        # what the model was trained on (automod_cli/provenance.py): the image commands say it too
        "trained_on": opened.provenance.to_dict(),
        "level": net.level,
        "alpha": net.alpha,
        "parameters": {
            # a LIA model after stage 1 only has no trained encoder (LiaModel.has_encoder)
            "encoder": sum(p.numel() for p in net.encoder.parameters()) if net.has_encoder else 0,
            "decoder": sum(p.numel() for p in net.decoder.parameters()),
        },
        "ema_decoder": opened.ema_decoder,
        **training_progress(meta),
        # the training recipe (docs/training.md); a model imported from the authors' code was trained with theirs
        "recipe": recipe_name(meta.get("train_config", {}).get("recipe"))
        or ("authors (their own training)" if meta.get("source", {}).get("format") == "authors" else "—"),
        **model_section(meta),
        **{k: v for k, v in meta.items() if k not in listed},
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    # the checkpoint's path as the title, on a line of its own: a table title wraps at the table's width (at 80
    # columns when piped to a file), which breaks a long path in the middle
    say(str(path), style="italic")
    table = Table(show_header=False)
    for key, value in summary.items():
        if key == "trained_on":
            table.add_row(
                "trained on",
                f"{value['description']} — from the {value['origin']}"
                if value["dataset"]
                else value["description"],
            )
        elif key == "elapsed_s" and isinstance(value, (int, float)):
            table.add_row("elapsed", duration(value))  # --json keeps the seconds
        elif key != "checkpoint":
            table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
