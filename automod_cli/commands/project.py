"""`automod project IMG` (invert one image by optimisation) and `automod eval project` (encoder vs projection,
LPIPS over time, Supp. App. G): parse, call `metrics.projection` / `metrics.inversion`, report with rich."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
import typer
from rich.table import Table

from automod_cli.commands.options import (CROP, DEVICE, FORCE, JSON, MODEL, NET, SEED, TEST_DATA, WEIGHTS, Crop, Net, Start,
                                          console, load_model_for_eval as _setup, progress_bars as _progress,
                                          refuse_overwrite as _check_outputs, torch_device as _device)
from automod_cli.errors import AutomodError
from automod_cli.images import from_uint8, save_image
from automod_cli.metrics import weights as weight_files
from automod_cli.metrics.data import LoadedModel, reference_data, unseen_data
from automod_cli.metrics.features import LPIPS_NETS, lpips_distance, pixel_mse
from automod_cli.metrics.inversion import (DEFAULT_IMAGES, CurvePoint, Speedup, encoder_point, encoder_speedup, inversion_curve,
                                          warm_up, write_curve_csv)
from automod_cli.metrics.plot import time_curve_chart
from automod_cli.ops.inputs import check_inputs
from automod_cli.outputs import check_outputs
from automod_cli.ops.projection import DEFAULT_STEPS, LEARNING_RATE, ProjectionSettings, mean_latent_of, project as fit

STEPS = typer.Option(DEFAULT_STEPS, "--steps", min=0, help="Optimisation steps (App. G: up to 200).")
START = typer.Option(Start.encoder, "--start", help="Initial latent: encoder output (LIA), random, or mean training latent.")
LR = typer.Option(LEARNING_RATE, "--lr", min=0.0, help="Adam learning rate for the latent.")
LOSS_NET = typer.Option(Net.vgg, "--loss-net", help="Perceptual loss network optimised (LIA: VGG features).")


class Distance(str, Enum):
    lpips = "lpips"
    mse = "mse"


DISTANCE = typer.Option(Distance.lpips, "--distance", help="What the projection minimises and reports: lpips (App. G; needs "
                        "the LPIPS weight files) or mse (mean squared pixel error; needs nothing downloaded).")


def _distances(net: Net, loss_net: Net, weights: List[Path], device: torch.device):
    """The report LPIPS (`--net`) and the loss LPIPS (`--loss-net`), their files found before any work."""
    needed = list({LPIPS_NETS[n.value].name: LPIPS_NETS[n.value] for n in (net, loss_net)}.values())
    paths = {w.name: weight_files.resolve_weights(w, weight_files.pick_explicit(weights, w, needed)) for w in needed}
    report = lpips_distance(net.value, paths[LPIPS_NETS[net.value].name], device)
    loss = report if loss_net == net else lpips_distance(loss_net.value, paths[LPIPS_NETS[loss_net.value].name], device)
    return report, loss


def _mean(loaded: LoadedModel, start: Start) -> torch.Tensor | None:
    return mean_latent_of(loaded.model, reference_data(loaded, None)) if start == Start.mean else None


def _load_image(path: Path, resolution: int) -> torch.Tensor:
    """Any image file as a (1, 3, R, R) tensor in [-1, 1]: RGB, centre-cropped square, resized to the model's R."""
    from data_prep.images import SkipImage, center_crop_square, load_rgb, resize_square

    try:
        picture = load_rgb(Path(path))
    except SkipImage as exc:
        raise AutomodError(f"cannot read '{path}' as an image ({exc}).") from None
    return from_uint8(np.array(resize_square(center_crop_square(picture), resolution)))[None]


