"""`automod mix | sample | edit | interpolate | reconstruct`: thin shells over `automod_cli.ops`.

Each command checks the cheap things first — the device name, that every output can be written and replaces no
existing file unless `--force` is given, that the input files are images — then loads the model, turns the inputs
into tensors, calls one core function and writes images in the format their suffix names. Unusable files among
several inputs (a folder) are skipped with one line each; the command fails only when none can be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from automod_cli.commands.options import (
    ALIGN,
    DEVICE,
    FACE,
    FORCE,
    MODEL,
    NOISE,
    SCALES,
    SEED,
    check_device_and_outputs,
    checked_inputs,
    open_model,
    progress_bars,
    report_skipped,
    writing,
)
from automod_cli.console import say
from automod_cli.defaults import RECONSTRUCT_BATCH
from automod_cli.errors import AutomodError
from automod_cli.outputs import check_image_outputs, check_output_folder, check_outputs

if TYPE_CHECKING:  # torch, the models and the operations are imported when a command runs, never for --help
    import torch

    from automod_cli import ops
    from automod_cli.commands.ops_report import InputNotes
    from automod_cli.models import Automodulator
    from automod_cli.ops.report import ErrorReport


EDIT_STRENGTHS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # no paper value: a symmetric strip around the reconstruction
SAMPLE_COLUMNS = 8  # cells per row in sample grids (as the training grids)
PAIRS_PER_ROW = 4  # input | reconstruction pairs per row in `reconstruct`


def _write(path: Path, image: torch.Tensor, force: bool) -> None:
    from automod_cli.images import save_image

    with writing(path):
        save_image(path, image.cpu(), overwrite=force)
    say(f"wrote {path}")


def _sources(items: List[Path], exact: bool = False) -> ops.Sources:
    """Images, folders and codes entries (`codes.npz:3`, `codes.npz`), checked before the model is loaded."""
    from automod_cli import ops

    return ops.check_sources(ops.find_sources(items), exact)


def _single(item: Path, role: str) -> ops.Sources:
    """One image file or one code (the A or B of a mix), checked."""
    from automod_cli import ops

    sources = ops.find_sources([item])
    if len(sources) != 1:
        raise AutomodError(
            f"{role} is one image or one code, but '{item}' names {len(sources)}: give one image file, "
            "or one code as FILE.npz:N."
        )
    return ops.check_sources(sources, exact=True)


def _latents(
    model: Automodulator, notes: InputNotes, sources: ops.Sources, align: Optional[bool], exact: bool = False
) -> ops.Latents:
    """The latents of checked sources (codes as they are, images encoded); skipped files are named. Codes alone
    involve no alignment (nothing is said about it)."""
    import torch

    from automod_cli import ops
    from automod_cli.commands import ops_report

    align = ops_report.alignment(notes, align) if sources.images else False
    latents = ops.source_latents(model, sources, align, exact)
    report_skipped(latents.used)
    images = [image for image in latents.images if image is not None]
    ops_report.check(notes, align, torch.stack(images) if images else torch.empty(0))
    return latents


def _model_of_codes(model: Optional[Path], *sources: Optional[ops.Sources]) -> Optional[Path]:
    """--model as given; without it, the model that the codes among the inputs record, when they all record the
    same one (else None: the newest run, and the codes' own check names the model they need)."""
    if model is not None:
        return model
    recorded = {codes.model for group in sources if group is not None for codes in group.codes.values()}
    if len(recorded) != 1:
        return None
    chosen = Path(recorded.pop())
    say(f"model: {chosen} (recorded in the codes file)")
    return chosen


def _face_choice(align: Optional[bool], face: List[str]):
    """--face with --align/--no-align, as `ops_report.alignment` takes it (`ops_report.face_choice`)."""
    from automod_cli.commands import ops_report

    return ops_report.face_choice(align, face)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.stem}{suffix}{path.suffix}")


def _mix_inputs(images: List[Path], rows: List[Path], cols: List[Path]) -> None:
    """One line for inputs that are neither two images (A B) nor a grid (--rows and --cols), saying what to pass."""
    if images and (rows or cols):
        flags = " and ".join(flag for flag, given in (("--rows", rows), ("--cols", cols)) if given)
        raise AutomodError(
            f"give either two images (A.png B.png) or --rows and --cols for a grid, not both: "
            f"{len(images)} image{'s' if len(images) != 1 else ''} and {flags} were given."
        )
    if rows or cols:
        if not (rows and cols):
            given, missing = ("--rows", "--cols") if rows else ("--cols", "--rows")
            raise AutomodError(
                f"a grid needs both --rows (the A images) and --cols (the B images): {given} was given "
                f"without {missing}."
            )
        return
    if len(images) != 2:
        given = (
            "no image was given"
            if not images
            else ("one image was given" if len(images) == 1 else f"{len(images)} images were given")
        )
        raise AutomodError(
            f"mix takes two images, A and B (B's scales replace A's), but {given}: pass "
            "A.png B.png, or --rows A/ --cols B/ for a grid."
        )


