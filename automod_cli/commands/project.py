"""`automod project IMAGES` (invert images, files or folders, by optimisation, batch by batch) and `automod eval
project` (encoder vs projection, LPIPS over time, Supp. App. G): parse, call `ops.projection` / `metrics.inversion`,
report with rich."""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext, redirect_stdout
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer
from rich.table import Table

from automod_cli.commands.options import (
    ALIGN,
    CROP,
    DEVICE,
    FACE,
    FORCE,
    JSON,
    MODEL,
    NET,
    SEED,
    TEST_DATA,
    WEIGHTS,
    Crop,
    Net,
    Start,
    checked_inputs,
    open_model,
    progress_bars as _progress,
    report_skipped,
    torch_device as _device,
)
from automod_cli.console import console, say
from automod_cli.defaults import PROJECTION_IMAGES as DEFAULT_IMAGES, PROJECTION_LR as LEARNING_RATE
from automod_cli.defaults import PROJECTION_STEPS as DEFAULT_STEPS
from automod_cli.errors import AutomodError
from automod_cli.outputs import IMAGE_FORMATS, check_image_outputs, check_outputs

if TYPE_CHECKING:  # torch, the models and the metrics are imported when a command runs, never for --help
    import torch

    from automod_cli.commands import ops_report
    from automod_cli.commands.ops_report import InputNotes
    from automod_cli.locate import OpenedModel
    from automod_cli.metrics.inversion import CurvePoint, Speedup
    from automod_cli.ops.inputs import Inputs
    from automod_cli.ops.projection import ProjectionSettings
    from automod_cli.provenance import Provenance

STEPS = typer.Option(DEFAULT_STEPS, "--steps", min=0, help="Optimisation steps (App. G: up to 200).")
START = typer.Option(
    Start.encoder, "--start", help="Initial latent: encoder output (LIA), random, or mean training latent."
)
LR = typer.Option(LEARNING_RATE, "--lr", min=0.0, help="Adam learning rate for the latent.")
LOSS_NET = typer.Option(Net.vgg, "--loss-net", help="Perceptual loss network optimised (LIA: VGG features).")


class Distance(str, Enum):
    lpips = "lpips"
    mse = "mse"


DISTANCE = typer.Option(
    Distance.lpips,
    "--distance",
    help="What the projection minimises and reports: lpips (App. G; "
    "needs the LPIPS weight files) or mse (mean squared pixel error on [0, 1] intensities, as "
    "reconstruct reports it; needs nothing downloaded).",
)
PROJECT_CROP = typer.Option(
    None,
    "--crop",
    help="Image window the error is reported on: face (StyleGAN's, the "
    "papers'), center, none. Default: face for models trained on aligned faces (FFHQ, "
    "CelebA-HQ), else none.",
)


def default_crop(trained_on: Provenance) -> str:
    """`project`'s window when --crop is not given: StyleGAN's face window for models trained on aligned faces, the
    whole image for any other (or unrecorded) data."""
    return Crop.face.value if trained_on.aligned_faces else Crop.none.value


def _distances(net: Net, loss_net: Net, weights: List[Path], device: torch.device):
    """The report LPIPS (`--net`) and the loss LPIPS (`--loss-net`), their files found before any work."""
    from automod_cli.features import weights as weight_files
    from automod_cli.features.nets import LPIPS_NETS, lpips_distance

    needed = list({LPIPS_NETS[n.value].name: LPIPS_NETS[n.value] for n in (net, loss_net)}.values())
    paths = {
        w.name: weight_files.resolve_weights(w, weight_files.pick_explicit(weights, w, needed))
        for w in needed
    }
    report = lpips_distance(net.value, paths[LPIPS_NETS[net.value].name], device)
    loss = (
        report
        if loss_net == net
        else lpips_distance(loss_net.value, paths[LPIPS_NETS[loss_net.value].name], device)
    )
    return report, loss


def _mean(loaded: OpenedModel, start: Start) -> torch.Tensor | None:
    from automod_cli.metrics.data import mean_latent_of, reference_data

    return mean_latent_of(loaded.model, reference_data(loaded, None)) if start == Start.mean else None


