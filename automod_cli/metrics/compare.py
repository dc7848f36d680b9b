"""Several models, several metrics, one table laid out like NeurIPS Table 2a: a row per model, a column per
metric (LPIPS on test images, FID, FID of mixtures, PPL), each with its paper protocol unless `n` says less.
Models of every kind (automodulator, PIONEER, VAE, WAE, LIA) are measured alike, each sampling from and
interpolating in its own latent space (`sample_latents`, `interpolate_latents`).

The pretrained networks are built once, when the first metric needs them, and shared by every model.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from automod_cli.checkpoint import atomic_write
from automod_cli.errors import AutomodError
from automod_cli.metrics import fid as fid_metric
from automod_cli.metrics import lpips_recon, ppl
from automod_cli.metrics.data import LoadedModel, Progress, load_for_eval, reference_data, unseen_data
from automod_cli.metrics.features import DistanceNet, FeatureExtractor

METRICS = ("lpips", "fid", "fid-mix", "ppl")
DEFAULT_COUNTS = {  # NeurIPS Sec. 4 and Supp. App. A
    "lpips": 10_000,  # FFHQ test images
    "fid": fid_metric.DEFAULT_SAMPLES,
    "fid-mix": fid_metric.DEFAULT_SAMPLES,
    "ppl": ppl.DEFAULT_SAMPLES,
}


@dataclass
class Networks:
    """Factories for the feature extractor and the LPIPS network; each is built on first use and kept."""

    make_extractor: Callable[[], FeatureExtractor]
    make_distance: Callable[[], DistanceNet]
    _built: dict = field(default_factory=dict)

    def extractor(self) -> FeatureExtractor:
        if "extractor" not in self._built:
            self._built["extractor"] = self.make_extractor()
        return self._built["extractor"]

    def distance(self) -> DistanceNet:
        if "distance" not in self._built:
            self._built["distance"] = self.make_distance()
        return self._built["distance"]


@dataclass(frozen=True)
class CompareSettings:
    n: int | None = None  # None: each metric's protocol count (DEFAULT_COUNTS)
    data: Path | None = None  # FID reference; None: each model's training data
    test_data: Path | None = None  # LPIPS test images; None: the built-in test split for built-in models
    crop: str = "face"
    seed: int = 0
    batch_size: int = 32
    cache_dir: Path | None = None


@dataclass(frozen=True)
class ComparisonRow:
    model: str
    kind: str  # automod, pioneer, vae, wae or lia
    values: dict[str, float]


def applicable(metric: str, model: torch.nn.Module) -> bool:
    """Whether `model` can be measured by `metric`: FID-mix needs a decoder that mixes (not PIONEER's classic one),
    LPIPS an encoder (a LIA model after stage 1 only has none)."""
    if metric == "fid-mix":
        return model.supports_mixing
    if metric == "lpips":
        return getattr(model, "has_encoder", True)
    return True


def count_for(metric: str, settings: CompareSettings, available: int | None = None) -> int:
    """How many images/samples a metric uses: `n`, else the protocol's count; never more than `available`."""
    count = settings.n if settings.n is not None else DEFAULT_COUNTS[metric]
    return min(count, available) if available is not None else count


def evaluate(metric: str, loaded: LoadedModel, networks: Networks, settings: CompareSettings, progress: Progress | None = None) -> float:
    """One metric of one model."""
    model = loaded.model
    if metric in ("fid", "fid-mix"):
        reference = reference_data(loaded, settings.data)
        result = fid_metric.fid(model, reference, networks.extractor(), count_for(metric, settings), settings.batch_size,
                                settings.seed, metric == "fid-mix", settings.cache_dir, progress)
        return result.fid
    if metric == "lpips":
        data = unseen_data(loaded, settings.test_data)
        return lpips_recon.reconstruction_lpips(model, data, networks.distance(), count_for(metric, settings, len(data)),
                                                settings.crop, settings.batch_size, progress).lpips
    if metric == "ppl":
        return ppl.perceptual_path_length(model, networks.distance(), count_for(metric, settings), crop_mode=settings.crop,
                                          batch_size=settings.batch_size, seed=settings.seed, progress=progress).ppl
    raise AutomodError(f"unknown metric '{metric}': choose from {', '.join(METRICS)}.")


def compare(models: list[Path], metrics: list[str], networks: Networks, settings: CompareSettings,
            device: str | torch.device = "cpu", progress: Progress | None = None) -> list[ComparisonRow]:
    """Evaluate every metric on every model; a metric a model cannot do (`applicable`, e.g. FID-mix of a classic
    decoder) is NaN."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise AutomodError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(METRICS)}.")
    rows = []
    for path in models:
        loaded = load_for_eval(path, device)
        values = {metric: evaluate(metric, loaded, networks, settings, progress) if applicable(metric, loaded.model)
                  else math.nan for metric in metrics}
        rows.append(ComparisonRow(str(path), loaded.kind, values))
    return rows


def rows_as_dicts(rows: list[ComparisonRow]) -> list[dict]:
    """JSON/CSV-ready rows; NaN (metric not applicable) becomes None."""
    return [{"model": row.model, "kind": row.kind, **{k: (None if math.isnan(v) else v) for k, v in row.values.items()}}
            for row in rows]


def write_csv(path: Path, rows: list[ComparisonRow], metrics: list[str]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["model", "kind", *metrics])
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows_as_dicts(rows))

    atomic_write(Path(path), write)


def write_json(path: Path, rows: list[ComparisonRow]) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(rows_as_dicts(rows), indent=2) + "\n"))
