"""`automod encode IMAGES... --out codes.npz`: encode images once, batch by batch, into a codes file that mix,
interpolate and edit read in place of images (`codes.npz:3`). The format is described in `automod_cli/ops/codes.py`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from automod_cli.commands.options import (
    ALIGN,
    DEVICE,
    FACE,
    FORCE,
    MODEL,
    check_device_and_outputs,
    checked_inputs,
    open_model,
    progress_bars,
    report_skipped,
    writing,
)
from automod_cli.console import say
from automod_cli.errors import AutomodError
from automod_cli.defaults import CODES_SUFFIX as SUFFIX, ENCODE_BATCH


def encode(
    images: List[Path] = typer.Argument(
        ..., help="Image files or folders (unusable files are skipped, one line each)."
    ),
    out: Path = typer.Option(
        Path("codes.npz"),
        "--out",
        "-o",
        help="Codes file (.npz): the codes, the file names and the model they belong to.",
    ),
    batch: int = typer.Option(ENCODE_BATCH, "--batch", min=1, help="Images per encoder pass."),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    align: Optional[bool] = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Encode images into a codes file, so that mix, interpolate and edit reuse the codes (FILE.npz:N, from 0)
    instead of encoding the images again. Codes are only used with the model that made them.

    Example: automod encode faces/ -o faces.npz --model ffhq256

    Example: automod mix faces.npz:0 faces.npz:3 --coarse --model ffhq256
    """
    import torch

    from automod_cli import ops
    from automod_cli.commands import ops_report

    align = ops_report.face_choice(align, face)
    if out.suffix.lower() != SUFFIX:
        raise AutomodError(f"the codes file is an .npz file: name it e.g. '{out.with_suffix(SUFFIX).name}'.")
    target = check_device_and_outputs(device, [out], force)
    inputs = checked_inputs(images)
    opened = open_model(model, target, seed=0)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    identity = ops.model_identity(net)
    align = ops_report.alignment(notes, align)
    with progress_bars() as progress:
        encoded = ops.encode_files(
            net, inputs, align, batch, progress, inspect=lambda x: ops_report.check(notes, align, x)
        )  # each batch, as encoded
    report_skipped(encoded.used)
    ops_report.check(notes, align, torch.empty(0))  # names the files used unaligned (no face found)
    ops_report.say_unlike(notes)  # inputs unlike the training data, counted over all batches
    with writing(out):
        ops.save_codes(
            out,
            encoded.codes,
            encoded.used.paths,
            identity,
            str(opened.checkpoint),
            net.resolution,
            bool(align),
            overwrite=force,
        )
    say(ops_report.rate_line("encoded", len(encoded.codes), encoded.seconds))
    say(
        f"wrote {out}: {len(encoded.codes)} codes of {identity.latent_dim} numbers, {out}:0 … "
        f"{out}:{len(encoded.codes) - 1}"
    )


def register(app: typer.Typer) -> None:
    app.command("encode")(encode)
