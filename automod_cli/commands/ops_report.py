"""What the image commands say besides writing images: face alignment by default for models trained on aligned faces,
inputs that look unlike the training data, and reconstruction errors.

Each command opens one model (`commands.options.open_model`) and keeps an `InputNotes` of it (from the provenance
its checkpoint records); every later batch of inputs passes `alignment` (what `align` means for this
model) and `check` (the files used unaligned, and a count of the inputs unlike the training data); once all of a
command's inputs are in, `say_unlike` warns once about those counted over all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from rich.markup import escape
from rich.table import Table

from automod_cli import provenance as data_provenance
from automod_cli.console import console, say, warn
from automod_cli.errors import AutomodError
from automod_cli.ops.inputs import Align as FaceAlign
from automod_cli.ops.inputs import AlignIfFace, Faces
from automod_cli.ops.provenance import mismatch_message, unlike_count
from automod_cli.ops.report import ErrorReport, image_errors, local_lpips


ERROR_ROWS_SHOWN = 20  # up to this many images: every row; more: the worst by MSE
WORST_SHOWN = 10
Align = Union[bool, FaceAlign]
Group = tuple  # (role, names, inputs, reconstructions): images of one kind in an error report


@dataclass
class InputNotes:
    """One command's model: its provenance, what `--align` left unsaid means for it, and the notes already made."""

    provenance: data_provenance.Provenance
    auto_align: Optional[Align] = (
        None  # decided at the first inputs, when neither --align nor --no-align was given
    )
    said: set[str] = field(default_factory=set)
    checked: int = 0  # inputs checked against the training data so far (`check`)
    unlike: int = 0  # of those, how many look unlike it


def face_choice(align: Optional[bool], face: list[str]) -> Union[None, bool, Faces, FaceAlign]:
    """--face N / --face FILE=N (repeatable) with --align/--no-align: what `alignment` takes. No --face: `align` as
    it is; with --face: the faces to align, decided for the model by `alignment` (explicit with --align)."""
    if not face:
        return align
    if align is False:
        raise AutomodError("--face picks which face to align: it cannot go with --no-align.")
    faces = Faces()
    for value in face:
        name, _, number = value.rpartition("=")
        if not number.strip().isdigit():
            raise AutomodError(
                f"--face {value}: give a face number (0 = the largest), or FILE=N for one file."
            )
        if name:
            faces.by_file[name] = int(number)
        else:
            faces.default = int(number)
    return FaceAlign(faces) if align else faces


def alignment(notes: InputNotes, align: Union[None, bool, Faces, FaceAlign]) -> Align:
    """What to pass as `align` for this model: the user's --align/--no-align when given; else, for a model trained on
    aligned faces, AlignIfFace when faces can be detected here (or, once, how to install that, and no alignment).
    Faces chosen with --face (`face_choice`) are aligned in any model, a file without a face used as it is in a face
    model; plain --align becomes an `ops.inputs.Align`, so photos with several faces are noted."""
    if isinstance(align, Faces):
        return AlignIfFace(align) if notes.provenance.aligned_faces else FaceAlign(align)
    if align is True:
        return FaceAlign()
    if align is not None:
        return align
    if not notes.provenance.aligned_faces:
        return False
    if notes.auto_align is None:
        from data_prep.align import ALIGN_EXTRA, detector_available  # noqa: PLC0415 -- scipy's 0.2 s only for faces

        what = data_provenance.DATASET_NAMES.get(notes.provenance.dataset, "aligned faces")
        if detector_available():
            notes.auto_align = AlignIfFace()
            say(f"aligning faces as in the training data ({escape(what)}); --no-align to skip", markup=True)
        else:
            notes.auto_align = False
            warn(
                f"this model was trained on {what}, but inputs are used unaligned: face alignment needs dlib, "
                f"{ALIGN_EXTRA} (--no-align silences this)."
            )
    return notes.auto_align