def _curve_table(curve: list[CurvePoint], title: str, measure: str = "LPIPS") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("method", "steps", "seconds/image", measure, "std"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for p in curve:
        table.add_row(p.method, str(p.step), f"{p.seconds:.4f}", f"{p.lpips:.4f}", f"{p.std:.4f}")
    return table


def eval_project(
    model: Optional[Path] = MODEL,
    data: Optional[Path] = TEST_DATA,
    n: int = typer.Option(DEFAULT_IMAGES, "--n", min=1, help="Test images (App. G: 1000)."),
    steps: int = STEPS,
    start: Start = START,
    lr: float = LR,
    crop: Crop = CROP,
    net: Net = NET,
    loss_net: Net = LOSS_NET,
    batch: int = typer.Option(16, "--batch", min=1),
    weights: List[Path] = WEIGHTS,
    out: Path = typer.Option(Path("projection"), "--out", help="Writes OUT.csv and OUT.png."),
    force: bool = FORCE,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    """Direct encoding vs optimisation-based projection: LPIPS against wall time per image (Supp. App. G, Fig. 16),
    and how much faster the encoder is than projection reaching its LPIPS (with --start mean or random).

    Example: automod eval project --model runs/ffhq --data data/ffhq-test-256.h5 --n 1000 --steps 200
    """
    from automod_cli.metrics.data import unseen_data
    from automod_cli.metrics.inversion import encoder_speedup, inversion_curve, write_curve_csv
    from automod_cli.metrics.plot import time_curve_chart
    from automod_cli.ops.projection import ProjectionSettings

    csv_path, png_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".png")
    check_outputs([csv_path, png_path], force)
    import torch

    from automod_cli import locate

    torch.manual_seed(seed)
    loaded = locate.open_model(model, _device(device))
    report, loss = _distances(net, loss_net, weights, loaded.device)
    test = unseen_data(loaded, data)
    settings = ProjectionSettings(steps, lr, start=start.value)
    with _progress() as progress:
        curve = inversion_curve(
            loaded.model,
            test,
            loss,
            report,
            settings,
            n,
            batch,
            crop.value,
            seed,
            _mean(loaded, start),
            progress,
        )
    write_curve_csv(csv_path, curve)
    encoder, projection = curve[0], curve[1:]
    time_curve_chart(
        png_path,
        [p.seconds for p in projection],
        [p.lpips for p in projection],
        encoder.seconds,
        encoder.lpips,
        f"projection ({start.value} start)",
        "encoder",
        f"LPIPS-{net.value}",
    )
    speedup = (
        encoder_speedup(curve) if start != Start.encoder else None
    )  # from φ(x) it starts at the encoder's LPIPS
    if as_json:
        typer.echo(
            json.dumps(
                {"curve": [asdict(p) for p in curve], "encoder_speedup": speedup and asdict(speedup)},
                indent=2,
            )
        )
        return
    console.print(_curve_table(curve, f"{loaded.checkpoint}: {min(n, len(test))} images"))
    console.print(_speedup_line(speedup, curve[0], start))
    say(f"wrote {csv_path} and {png_path}")


def _speedup_line(speedup: Speedup | None, encoder: CurvePoint, start: Start) -> str:
    if start == Start.encoder:
        return (
            "encoder speed-up: starting from the encoder's output, projection begins at its LPIPS; use --start "
            "mean or random to compare (App. G)."
        )
    if speedup is None:
        return (
            "encoder speed-up: not measured (no projection steps, or the encoder's time was below the clock's "
            "resolution)."
        )
    reach = (
        f"projection reached the encoder's LPIPS {encoder.lpips:.4f} by step {speedup.step} "
        f"({speedup.seconds:.3g} s/image): the encoder ({encoder.seconds * 1000:.3g} ms/image) is "
        f"{speedup.ratio:,.0f}× faster"
    )
    if not speedup.reached:
        reach = (
            f"projection did not reach the encoder's LPIPS {encoder.lpips:.4f} in {speedup.step} steps "
            f"({speedup.seconds:.3g} s/image): the encoder ({encoder.seconds * 1000:.3g} ms/image) is more than "
            f"{speedup.ratio:,.0f}× faster"
        )
    return f"encoder speed-up: {reach}."


PROJECT_BATCH = 8  # images optimised together (independently: the loss is a sum of per-image terms)


def _outputs(items: List[Path], out: Optional[Path]) -> tuple[bool, Path, dict[Path, Path]]:
    """One image file → one output file (default IMAGE-projected.png); several or a folder → OUT/NAME-projected.png
    (default projected/). Returns (single, out, output of each input file)."""
    from automod_cli.ops.inputs import image_paths

    paths = image_paths(items)
    single = len(items) == 1 and not items[0].is_dir()
    if single:
        out = out if out is not None else Path(f"{paths[0].stem}-projected.png")
        return True, out, {paths[0]: out}
    out = out if out is not None else Path("projected")
    if out.suffix.lower() in IMAGE_FORMATS and not out.is_dir():
        raise AutomodError(f"several images are projected into a folder: give --out FOLDER, not '{out}'.")
    named: dict[Path, Path] = {}
    for path in paths:
        target = out / f"{path.stem}-projected.png"
        clash = next((other for other, there in named.items() if there == target and other != path), None)
        if clash is not None:
            raise AutomodError(
                f"'{clash}' and '{path}' would both be written to '{target}': project them separately."
            )
        named[path] = target
    return False, out, named


def _mean_point(method: str, step: int, seconds: float, distances: list[torch.Tensor]) -> CurvePoint:
    import torch

    from automod_cli.metrics.inversion import CurvePoint

    values = torch.cat(distances).double()
    return CurvePoint(
        method, step, seconds, float(values.mean()), float(values.std()) if len(values) > 1 else 0.0
    )


def _invert(
    net,
    notes: InputNotes,
    inputs: Inputs,
    loss,
    report,
    settings: ProjectionSettings,
    crop_mode: str,
    batch: int,
    seed: int,
    mean,
    align: ops_report.Align,
    write,
    progress,
) -> tuple[list[CurvePoint], torch.Tensor, Inputs]:
    """Project the files batch by batch (aligned as `align` says; each batch checked against the training data,
    `ops_report.check`), `write(path, image)` each result: the curve averaged over the images, the fitted latents
    (N, D) on the CPU and the files used (a file that fails only now is skipped)."""
    import torch

    from automod_cli.commands import ops_report
    from automod_cli.metrics.inversion import encoder_point, warm_up
    from automod_cli.ops.inputs import Inputs, load_inputs
    from automod_cli.ops.projection import project as fit

    device = next(net.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    encoder_seconds, encoder_distances, latents, warm = 0.0, [], [], set()
    seconds: dict[int, float] = {}
    distances: dict[int, list[torch.Tensor]] = {}
    used, skipped, upscaled, done = [], list(inputs.skipped), [], 0
    for i in range(0, len(inputs.paths), batch):
        chunk = inputs.paths[i : i + batch]
        x, loaded_files = load_inputs(Inputs(chunk), net.resolution, align, allow_none=True)
        ops_report.check(notes, align, x)
        skipped += loaded_files.skipped
        upscaled += loaded_files.upscaled
        done += len(chunk)
        if not len(x):
            continue
        x = x.to(device)
        if (
            len(x) not in warm
        ):  # the first batch, and a smaller last one: one-time costs stay out of the times
            warm_up(net, x, loss, report, settings, crop_mode, mean)
            warm.add(len(x))
        spent, values = encoder_point(net, x, report, crop_mode)
        encoder_seconds += spent * len(x)
        encoder_distances.append(values)
        result = fit(net, x, loss, report, settings, crop_mode, None, generator, mean, progress)
        for point in result.trace:
            seconds[point.step] = seconds.get(point.step, 0.0) + point.seconds * len(x)
            distances.setdefault(point.step, []).append(point.distances)
        for path, image in zip(loaded_files.paths, result.images):
            write(path, image)
        latents.append(result.latents.float().cpu())
        used += loaded_files.paths
        progress("projected images", done, len(inputs.paths))
    if not used:
        raise AutomodError(
            "none of the inputs could be used: " + "; ".join(f"'{p}' ({r})" for p, r in skipped[:3]) + "."
        )
    curve = [_mean_point("encoder", 0, encoder_seconds / len(used), encoder_distances)]
    curve += [_mean_point("projection", s, seconds[s] / len(used), distances[s]) for s in sorted(seconds)]
    return curve, torch.cat(latents), Inputs(used, skipped, upscaled)


def _json_curve(curve: list[CurvePoint], distance: Distance) -> list[dict]:
    """The curve for --json, each point's mean error under the name of the distance measured ('mse' or 'lpips')."""
    return [
        {"method": p.method, "step": p.step, "seconds": p.seconds, distance.value: p.lpips, "std": p.std}
        for p in curve
    ]


def project(
    images: List[Path] = typer.Argument(
        ...,
        help="Images to invert: files or folders (any size; centre-cropped and "
        "resized; unusable files are skipped, one line each).",
    ),
    model: Optional[Path] = MODEL,
    steps: int = STEPS,
    start: Start = START,
    lr: float = LR,
    crop: Optional[Crop] = PROJECT_CROP,
    net: Net = NET,
    loss_net: Net = LOSS_NET,
    weights: List[Path] = WEIGHTS,
    distance: Distance = DISTANCE,
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Output PNG for one image file (default: "
        "IMAGE-projected.png here); for several or a folder, the folder for "
        "NAME-projected.png (default: projected/).",
    ),
    batch: int = typer.Option(
        PROJECT_BATCH, "--batch", min=1, help="Images optimised together (each on its own)."
    ),
    codes: Optional[Path] = typer.Option(
        None,
        "--codes",
        help="Also write the fitted latents as a codes file (.npz) "
        "for mix, interpolate and edit (FILE.npz:N).",
    ),
    align: Optional[bool] = ALIGN,
    face: List[str] = FACE,
    force: bool = FORCE,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    """Invert images by optimising their latents (LIA Eq. 13) and show the error against time beside the encoder's,
    averaged over the images; ends with the time taken and images/s. Says what the model was trained on, and warns
    when the inputs look unlike it (with --json these lines go to stderr).

    Example: automod project face.png --model runs/ffhq --steps 200

    Example: automod project faces/ -o projected/ --codes faces-projected.npz --distance mse   # no LPIPS weights needed
    """
    from automod_cli.commands import ops_report
    from automod_cli.commands.ops_report import rate_line
    from automod_cli.features.nets import pixel_mse
    from automod_cli.images import save_image
    from automod_cli.ops.codes import model_identity, save_codes
    from automod_cli.ops.inputs import Inputs
    from automod_cli.ops.projection import ProjectionSettings

    align = ops_report.face_choice(align, face)
    target = _device(
        device
    )  # cheap things first: the device name, the outputs, the input files, then the model
    if codes is not None and codes.suffix.lower() != ".npz":
        raise AutomodError(f"--codes names an .npz file: e.g. '{codes.with_suffix('.npz').name}'.")
    single, out, targets = _outputs(images, out)
    (check_image_outputs if single else check_outputs)(targets.values(), force)
    if codes is not None:
        check_outputs([codes], force, "--codes")
    inputs = checked_inputs(images, exact=single)
    inputs = Inputs(list(dict.fromkeys(inputs.paths)), inputs.skipped)  # a file named twice is projected once
    with redirect_stdout(sys.stderr) if as_json else nullcontext():  # stdout holds the JSON alone
        opened = open_model(model, target, seed)  # says which model and what it was trained on
        model_net, checkpoint, trained_on = opened.model, opened.checkpoint, opened.provenance
        notes = ops_report.InputNotes(trained_on)
        crop_mode = crop.value if crop is not None else default_crop(trained_on)
        if distance == Distance.mse:
            report = loss = pixel_mse
        else:
            report, loss = _distances(net, loss_net, weights, target)
        settings = ProjectionSettings(steps, lr, start=start.value)
        mean = _mean(opened, start)
        identity = model_identity(model_net) if codes is not None else None
        align = ops_report.alignment(notes, align)

        def write(path: Path, image: torch.Tensor) -> None:
            save_image(targets[path], image.cpu(), overwrite=force)

        began = time.perf_counter()
        with _progress() as progress:
            curve, latents, used = _invert(
                model_net,
                notes,
                inputs,
                loss,
                report,
                settings,
                crop_mode,
                batch,
                seed,
                mean,
                align,
                write,
                progress,
            )
        elapsed = time.perf_counter() - began
        if codes is not None:
            save_codes(
                codes,
                latents,
                used.paths,
                identity,
                str(checkpoint),
                model_net.resolution,
                bool(align),
                overwrite=force,
            )
        report_skipped(used)
        ops_report.say_unlike(notes)  # inputs unlike the training data, counted over all batches
    outputs = [str(targets[path]) for path in used.paths]
    if as_json:
        summary = {
            "images": len(used.paths),
            "seconds": elapsed,
            "images_per_second": len(used.paths) / elapsed,
            "skipped": [[str(p), r] for p, r in used.skipped],
            "codes": str(codes) if codes else None,
        }
        measured = {
            "model": str(checkpoint),
            "trained_on": trained_on.to_dict(),
            "distance": distance.value,
            "net": net.value if distance == Distance.lpips else None,
            "crop": crop_mode,
        }
        typer.echo(
            json.dumps(
                {
                    **({"output": outputs[0]} if single else {}),
                    "outputs": outputs,
                    **measured,
                    "curve": _json_curve(curve, distance),
                    **summary,
                },
                indent=2,
            )
        )
        return
    measure = "pixel MSE" if distance == Distance.mse else f"LPIPS-{net.value}"
    where = f"{images[0]} → {out}" if single else f"{len(used.paths)} images → {out}/"
    console.print(
        _curve_table(
            curve, f"{where} ({measure}, {crop_mode} crop)", "MSE" if distance == Distance.mse else "LPIPS"
        )
    )
    console.print(rate_line("projected", len(used.paths), elapsed) + (f"; wrote {codes}" if codes else ""))


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Attach `automod eval project` (to the eval group, `commands/eval.py`) and the top-level `automod project`."""
    eval_app.command("project")(eval_project)
    app.command("project")(project)
