"""Direct encoding versus optimisation-based projection, as reconstruction LPIPS over wall time (Supp. App. G).

For N unseen images, the encoder's single pass gives one point (its time per image and the LPIPS of its
reconstruction); the projection gives a curve: LPIPS after each step budget against the time those steps took
per image. Both are timed after an untimed warm-up at each batch shape (`warm_up`). The supplement ran this on 1000
CelebA-HQ test images (Fig. 16).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from automod_cli.defaults import PROJECTION_IMAGES
from automod_cli.outputs import atomic_write
from automod_cli.features.crop import crop
from automod_cli.metrics.data import EvalData, image_batches
from automod_cli.features.nets import DistanceNet
from automod_cli.ops.projection import ProjectionSettings, project, record_steps, wall_clock
from automod_cli.models import Automodulator
from automod_cli.ops.reconstruct import ProgressCallback

DEFAULT_IMAGES = PROJECTION_IMAGES  # Supp. App. G: 1000 test images
DEFAULT_BATCH = 16


@dataclass(frozen=True)
class CurvePoint:
    method: str  # "encoder" or "projection"
    step: int  # optimisation steps (0 for the encoder)
    seconds: float  # wall time per image
    lpips: float  # mean over images
    std: float  # standard deviation over images


def _point(method: str, step: int, seconds: float, distances: torch.Tensor) -> CurvePoint:
    values = distances.double()
    std = float(values.std()) if len(values) > 1 else 0.0
    return CurvePoint(method, step, seconds, float(values.mean()), std)


def encoder_point(
    model: Automodulator, images: torch.Tensor, distance: DistanceNet, crop_mode: str
) -> tuple[float, torch.Tensor]:
    """Encoder time per image (one batched pass) and the distance of each image to its reconstruction."""
    with torch.inference_mode():
        began = wall_clock(images.device)
        z = model.encode(images)
        seconds = (wall_clock(images.device) - began) / len(images)
        fitted = model.decode(z, noise=False).clamp(-1, 1)
        return seconds, distance(crop(images, crop_mode), crop(fitted, crop_mode)).float().cpu()


def warm_up(
    model: Automodulator,
    images: torch.Tensor,
    loss_distance: DistanceNet,
    report_distance: DistanceNet,
    settings: ProjectionSettings,
    crop_mode: str,
    mean: torch.Tensor | None = None,
) -> None:
    """An untimed encoder pass and two projection steps on `images`. The first calls at a batch shape pay one-time
    costs (kernel selection and caches in oneDNN or cuDNN, memory pools, lazy CUDA initialisation): on the 2-core
    CPU the first projection steps of a 16² batch took 0.7–1.3 s against 0.03 s later, which would otherwise be
    charged to whichever method ran first. Uses its own random generator, so the timed runs draw as without it."""
    encoder_point(model, images, report_distance, crop_mode)
    project(
        model,
        images,
        loss_distance,
        report_distance,
        replace(settings, steps=min(2, settings.steps)),
        crop_mode,
        [],
        torch.Generator().manual_seed(0),
        mean,
    )


def inversion_curve(
    model: Automodulator,
    data: EvalData,
    loss_distance: DistanceNet,
    report_distance: DistanceNet,
    settings: ProjectionSettings = ProjectionSettings(),
    n: int = DEFAULT_IMAGES,
    batch_size: int = DEFAULT_BATCH,
    crop_mode: str = "face",
    seed: int = 0,
    mean: torch.Tensor | None = None,
    progress: ProgressCallback | None = None,
) -> list[CurvePoint]:
    """The encoder's point followed by the projection's curve, averaged over the first `n` images of `data`."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    steps = record_steps(settings.steps)
    encoder_seconds, encoder_distances = 0.0, []
    seconds = {s: 0.0 for s in steps}
    distances: dict[int, list[torch.Tensor]] = {s: [] for s in steps}
    done, warm = 0, set()
    for batch in image_batches(data, n, batch_size):
        batch = batch.to(device)
        if len(batch) not in warm:  # the first batch, and a smaller last one
            warm_up(model, batch, loss_distance, report_distance, settings, crop_mode, mean)
            warm.add(len(batch))
        spent, values = encoder_point(model, batch, report_distance, crop_mode)
        encoder_seconds += spent * len(batch)
        encoder_distances.append(values)
        fit = project(
            model, batch, loss_distance, report_distance, settings, crop_mode, steps, generator, mean
        )
        for point in fit.trace:
            seconds[point.step] += point.seconds * len(batch)
            distances[point.step].append(point.distances)
        done += len(batch)
        if progress is not None:
            progress("projected images", done, n)
    curve = [_point("encoder", 0, encoder_seconds / done, torch.cat(encoder_distances))]
    curve += [_point("projection", s, seconds[s] / done, torch.cat(distances[s])) for s in steps]
    return curve


@dataclass(frozen=True)
class Speedup:
    """How much faster one encoder pass is than projection reaching the encoder's mean LPIPS (App. G's claim)."""

    ratio: float  # projection time per image ÷ encoder time per image; a lower bound when not reached
    reached: bool  # whether a recorded step got to the encoder's mean LPIPS or below
    step: int  # the first recorded step that did, else the last step recorded
    seconds: float  # projection time per image at that step


def encoder_speedup(curve: list[CurvePoint]) -> Speedup | None:
    """From `inversion_curve`'s points: the first recorded projection step (after step 0) whose mean LPIPS is at
    most the encoder's, and its time over the encoder's. None without projection steps or a measurable encoder
    time. Steps are recorded on a coarse grid (1, 2, 5, 10, ...), so a reached ratio may overstate the time by up
    to the gap to the previous mark. Meaningful for projections that do not start from the encoder's output."""
    encoder, projection = curve[0], [p for p in curve[1:] if p.step > 0]
    if not projection or encoder.seconds <= 0:
        return None
    point = next((p for p in projection if p.lpips <= encoder.lpips), projection[-1])
    return Speedup(point.seconds / encoder.seconds, point.lpips <= encoder.lpips, point.step, point.seconds)


def write_curve_csv(path: Path, curve: list[CurvePoint]) -> None:
    """One row per point: method, step, seconds, lpips, std."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(asdict(curve[0])))
            writer.writeheader()
            writer.writerows(asdict(point) for point in curve)

    atomic_write(Path(path), write)