def _mix_spec(coarse: bool, mid: bool, fine: bool, layers: Optional[str]) -> str:
    chosen = [name for name, on in (("coarse", coarse), ("mid", mid), ("fine", fine)) if on]
    chosen += [layers] if layers is not None else []
    if len(chosen) > 1:
        raise AutomodError("choose one of --coarse, --mid, --fine or --layers i:j.")
    return chosen[0] if chosen else "coarse"  # the papers' first mixing figure (Supp. Fig. 14a)


def mix(
    images: Optional[List[Path]] = typer.Argument(
        None, help="A.png B.png (or codes, codes.npz:I): B's chosen scales replace A's."
    ),
    rows: List[Path] = typer.Option(
        [], "--rows", help="A images for a grid (files, folders or codes.npz[:I]; repeat the flag)."
    ),
    cols: List[Path] = typer.Option(
        [], "--cols", help="B images for a grid (files, folders or codes.npz[:I]; repeat the flag)."
    ),
    coarse: bool = typer.Option(False, "--coarse", help="Take B's coarse scales, 4²–8² (the default)."),
    mid: bool = typer.Option(False, "--mid", help="Take B's middle scales, 16²–32²."),
    fine: bool = typer.Option(False, "--fine", help="Take B's fine scales, 64² and up."),
    layers: Optional[str] = typer.Option(
        None, "--layers", help="Take B's blocks i..j-1 ('i:j', block b: 4·2^b px)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Output PNG (default mix.png, or mix-grid.png)."
    ),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    seed: int = SEED,
    noise: bool = NOISE,
    align: bool = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Style mixing: decode A with the chosen scales (decoder blocks) of B.

    Two images: writes the mixed image and a labelled 2×2 figure OUT-grid.png.

    --rows/--cols: a grid with B reconstructions on top, A reconstructions on the left, A with B's scales inside.

    The reconstruction error of each image in the figure (MSE, SSIM; LPIPS when its weights are here) is printed and
    written beside it as GRID.errors.csv.

    Example: automod mix a.png b.png --mid --model runs/demo

    Example: automod mix --rows faces/ --cols faces/ --coarse -o coarse-mix.png

    Example: automod mix faces.npz:0 faces.npz:3 --coarse    # codes from automod encode faces/ -o faces.npz
    """
    align = _face_choice(align, face)
    from automod_cli import ops
    from automod_cli.commands import ops_report
    from automod_cli.devices import pick_device
    from automod_cli.ops.report import errors_path

    grid_mode = bool(rows or cols)
    _mix_inputs(images or [], rows, cols)
    out = out if out is not None else Path("mix-grid.png" if grid_mode else "mix.png")
    outputs = [out] if grid_mode else [out, _sibling(out, "-grid")]
    spec = _mix_spec(coarse, mid, fine, layers)
    target = pick_device(device)
    a_items, b_items = (rows, cols) if grid_mode else ([images[0]], [images[1]])
    if grid_mode:
        a_sources, b_sources = _sources(a_items), _sources(b_items)
    else:
        a_sources, b_sources = _single(a_items[0], "A"), _single(b_items[0], "B")
    errors_file = (
        errors_path(outputs[-1]) if a_sources.images or b_sources.images else None
    )  # codes have no errors
    check_image_outputs(outputs, force)
    check_outputs([errors_file] if errors_file else [], force)
    opened = open_model(_model_of_codes(model, a_sources, b_sources), target, seed)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    blocks = ops.scale_range(net, spec, "style mixing")
    a_latents = _latents(net, notes, a_sources, align, not grid_mode)
    b_latents = _latents(net, notes, b_sources, align, not grid_mode)
    ops_report.say_unlike(notes)  # counted over A and B
    cells = ops.mix_grid(net, a_latents.z, b_latents.z, blocks, noise)
    columns = len(b_latents.z) + 1
    text = (
        f"Each cell: its row's A with {ops.scale_label(spec, blocks, net.block_levels)} of its column's B. "
        "Top row: B reconstructions; left column: A reconstructions."
    )
    if not grid_mode:
        _write(out, cells[3], force)
    _write(outputs[-1], ops.captioned_grid(cells, columns, text), force)
    if errors_file is not None:
        a_recon = cells[columns::columns]  # the left column below the blank corner
        errors = ops_report.reconstruction_errors(
            net,
            [
                ops_report.image_rows("A", a_latents, a_recon),
                ops_report.image_rows("B", b_latents, cells[1:columns]),
            ],
        )
        _write_errors(errors_file, errors, "Reconstruction errors in the grid", force)


def sample(
    n: int = typer.Option(16, "--n", min=1, help="Number of samples."),
    fix: Optional[Path] = typer.Option(
        None, "--fix", help="Keep this image's (or code's, codes.npz:I) --scales; draw the rest at random."
    ),
    scales: Optional[str] = SCALES,
    out: Path = typer.Option(
        Path("samples"),
        "--out",
        "-o",
        help="Folder for grid.png and sample-NNN.png (a name like s.png is refused: it is a folder).",
    ),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    seed: int = SEED,
    noise: bool = NOISE,
    align: bool = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Random samples, or conditional samples that keep some scales of an input (Supp. App. H).

    Example: automod sample --n 32 --model runs/demo

    Example: automod sample --fix face.png --scales coarse --n 15 -o pose-samples
    """
    align = _face_choice(align, face)
    import torch

    from automod_cli import ops
    from automod_cli.commands import ops_report
    from automod_cli.images import save_image

    if scales is not None and fix is None:
        raise AutomodError("--scales chooses what --fix IMG keeps: pass --fix IMG as well.")
    check_output_folder(out)
    files = [out / f"sample-{i:03d}.png" for i in range(n)]
    target = check_device_and_outputs(device, [out / "grid.png", *files], force)
    fixed = _single(fix, "--fix") if fix is not None else None
    opened = open_model(_model_of_codes(model, fixed), target, seed)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    generator = torch.Generator().manual_seed(seed)
    if fix is None:
        images = ops.sample(net, n, generator, noise)
        cells, text = images, f"{n} random samples (seed {seed})"
    else:
        spec = scales or "coarse"
        blocks = ops.scale_range(net, spec, "conditional sampling")
        latents = _latents(net, notes, fixed, align, exact=True)
        ops_report.say_unlike(notes)
        z_fixed = latents.z
        images = ops.conditional_sample(net, z_fixed, blocks, n, generator, noise)
        cells = torch.cat([ops.decode(net, z_fixed, noise), images])
        text = (
            f"First: reconstruction of {latents.names[0]}. The others keep "
            f"{ops.scale_label(spec, blocks, net.block_levels)} with random latents elsewhere (seed {seed})."
        )
    for path, image in zip(files, images):
        with writing(path):
            save_image(path, image.cpu(), overwrite=force)
    say(f"wrote {n} images to {out}/sample-NNN.png")
    _write(out / "grid.png", ops.captioned_grid(cells, min(SAMPLE_COLUMNS, len(cells)), text), force)


def _exemplars(pos: List[Path], neg: List[Path], vector: Optional[Path]):
    """Before the model: a readable --direction file, or the checked --pos and --neg exemplars."""
    from automod_cli import ops

    if vector is not None:
        if pos or neg:
            raise AutomodError("give either --direction FILE or --pos/--neg exemplars, not both.")
        ops.load_vector(
            vector
        )  # a readable direction; its length is checked against the model's latents later
        return None
    if not (pos and neg):
        raise AutomodError(
            "an attribute needs --pos DIR (images with it) and --neg DIR (without it), or --direction FILE."
        )
    return _sources(pos), _sources(neg)


def _vector(net: Automodulator, notes: InputNotes, exemplars, vector: Optional[Path], align: bool):
    """The attribute vector from --direction/--vector, or from --pos/--neg exemplars, and its description."""
    from automod_cli import ops

    if vector is not None:
        v, info = ops.load_vector(vector, net.config.latent_dim)
        if "positives" not in info:  # a torch-saved direction (e.g. the authors'), or one saved from it
            return v, info, f"direction {vector.name}"
        counts = f"{info.get('positives', '?')} with / {info.get('negatives', '?')} without"
        return v, info, f"vector {vector.name} ({counts})"
    positives = _latents(net, notes, exemplars[0], align).z
    negatives = _latents(net, notes, exemplars[1], align).z
    info = {"positives": str(len(positives)), "negatives": str(len(negatives))}
    v = ops.latent_difference(positives, negatives)
    return v, info, f"{len(positives)} with / {len(negatives)} without"


def edit(
    images: Optional[List[Path]] = typer.Argument(
        None, help="Images to edit (files, folders or codes.npz[:I])."
    ),
    pos: List[Path] = typer.Option(
        [], "--pos", help="Exemplars with the attribute (files, folders or codes.npz[:I]; 4 are enough)."
    ),
    neg: List[Path] = typer.Option(
        [], "--neg", help="Exemplars without the attribute (files, folders or codes.npz[:I])."
    ),
    vector: Optional[Path] = typer.Option(
        None,
        "--direction",
        "--vector",
        help="Use a saved direction: from --save-vector, or a torch-saved (D,) or "
        "(1, D) tensor such as the authors' smile_delta2.",
    ),
    save_vector: Optional[Path] = typer.Option(
        None, "--save-vector", help="Write the vector (.safetensors)."
    ),
    scales: Optional[str] = typer.Option(
        None, "--scales", help="Edit only coarse/mid/fine/blocks 'i:j' (default all)."
    ),
    strength: List[float] = typer.Option(
        [], "--strength", help="s in z + s·v; repeat for a strip (default -1…1)."
    ),
    out: Path = typer.Option(
        Path("edit.png"), "--out", "-o", help="Output PNG: per image, input then each strength."
    ),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    seed: int = SEED,
    noise: bool = NOISE,
    align: bool = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Attribute editing: add (mean latent of --pos) − (mean latent of --neg) to each image's latent (Supp. App. C).

    Example: automod edit face.png --pos smiling/ --neg neutral/ --scales mid --strength -1 --strength 1

    Example: automod edit --pos smiling/ --neg neutral/ --save-vector smile.safetensors

    Example: automod edit face.png --direction smile_delta2 --scales mid --model ffhq512
    """
    align = _face_choice(align, face)
    import torch

    from automod_cli import ops
    from automod_cli.commands import ops_report

    if not images and save_vector is None:
        raise AutomodError("nothing to do: give images to edit, --save-vector FILE, or both.")
    target = check_device_and_outputs(device, [out] if images else [], force, [out] if images else [])
    check_outputs([save_vector] if save_vector else [], force, "--save-vector path")
    exemplars = _exemplars(pos, neg, vector)
    inputs = _sources(images) if images else None
    model = _model_of_codes(model, inputs, *(exemplars or ()))
    opened = open_model(model, target, seed)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    blocks = ops.scale_range(net, scales, "editing chosen scales") if scales is not None else None
    v, info, source = _vector(net, notes, exemplars, vector, align)
    if save_vector is not None:
        with writing(save_vector):
            ops.save_vector(save_vector, v, {**info, "model": str(opened.checkpoint)}, overwrite=force)
        say(f"wrote {save_vector}")
    if not images:
        ops_report.say_unlike(notes)
        return
    latents = _latents(net, notes, inputs, align)
    ops_report.say_unlike(notes)  # counted over the images and every --pos and --neg
    x = ops.input_images(net, latents, noise)
    strengths = list(strength) or list(EDIT_STRENGTHS)
    edited = ops.edit(net, latents.z, v, strengths, blocks, noise).view(len(x), len(strengths), *x.shape[1:])
    cells = torch.cat([x.to(edited.device)[:, None], edited], dim=1).flatten(0, 1)
    where = ops.scale_label(scales, blocks, net.block_levels) if blocks is not None else "all layers"
    listed = ", ".join(f"{s:g}" for s in strengths)
    first = "input (a code's reconstruction)" if any(image is None for image in latents.images) else "input"
    text = f"Attribute vector from {source}, on {where}. Columns: {first}, then strength {listed}."
    _write(out, ops.captioned_grid(cells, len(strengths) + 1, text), force)


def interpolate(
    images: List[Path] = typer.Argument(
        ...,
        help="A B (a strip) or A B C D (corners: top-left, top-right, "
        "bottom-left, bottom-right): images, folders or codes.npz[:I].",
    ),
    steps: int = typer.Option(8, "--steps", min=2, help="Images along each side, ends included."),
    scales: Optional[str] = SCALES,
    gif: bool = typer.Option(False, "--gif", help="Also write an animation OUT.gif."),
    out: Path = typer.Option(Path("interpolation.png"), "--out", "-o", help="Output PNG."),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    seed: int = SEED,
    noise: bool = NOISE,
    align: bool = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Interpolate between 2 images (a strip) or 4 (a grid, Supp. Fig. 13) in the model's latent space: slerp on
    the automodulator's sphere, straight lines for Gaussian (VAE, WAE) and LIA latents.

    With --scales only those decoder blocks follow the path and the first image drives the rest.

    Example: automod interpolate a.png b.png --steps 10 --gif

    Example: automod interpolate a.png b.png c.png d.png --scales coarse

    Example: automod interpolate faces.npz:0 faces.npz:5    # codes from automod encode
    """
    align = _face_choice(align, face)
    from automod_cli import ops
    from automod_cli.commands import ops_report

    sources = ops.find_sources(images)
    if len(sources) not in (2, 4):
        raise AutomodError(
            f"interpolate takes 2 images (a strip) or 4 (corners of a grid), got {len(sources)}."
        )
    gif_path = out.with_suffix(".gif")
    target = check_device_and_outputs(device, [out] + ([gif_path] if gif else []), force, [out])
    sources = ops.check_sources(sources, exact=True)
    opened = open_model(_model_of_codes(model, sources), target, seed)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    blocks = ops.scale_range(net, scales, "interpolating chosen scales") if scales is not None else None
    latents = _latents(net, notes, sources, align, exact=True)
    ops_report.say_unlike(notes)
    z, names = latents.z, latents.names
    if len(z) == 2:
        cells, columns = ops.interpolate(net, z[0], z[1], steps, blocks, noise), steps
        frames = cells
    else:
        cells, columns = ops.interpolate_grid(net, z, steps, blocks, noise), steps
        frames = cells[ops.snake_order(steps, steps)]
    where = (
        f" on {ops.scale_label(scales, blocks, net.block_levels)}, the rest from {names[0]}"
        if blocks is not None
        else ""
    )
    text = f"Interpolation between {', '.join(names)}{where}; ends are reconstructions."
    _write(out, ops.captioned_grid(cells, columns, text), force)
    if gif:
        with writing(gif_path):
            ops.write_gif(gif_path, frames, overwrite=force)
        say(f"wrote {gif_path}")


def _write_errors(path: Path, errors: ErrorReport, title: str, force: bool) -> None:
    """The reconstruction errors as a table here and as CSV beside the figure."""
    from automod_cli.commands import ops_report
    from automod_cli.ops.report import write_csv

    with writing(path):
        write_csv(path, errors, overwrite=force)
    ops_report.show_errors(errors, title, path)


def reconstruct(
    images: List[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path = typer.Option(
        Path("reconstructions.png"),
        "--out",
        "-o",
        help="Output PNG; the errors go to OUT.errors.csv beside it.",
    ),
    batch: int = typer.Option(
        RECONSTRUCT_BATCH, "--batch", min=1, help="Images read and reconstructed at a time."
    ),
    model: Optional[Path] = MODEL,
    device: str = DEVICE,
    seed: int = SEED,
    noise: bool = NOISE,
    align: Optional[bool] = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
) -> None:
    """Encode and decode images; writes input | reconstruction pairs side by side, and each image's reconstruction
    error (MSE, SSIM, and LPIPS when its weights are here) as a table and as OUT.errors.csv. Files that are not
    usable images are skipped, one line each.

    Example: automod reconstruct photos/ --model runs/demo -o recon.png
    """
    align = _face_choice(align, face)
    from automod_cli import ops
    from automod_cli.commands import ops_report
    from automod_cli.ops.report import errors_path

    errors_file = errors_path(out)
    target = check_device_and_outputs(device, [out, errors_file], force, [out])
    inputs = checked_inputs(images)
    opened = open_model(model, target, seed)
    net, notes = opened.model, ops_report.InputNotes(opened.provenance)
    align = ops_report.alignment(notes, align)
    with progress_bars() as progress:
        done = ops.reconstruct_files(net, inputs, align, noise, batch, progress)
    report_skipped(done.used)
    ops_report.check(notes, align, done.images)
    ops_report.say_unlike(notes)
    pairs = ops.side_by_side(done.images, done.reconstructions)
    columns = 2 * min(PAIRS_PER_ROW, len(done.images))
    _write(out, ops.captioned_grid(pairs, columns, "Pairs of input | reconstruction."), force)
    names = [str(path) for path in done.used.paths]
    errors = ops_report.reconstruction_errors(net, [("", names, done.images, done.reconstructions)])
    _write_errors(errors_file, errors, "Reconstruction errors", force)
    say(ops_report.rate_line("reconstructed", len(done.images), done.seconds))  # the last line


def register(app: typer.Typer) -> None:
    app.command("mix")(mix)
    app.command("sample")(sample)
    app.command("edit")(edit)
    app.command("interpolate")(interpolate)
    app.command("reconstruct")(reconstruct)
