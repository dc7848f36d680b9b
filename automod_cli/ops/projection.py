"""Optimisation-based inversion: fit a latent to an image by gradient descent (LIA Eq. 13, Supp. App. G).

The latent starts from the encoder's output (LIA's choice), from a random draw of the model's prior, or from the
mean latent (Image2StyleGAN's choice; here the mean encoding of training images, brought into the latent space),
and follows Adam on
    L(x, x̃) = d_perc(x, x̃) + λ_pix · mean((x − x̃)²),   x̃ = θ(z)
(LIA Eq. 7 with a perceptual distance network — LPIPS-VGG by default, LIA's VGG conv features — and a pixel
term), with z brought back into the model's latent space after every step (`model.constrain_latent`): onto the
unit sphere for the automodulator, whose decoder only knows unit latents; unchanged for Gaussian latents and for
LIA, where this is the per-image fine-tuning of y of LIA Eq. 13.
Images of a batch are fitted together but independently: the loss is a sum of per-image terms.

The supplement's comparison plots reconstruction LPIPS against wall time (Fig. 16), so the trace records the
report distance at chosen step counts together with the optimisation time spent so far per image (the time
of the start, e.g. one encoder pass, included; the time of the report evaluations excluded).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from automod_cli.defaults import PROJECTION_LR, PROJECTION_STEPS
from automod_cli.errors import AutomodError
from automod_cli.features.crop import crop
from automod_cli.features.nets import DistanceNet
from automod_cli.models import Automodulator
from automod_cli.ops.reconstruct import ProgressCallback

STARTS = ("encoder", "random", "mean")
DEFAULT_STEPS = PROJECTION_STEPS  # Supp. App. G runs the projector for up to 200 iterations
# Our choices (the papers give none for this latent space): Adam steps of ~0.005 per coordinate move a 512-d
# unit latent by ~0.1 rad, and the pixel term weighs about as much as LPIPS for typical errors.
LEARNING_RATE = PROJECTION_LR
PIXEL_WEIGHT = 1.0


@dataclass(frozen=True)
class ProjectionSettings:
    steps: int = DEFAULT_STEPS
    lr: float = LEARNING_RATE
    pixel_weight: float = PIXEL_WEIGHT
    start: str = "encoder"

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise AutomodError(f"unknown start '{self.start}': choose one of {', '.join(STARTS)}.")
        if self.steps < 0 or self.lr <= 0 or self.pixel_weight < 0:
            raise AutomodError("projection needs steps ≥ 0, a positive learning rate and a pixel weight ≥ 0.")


@dataclass(frozen=True)
class TracePoint:
    step: int
    seconds: float  # optimisation wall time per image up to this step
    distances: torch.Tensor  # report distance of each image at this step (CPU)


@dataclass(frozen=True)
class Projection:
    latents: torch.Tensor  # (N, D) latents after the last step
    images: torch.Tensor  # their reconstructions
    trace: list[TracePoint]


def record_steps(steps: int) -> list[int]:
    """Step counts to record on a roughly logarithmic grid: 0, 1, 2, 5, 10, 20, 50, ... and `steps` itself."""
    marks, scale = [0], 1
    while scale <= steps:
        marks += [m * scale for m in (1, 2, 5) if m * scale <= steps]
        scale *= 10
    return sorted(set(marks + [steps]))


def initial_latents(
    model: Automodulator,
    images: torch.Tensor,
    start: str,
    generator: torch.Generator | None = None,
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where the optimisation starts for each image."""
    with torch.no_grad():
        if start == "encoder":
            return model.encode(images)
        if start == "random":
            return model.sample_latents(len(images), generator).to(images.device)
        if mean is None:
            raise AutomodError("the 'mean' start needs the mean latent of training images.")
        return mean.to(images.device).expand(len(images), -1).clone()


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into `module`'s weights while the latent is optimised; their flags are restored after."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags):
            parameter.requires_grad_(flag)


def wall_clock(device: torch.device) -> float:
    """Seconds on a monotonic clock, after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def projection_loss(
    images: torch.Tensor, fitted: torch.Tensor, distance: DistanceNet, pixel_weight: float
) -> torch.Tensor:
    """Sum over images of d_perc(x, x̃) + λ_pix · mean((x − x̃)²)."""
    pixel = (images - fitted).pow(2).flatten(1).mean(1)
    return (distance(images, fitted) + pixel_weight * pixel).sum()


def project(
    model: Automodulator,
    images: torch.Tensor,
    loss_distance: DistanceNet,
    report_distance: DistanceNet,
    settings: ProjectionSettings = ProjectionSettings(),
    crop_mode: str = "face",
    record: list[int] | None = None,
    generator: torch.Generator | None = None,
    mean: torch.Tensor | None = None,
    progress: ProgressCallback | None = None,
) -> Projection:
    """Fit one latent per image; the report distance (on the crop) is recorded at the steps in `record`."""
    record = set(record_steps(settings.steps) if record is None else record)
    device = images.device
    trace: list[TracePoint] = []
    with _frozen(model):
        began = wall_clock(device)
        z = (
            initial_latents(model, images, settings.start, generator, mean)
            .detach()
            .clone()
            .requires_grad_(True)
        )
        elapsed = wall_clock(device) - began
        optimizer = torch.optim.Adam([z], lr=settings.lr)  # set-up cost, not optimisation time
        for step in range(settings.steps + 1):
            if step in record:
                with torch.no_grad():
                    fitted = model.decode(z, noise=False).clamp(-1, 1)
                    distances = (
                        report_distance(crop(images, crop_mode), crop(fitted, crop_mode)).float().cpu()
                    )
                trace.append(TracePoint(step, elapsed / len(images), distances))
            if step == settings.steps:
                break
            began = wall_clock(device)
            optimizer.zero_grad(set_to_none=True)
            projection_loss(
                images, model.decode(z, noise=False), loss_distance, settings.pixel_weight
            ).backward()
            optimizer.step()
            with torch.no_grad():
                z.copy_(model.constrain_latent(z))
            elapsed += wall_clock(device) - began
            if progress is not None:
                progress("projection steps", step + 1, settings.steps)
        with torch.no_grad():
            final = model.decode(z, noise=False).clamp(-1, 1)
    return Projection(z.detach(), final, trace)
