"""How far each reconstruction is from its input: MSE and SSIM always, LPIPS when its weights are on this machine.

The numbers describe the images as they are written: input and reconstruction are both quantised to 8 bits, as
in the PNG files, and compared on pixel values in [0, 1].
- MSE: the mean squared difference over pixels and colour channels (0 for identical images, at most 1).
- SSIM: structural similarity with the standard settings (`automod_cli.features.ssim`; 1 for identical
  images); needs images of at least 11×11 pixels and is left out below that.
- LPIPS (AlexNet, lower is closer): only when the AlexNet weights `alexnet-owt-7be5be79.pth` are already on this
  machine ($AUTOMOD_ALEXNET_WEIGHTS, or torch's hub cache; docs/evaluation.md) and images have at least 32 pixels
  a side. Nothing is downloaded here: without them the report says why LPIPS is missing and goes on.

`write_csv` writes one row per image, atomically, and never replaces an existing file unless told to.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from automod_cli.errors import AutomodError
from automod_cli.features import nets, weights
from automod_cli.features.ssim import ssim
from automod_cli.outputs import atomic_write, refuse_overwrite

DistanceNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METRICS = ("mse", "ssim", "lpips")
SSIM_MIN_SIDE = 11  # SSIM's Gaussian window
LPIPS_MIN_SIDE = 32  # AlexNet's pooling runs out of pixels below this
LPIPS_BATCH = 16  # image pairs per LPIPS pass: bounds memory for large folders


def as_written(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) images in [-1, 1] as the 8-bit values an image file holds, on [0, 1], float64 on the CPU."""
    levels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return levels.double() / 255.0


def image_errors(
    images: torch.Tensor,
    reconstructions: torch.Tensor,
    distance: Optional[DistanceNet] = None,
    device: torch.device | str = "cpu",
) -> dict[str, Optional[torch.Tensor]]:
    """Per image pair: 'mse', 'ssim' (None below 11 pixels a side) and 'lpips' (None without `distance`, which runs
    on `device`), (N,) float64 each, on the CPU."""
    x, y = as_written(images), as_written(reconstructions)
    errors: dict[str, Optional[torch.Tensor]] = {"mse": (x - y).pow(2).flatten(1).mean(1)}
    errors["ssim"] = ssim(x, y, data_range=1.0) if min(x.shape[-2:]) >= SSIM_MIN_SIDE else None
    errors["lpips"] = None
    if distance is not None:
        with torch.inference_mode():
            pairs = zip((x * 2 - 1).float().split(LPIPS_BATCH), (y * 2 - 1).float().split(LPIPS_BATCH))
            errors["lpips"] = torch.cat(
                [distance(a.to(device), b.to(device)).double().cpu() for a, b in pairs]
            )
    return errors


def _alexnet_file() -> Optional[Path]:
    """The AlexNet weight file if it is on this machine (environment variable, then torch's hub cache)."""
    given = os.environ.get(weights.ALEXNET.env_var)
    if given:
        return Path(given).expanduser()
    cached = weights.cache_dir() / weights.ALEXNET.name
    return cached if cached.is_file() else None


def local_lpips(resolution: int, device: torch.device | str = "cpu") -> tuple[Optional[DistanceNet], str]:
    """LPIPS (AlexNet) when its weights are here, never downloading them; else None and a note saying why."""
    if resolution < LPIPS_MIN_SIDE:
        return None, f"LPIPS needs images of at least {LPIPS_MIN_SIDE}² (this model makes {resolution}²)."
    path = _alexnet_file()
    if path is None:
        return None, (
            f"LPIPS left out: its AlexNet weights {weights.ALEXNET.name} are not on this machine (put them "
            f"in {weights.cache_dir()} or set {weights.ALEXNET.env_var}; docs/evaluation.md)."
        )
    try:
        return nets.lpips_distance("alex", path, device), ""
    except AutomodError as exc:
        return None, f"LPIPS left out: {exc}"


@dataclass
class ErrorReport:
    """Reconstruction errors, one row per input image, in input order."""

    names: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # e.g. 'A'/'B' in a mix; '' where the command has one kind
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    note: str = ""  # why a metric is missing, when one is

    def add(self, names: list[str], errors: dict[str, Optional[torch.Tensor]], role: str = "") -> None:
        self.names += names
        self.roles += [role] * len(names)
        for metric in METRICS:
            column = errors.get(metric)
            self.values[metric] += column.tolist() if column is not None else [math.nan] * len(names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def metrics(self) -> list[str]:
        """The metrics that have a value for some image."""
        return [m for m in METRICS if any(not math.isnan(v) for v in self.values[m])]

    def mean(self, metric: str) -> float:
        return sum(self.values[metric]) / len(self) if len(self) else math.nan

    def worst(self, k: int) -> list[int]:
        """Indices of the k images with the highest MSE, worst first."""
        return sorted(range(len(self)), key=lambda i: -self.values["mse"][i])[:k]

    def rows(self) -> list[dict[str, object]]:
        out = []
        for i, name in enumerate(self.names):
            row: dict[str, object] = {"index": i, "file": name}
            if any(self.roles):
                row = {"index": i, "role": self.roles[i], "file": name}
            row.update(
                {
                    m: ("" if math.isnan(self.values[m][i]) else f"{self.values[m][i]:.8g}")
                    for m in self.metrics
                }
            )
            out.append(row)
        return out


def errors_path(output: Path) -> Path:
    """Where the errors of an output image go: beside it, after its whole name (recon.png → recon.png.errors.csv, so
    the errors of recon.webp do not clash with those of recon.png)."""
    output = Path(output)
    return output.with_name(f"{output.name}.errors.csv")


def write_csv(path: Path, report: ErrorReport, overwrite: bool = False) -> Path:
    """The report as CSV (index, [role,] file, mse, ssim[, lpips]), written atomically; an existing file is kept
    unless `overwrite`."""
    path = Path(path)
    refuse_overwrite(path, overwrite)
    rows = report.rows()

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["index", "file"])
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)
    return path