def check(notes: InputNotes, align: Align, images: torch.Tensor) -> None:
    """After a batch of inputs: name the files used unaligned (no face found), and count the inputs that look unlike
    the model's training data (`provenance.unlike_count`); `say_unlike` warns about them once all are in."""
    if isinstance(align, FaceAlign):
        while align.unaligned:
            warn(f"no face found in '{align.unaligned.pop(0)}': used it unaligned (centre crop).")
        while align.notes:
            path, note = align.notes.pop(0)
            say(
                f"{escape(str(path))}: {escape(note)} (--face N picks face N, --face FILE=N for one file)",
                markup=True,
            )
    if len(images):
        odd, checked = unlike_count(notes.provenance, images)
        notes.unlike += odd
        notes.checked += checked


def say_unlike(notes: InputNotes) -> None:
    """Once all of a command's inputs have passed `check`: one warning, once per command, when some look unlike the
    model's training data, counted over all of them ('3 of 5 inputs ...')."""
    if "unlike" in notes.said:
        return
    message = mismatch_message(notes.provenance, notes.unlike, notes.checked)
    if message is not None:
        notes.said.add("unlike")
        warn(message)


def rate_line(verb: str, count: int, seconds: float) -> str:
    """'reconstructed 120 images in 3.2 s (37.5 images/s)'."""
    rate = f"{count / seconds:,.1f} images/s" if seconds > 0 else "too fast to time"
    return f"{verb} {count:,} image{'s' if count != 1 else ''} in {seconds:.3g} s ({rate})"


def image_rows(role: str, latents, reconstructions: torch.Tensor) -> Group:
    """The image inputs among `latents` (`ops.Latents`; codes have no input to compare) with their reconstructions."""
    rows = [i for i, image in enumerate(latents.images) if image is not None]
    if not rows:
        return role, [], None, None
    images = torch.stack([latents.images[i] for i in rows])
    return role, [latents.names[i] for i in rows], images, reconstructions[rows]


def reconstruction_errors(net: torch.nn.Module, groups: list[Group]) -> ErrorReport:
    """The errors of (role, names, inputs, reconstructions) groups in one report; LPIPS when its weights are here."""
    device = next(net.parameters()).device
    distance, note = local_lpips(net.resolution, device)
    report = ErrorReport(note=note)
    for role, names, images, reconstructions in groups:
        if names:
            report.add(names, image_errors(images, reconstructions, distance, device), role)
    return report


def _value(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.4f}"


def errors_table(report: ErrorReport, title: str) -> Table:
    """The reconstruction errors as a small table: every image (up to ERROR_ROWS_SHOWN), else the worst by MSE;
    then the mean. The image with the highest MSE is in bold red."""
    metrics = report.metrics
    shown = list(range(len(report))) if len(report) <= ERROR_ROWS_SHOWN else report.worst(WORST_SHOWN)
    caption = None if len(shown) == len(report) else f"the {len(shown)} worst of {len(report)} by MSE"
    table = Table(title=title, caption=caption, title_justify="left")
    table.add_column("#", justify="right")
    if any(report.roles):
        table.add_column("")
    table.add_column("file")
    for metric in metrics:
        table.add_column(metric.upper() + (" ↓" if metric != "ssim" else " ↑"), justify="right")
    worst = report.worst(1)[0] if len(report) > 1 else -1
    for i in shown:
        cells = [str(i)] + ([report.roles[i]] if any(report.roles) else []) + [escape(report.names[i])]
        cells += [_value(report.values[m][i]) for m in metrics]
        table.add_row(*cells, style="bold red" if i == worst else None)
    if len(report) > 1:
        table.add_section()
        table.add_row(
            "", *([""] if any(report.roles) else []), "mean", *[_value(report.mean(m)) for m in metrics]
        )
    return table


def show_errors(report: ErrorReport, title: str, path: Path) -> None:
    """Print the table, the note on a missing metric, and where the full numbers were written."""
    console.print(errors_table(report, title))
    if report.note:
        say(f"[dim]{escape(report.note)}[/]", markup=True)
    say(f"wrote {escape(str(path))}", markup=True)