def _curve_table(curve: list[CurvePoint], title: str, measure: str = "LPIPS") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("method", "steps", "seconds/image", measure, "std"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for p in curve:
        table.add_row(p.method, str(p.step), f"{p.seconds:.4f}", f"{p.lpips:.4f}", f"{p.std:.4f}")
    return table


def eval_project(
    model: Optional[Path] = MODEL, data: Optional[Path] = TEST_DATA,
    n: int = typer.Option(DEFAULT_IMAGES, "--n", min=1, help="Test images (App. G: 1000)."),
    steps: int = STEPS, start: Start = START, lr: float = LR, crop: Crop = CROP, net: Net = NET, loss_net: Net = LOSS_NET,
    batch: int = typer.Option(16, "--batch", min=1), weights: List[Path] = WEIGHTS,
    out: Path = typer.Option(Path("projection"), "--out", help="Writes OUT.csv and OUT.png."), force: bool = FORCE,
    device: str = DEVICE, seed: int = SEED, as_json: bool = JSON,
) -> None:
    """Direct encoding vs optimisation-based projection: LPIPS against wall time per image (Supp. App. G, Fig. 16),
    and how much faster the encoder is than projection reaching its LPIPS (with --start mean or random).

    Example: automod eval project --model runs/ffhq --data data/ffhq-test-256.h5 --n 1000 --steps 200
    """
    csv_path, png_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".png")
    _check_outputs([csv_path, png_path], force)
    loaded = _setup(model, device, seed)
    report, loss = _distances(net, loss_net, weights, loaded.device)
    test = unseen_data(loaded, data)
    settings = ProjectionSettings(steps, lr, start=start.value)
    with _progress() as progress:
        curve = inversion_curve(loaded.model, test, loss, report, settings, n, batch, crop.value, seed, _mean(loaded, start), progress)
    write_curve_csv(csv_path, curve)
    encoder, projection = curve[0], curve[1:]
    time_curve_chart(png_path, [p.seconds for p in projection], [p.lpips for p in projection], encoder.seconds, encoder.lpips,
                     f"projection ({start.value} start)", "encoder", f"LPIPS-{net.value}")
    speedup = encoder_speedup(curve) if start != Start.encoder else None  # from φ(x) it starts at the encoder's LPIPS
    if as_json:
        typer.echo(json.dumps({"curve": [asdict(p) for p in curve], "encoder_speedup": speedup and asdict(speedup)}, indent=2))
        return
    console.print(_curve_table(curve, f"{loaded.checkpoint}: {min(n, len(test))} images"))
    console.print(_speedup_line(speedup, curve[0], start))
    console.print(f"wrote {csv_path} and {png_path}")


def _speedup_line(speedup: Speedup | None, encoder: CurvePoint, start: Start) -> str:
    if start == Start.encoder:
        return "encoder speed-up: starting from the encoder's output, projection begins at its LPIPS; use --start mean or random to compare (App. G)."
    if speedup is None:
        return "encoder speed-up: not measured (no projection steps, or the encoder's time was below the clock's resolution)."
    reach = (f"projection reached the encoder's LPIPS {encoder.lpips:.4f} by step {speedup.step} ({speedup.seconds:.3g} s/image): "
             f"the encoder ({encoder.seconds * 1000:.3g} ms/image) is {speedup.ratio:,.0f}× faster")
    if not speedup.reached:
        reach = (f"projection did not reach the encoder's LPIPS {encoder.lpips:.4f} in {speedup.step} steps ({speedup.seconds:.3g} s/image): "
                 f"the encoder ({encoder.seconds * 1000:.3g} ms/image) is more than {speedup.ratio:,.0f}× faster")
    return f"encoder speed-up: {reach}."


def project(
    image: Path = typer.Argument(..., help="The image to invert (any size; centre-cropped and resized)."),
    model: Optional[Path] = MODEL, steps: int = STEPS, start: Start = START, lr: float = LR, crop: Crop = CROP,
    net: Net = NET, loss_net: Net = LOSS_NET, weights: List[Path] = WEIGHTS, distance: Distance = DISTANCE,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output PNG (default: IMAGE-projected.png here)."),
    force: bool = FORCE, device: str = DEVICE, seed: int = SEED, as_json: bool = JSON,
) -> None:
    """Invert one image by optimising its latent (LIA Eq. 13) and show the error against time beside the encoder's.

    Example: automod project face.png --model runs/ffhq --steps 200
    Example: automod project face.png --distance mse     # no LPIPS weights needed
    """
    out = out if out is not None else Path(f"{image.stem}-projected.png")
    _device(device)  # cheap things first: the device name, the output, the input file, then the model
    check_outputs([out], force)
    if image.is_dir():
        raise AutomodError(f"'{image}' is a folder: project inverts one image file at a time.")
    check_inputs([image], exact=True)
    loaded = _setup(model, device, seed)
    if distance == Distance.mse:
        report = loss = pixel_mse
    else:
        report, loss = _distances(net, loss_net, weights, loaded.device)
    target = _load_image(image, loaded.model.resolution).to(loaded.device)
    settings = ProjectionSettings(steps, lr, start=start.value)
    mean = _mean(loaded, start)
    warm_up(loaded.model, target, loss, report, settings, crop.value, mean)  # one-time costs stay out of the times
    encoder_seconds, encoder_distance = encoder_point(loaded.model, target, report, crop.value)
    generator = torch.Generator().manual_seed(seed)
    with _progress() as progress:
        result = fit(loaded.model, target, loss, report, settings, crop.value, None, generator, mean, progress)
    save_image(out, result.images[0], overwrite=force)
    curve = [CurvePoint("encoder", 0, encoder_seconds, float(encoder_distance[0]), 0.0)]
    curve += [CurvePoint("projection", p.step, p.seconds, float(p.distances[0]), 0.0) for p in result.trace]
    if as_json:
        typer.echo(json.dumps({"output": str(out), "curve": [asdict(p) for p in curve]}, indent=2))
        return
    measure = "pixel MSE" if distance == Distance.mse else f"LPIPS-{net.value}"
    console.print(_curve_table(curve, f"{image} → {out} ({measure}, {crop.value} crop)", "MSE" if distance == Distance.mse else "LPIPS"))
