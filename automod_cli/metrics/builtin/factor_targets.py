"""What the factor network learns to predict from a built-in image: its factors, as regression and class targets.

- Continuous factors are regressed after standardising each to zero mean and unit variance over the training
  images: centre, size, aspect, horizon height and tilt, saturations and values, texture frequency and contrast,
  grain amplitude.
- Angles are regressed as (sin kθ, cos kθ), so 0 and 2π are the same target. Hues use k = 1 on 2π·hue. An angle
  is only visible up to the symmetry of what it turns, so k is a multiple of that symmetry's order: the shape's
  rotation uses k = 2 for the disc (stretched by the aspect into an ellipse), 4 for the square and the cross,
  3 for the triangle, 5 for the star (a square or cross stretched by its aspect repeats only every half turn,
  so its target cannot tell a quarter turn: the price of one k per kind). The texture angle uses k = 2: half a
  turn at another phase draws the same stripes or checker, and the phase is not predicted.
- Discrete factors are classified: the shape kind and the texture kind.
- Not predicted: the texture phase (a shift of the texture under the shape) and the grain seed (which pattern of
  noise), nuisances no summary of an image set should depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from data_prep.builtin import SHAPE_KINDS, TEXTURE_KINDS, Factors

REGRESSED = (
    "center_x",
    "center_y",
    "size",
    "aspect",
    "horizon_height",
    "horizon_tilt",
    "shape_saturation",
    "shape_value",
    "sky_saturation",
    "sky_value",
    "ground_saturation",
    "ground_value",
    "texture_frequency",
    "texture_contrast",
    "grain_amplitude",
)
HUES = ("shape_hue", "sky_hue", "ground_hue")
ROTATION_ORDER = {"disc": 2, "square": 4, "triangle": 3, "star": 5, "cross": 4}
TEXTURE_ORDER = 2
CLASSES = {"shape_kind": len(SHAPE_KINDS), "texture_kind": len(TEXTURE_KINDS)}

NUM_CONTINUOUS = len(REGRESSED) + 2 * len(HUES) + 2 + 2  # + (sin, cos) of rotation and of texture angle
NUM_OUTPUTS = NUM_CONTINUOUS + sum(CLASSES.values())


def _sin_cos(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


@dataclass(frozen=True)
class Targets:
    """Training targets of a batch of images: continuous (N, NUM_CONTINUOUS) and class indices per discrete factor."""

    continuous: torch.Tensor
    classes: dict[str, torch.Tensor]

    def __getitem__(self, rows: torch.Tensor) -> "Targets":
        return Targets(self.continuous[rows], {name: labels[rows] for name, labels in self.classes.items()})


def encode_targets(factors: Factors, mean: np.ndarray, std: np.ndarray) -> Targets:
    """The targets of `factors`, with the regressed columns standardised by `mean` and `std` (len(REGRESSED),)."""
    regressed = (np.stack([factors.column(name) for name in REGRESSED], axis=1) - mean) / std
    hues = [_sin_cos(2 * np.pi * factors.column(name)) for name in HUES]
    shape_kind = factors.column("shape_kind").astype(int)
    texture_kind = factors.column("texture_kind").astype(int)
    rotation_order = np.array([ROTATION_ORDER[name] for name in SHAPE_KINDS])[shape_kind]
    rotation = _sin_cos(rotation_order * factors.column("rotation"))
    texture_angle = _sin_cos(TEXTURE_ORDER * factors.column("texture_angle"))
    continuous = np.concatenate([regressed, *hues, rotation, texture_angle], axis=1)
    return Targets(
        torch.from_numpy(continuous).to(torch.float32),
        {"shape_kind": torch.from_numpy(shape_kind), "texture_kind": torch.from_numpy(texture_kind)},
    )


def standardisation(factors: Factors) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each regressed factor over `factors` (the training images)."""
    columns = np.stack([factors.column(name) for name in REGRESSED], axis=1)
    return columns.mean(axis=0), columns.std(axis=0)


def factor_loss(outputs: torch.Tensor, targets: Targets) -> torch.Tensor:
    """Mean squared error over the continuous targets plus the cross-entropy of each discrete factor."""
    loss = F.mse_loss(outputs[:, :NUM_CONTINUOUS], targets.continuous)
    start = NUM_CONTINUOUS
    for name, count in CLASSES.items():
        loss = loss + F.cross_entropy(outputs[:, start : start + count], targets.classes[name])
        start += count
    return loss
