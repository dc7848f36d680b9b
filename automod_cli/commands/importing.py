"""`automod import`: convert a checkpoint of the paper authors' code into an automod checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from automod_cli.config import level_resolution
from automod_cli.console import say


def import_(
    source: Path = typer.Argument(
        ...,
        metavar="FILE.pth",
        help="A checkpoint written by the authors' code "
        "(AaltoVision/automodulator), e.g. "
        "34740000_state.pth.",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The automod checkpoint to write (default: FILE with the suffix .safetensors)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="What the model was trained on, recorded in the "
        "file: ffhq, celebahq, lsun-bedroom, lsun-car or "
        "another name (default: the published model's, "
        "known by the file name). ffhq and celebahq make "
        "the image commands align faces.",
    ),
) -> None:
    """Import a trained model of the authors' code exactly: encoder, EMA and raw decoders, spectral-norm state and
    d_ρ parameters, with the network shape read from the file. The result works with every command that takes
    --model, and with `automod train --init` for fine-tuning.

    Example: automod import 34740000_state.pth --out ffhq256.safetensors
    """
    from automod_cli import authors, pretrained

    out = out if out is not None else source.with_suffix(".safetensors")
    dataset = dataset or pretrained.dataset_of_file(source.name)
    path = authors.import_checkpoint(source, out, force=force, dataset=dataset)
    model = authors_summary(path)
    say(f"wrote {path}: {model}")


def authors_summary(path: Path) -> str:
    """One line on what was imported: resolution, α, latent size and widths."""
    from automod_cli.checkpoint import read_meta

    meta = read_meta(path)
    config = meta["model_config"]
    res = level_resolution(meta["level"])
    widths = "/".join(str(c) for c in config["channels"])
    trained_on = meta.get("source", {}).get("dataset", "not recorded (--dataset NAME records it)")
    return (
        f"{res}×{res} (α {meta['alpha']:g}), latent {config['latent_dim']}, decoder widths {widths} from 4² up; "
        f"trained on {trained_on}"
    )


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
