"""Several models, several metrics, one table laid out like NeurIPS Table 2a: a row per model, a column per
metric, each with its protocol unless `n` says less.

Two families of metrics fill the columns:

- the papers' (LPIPS of test reconstructions, FID, FID of mixtures, PPL), which stand on pretrained Inception and
  LPIPS weights;
- the built-in dataset's, which need no downloaded network and apply only to models trained on the built-in data:
  reconstruction MSE / SSIM of held-out images and the ground-truth mixing MSE / SSIM (`ground_truth.py`; A's
  latent drives the coarse blocks, as `automod eval mix-truth` by default), and FD_builtin of samples and of
  mixtures (`fd_builtin.py`).

Models of every kind (automodulator, PIONEER, VAE, WAE, LIA) are measured alike, each sampling from and
interpolating in its own latent space. A metric a model cannot do (a mix with a classic decoder, a
reconstruction without an encoder) leaves its cell empty and records why.

Runs of one configuration trained with different seeds form a named group: every run is measured on its own,
and the group reports the mean and the sample standard deviation (ddof = 1) of its runs' values.

Cells that decode with layer noise (FID, FD_builtin) restart torch's global generator from the seed just before
they measure, so every cell equals what the single `automod eval` command gives with the same seed, count and
batch size, whatever else the table holds. The networks the metrics stand on are built once, when the first
metric needs them, and shared by every model.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from automod_cli.checkpoint import atomic_write, find_checkpoint, model_kind, read_meta
from automod_cli.errors import AutomodError
from automod_cli.metrics import lpips_recon, ppl
from automod_cli.metrics.builtin import fd_builtin, ground_truth
from automod_cli.metrics import fid as fid_metric
from automod_cli.metrics.data import LoadedModel, Progress, load_for_eval, reference_data, unseen_data
from automod_cli.metrics.features import DistanceNet, FeatureExtractor
from automod_cli.metrics.builtin.ssim import WINDOW
from automod_cli.ops.scales import scale_range

PAPER_METRICS = ("lpips", "fid", "fid-mix", "ppl")
BUILTIN_METRICS = ("recon-mse", "recon-ssim", "mix-mse", "mix-ssim", "fd-builtin", "fd-builtin-mix")
METRICS = PAPER_METRICS + BUILTIN_METRICS
METRIC_SETS = {"paper": PAPER_METRICS, "builtin": BUILTIN_METRICS}  # shorthands for --metrics
HIGHER_IS_BETTER = frozenset({"recon-ssim", "mix-ssim"})  # every other metric: smaller is better
MIX_SCALES = "coarse"  # A's blocks in mix-mse / mix-ssim: the layout the renderer's truth takes from A
DEFAULT_COUNTS = {  # NeurIPS Sec. 4 and Supp. App. A; the built-in test split for the built-in metrics
    "lpips": 10_000,  # FFHQ test images
    "fid": fid_metric.DEFAULT_SAMPLES,
    "fid-mix": fid_metric.DEFAULT_SAMPLES,
    "ppl": ppl.DEFAULT_SAMPLES,
    "recon-mse": ground_truth.TEST_COUNT,
    "recon-ssim": ground_truth.TEST_COUNT,
    "mix-mse": ground_truth.MAX_PAIRS,
    "mix-ssim": ground_truth.MAX_PAIRS,
    "fd-builtin": fd_builtin.DEFAULT_SAMPLES,
    "fd-builtin-mix": fd_builtin.DEFAULT_SAMPLES,
}
MIXING_METRICS = frozenset({"fid-mix", "mix-mse", "mix-ssim", "fd-builtin-mix"})
ENCODING_METRICS = frozenset({"lpips", "recon-mse", "recon-ssim", "mix-mse", "mix-ssim"})
TRUTH_METRICS = frozenset({"recon-mse", "recon-ssim", "mix-mse", "mix-ssim"})


@dataclass
class Networks:
    """Factories for the Inception features, the LPIPS network and (per resolution) the factor-network features;
    each is built on first use and kept."""

    make_extractor: Callable[[], FeatureExtractor]
    make_distance: Callable[[], DistanceNet]
    make_factor_features: Callable[[int, Progress | None], FeatureExtractor]
    _built: dict = field(default_factory=dict)

    def _get(self, key, make: Callable[[], object]):
        if key not in self._built:
            self._built[key] = make()
        return self._built[key]

    def extractor(self) -> FeatureExtractor:
        return self._get("extractor", self.make_extractor)

    def distance(self) -> DistanceNet:
        return self._get("distance", self.make_distance)

    def factor_features(self, resolution: int, progress: Progress | None = None) -> FeatureExtractor:
        return self._get(("factor", resolution), lambda: self.make_factor_features(resolution, progress))


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
    """One run's values (NaN: not measured) and, per empty cell, why."""

    model: str
    kind: str  # automod, pioneer, vae, wae or lia
    values: dict[str, float]
    missing: dict[str, str] = field(default_factory=dict)
    group: str | None = None


@dataclass(frozen=True)
class GroupSummary:
    """Mean and sample standard deviation (ddof = 1) over the runs of a group, per metric."""

    name: str
    kind: str
    runs: list[str]
    mean: dict[str, float]
    std: dict[str, float]
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]  # every run, grouped ones included, in the order given
    groups: list[GroupSummary]


def missing_reason(metric: str, model: torch.nn.Module) -> str | None:
    """Why `model` cannot be measured by `metric`, or None when it can."""
    if metric in MIXING_METRICS and not model.supports_mixing:
        return "a classic decoder takes one latent for every layer: it cannot mix"
    if metric in ENCODING_METRICS and not getattr(model, "has_encoder", True):
        return "the model has no encoder (a LIA model after stage 1 only)"
    if metric in TRUTH_METRICS and model.resolution < WINDOW:
        return f"the model's {model.resolution}² images are smaller than the {WINDOW}×{WINDOW} window of the ground-truth SSIM"
    return None


def count_for(metric: str, settings: CompareSettings, available: int | None = None) -> int:
    """How many images/samples a metric uses: `n`, else the protocol's count; never more than `available`."""
    count = settings.n if settings.n is not None else DEFAULT_COUNTS[metric]
    return min(count, available) if available is not None else count


def require_builtin(checkpoint: Path, trained_on: Path | str | None, what: str = "the ground-truth metrics") -> None:
    """Refuse a model that was not trained on the built-in dataset (its checkpoint records a data file)."""
    if trained_on is not None:
        raise AutomodError(f"'{checkpoint}' was trained on '{trained_on}'; {what} need a model trained on the built-in "
                           "dataset (automod train without --data).")


def evaluate(metric: str, loaded: LoadedModel, networks: Networks, settings: CompareSettings,
             progress: Progress | None = None) -> float:
    """One paper or FD_builtin metric of one model (the ground-truth scores come in pairs: `truth_scores`)."""
    model, count = loaded.model, count_for(metric, settings)
    if metric in ("fid", "fid-mix"):
        reference, extractor = reference_data(loaded, settings.data), networks.extractor()
        torch.manual_seed(settings.seed)
        return fid_metric.fid(model, reference, extractor, count, settings.batch_size, settings.seed,
                              metric == "fid-mix", settings.cache_dir, progress).fid
    if metric in ("fd-builtin", "fd-builtin-mix"):
        extractor = networks.factor_features(model.resolution, progress)
        torch.manual_seed(settings.seed)
        return fd_builtin.fd_builtin(model, extractor, count, settings.batch_size, settings.seed,
                                     metric == "fd-builtin-mix", settings.cache_dir, progress).fid
    if metric == "lpips":
        data, distance = unseen_data(loaded, settings.test_data), networks.distance()
        return lpips_recon.reconstruction_lpips(model, data, distance, count_for(metric, settings, len(data)),
                                                settings.crop, settings.batch_size, progress).lpips
    if metric == "ppl":
        return ppl.perceptual_path_length(model, networks.distance(), count, crop_mode=settings.crop,
                                          batch_size=settings.batch_size, seed=settings.seed, progress=progress).ppl
    raise AutomodError(f"unknown metric '{metric}': choose from {', '.join(METRICS)}.")


def truth_scores(family: str, loaded: LoadedModel, settings: CompareSettings,
                 progress: Progress | None = None) -> ground_truth.Scores:
    """MSE and SSIM against the built-in ground truth: 'recon' (held-out reconstructions, as `eval recon-truth`) or
    'mix' (mixes against render(combine(A, B)), A on the coarse blocks, as `eval mix-truth`)."""
    model = loaded.model
    if family == "recon":
        count = count_for("recon-mse", settings, ground_truth.TEST_COUNT)
        return ground_truth.reconstruction_error(ground_truth.model_reconstructor(model), count, model.resolution,
                                                 settings.batch_size, progress=progress).reconstruction
    blocks = scale_range(model, MIX_SCALES, "the ground-truth mixing error")
    pairs = ground_truth.truth_pairs(count_for("mix-mse", settings, ground_truth.MAX_PAIRS), model.resolution)
    return ground_truth.mixing_error(ground_truth.model_mixer(model, blocks), pairs, settings.batch_size, progress).truth


def measure(loaded: LoadedModel, metrics: list[str], networks: Networks, settings: CompareSettings,
            progress: Progress | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """Every metric of one model: (values, NaN where not measured; why, per empty cell). One reconstruction
    (mixing) pass serves both its MSE and its SSIM cell."""
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    truths: dict[str, ground_truth.Scores] = {}
    for metric in metrics:
        reason = missing_reason(metric, loaded.model)
        if reason is not None:
            values[metric], missing[metric] = math.nan, reason
        elif metric in TRUTH_METRICS:
            family, score = metric.split("-")
            if family not in truths:
                truths[family] = truth_scores(family, loaded, settings, progress)
            values[metric] = getattr(truths[family], score)
        else:
            values[metric] = evaluate(metric, loaded, networks, settings, progress)
    return values, missing


def check_metrics(metrics: list[str]) -> None:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise AutomodError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(METRICS)} "
                           f"(or {' / '.join(METRIC_SETS)} for each family).")


def _preflight(runs: list[tuple[Path, str | None]], metrics: list[str], groups: dict[str, list[Path]]) -> None:
    """Refuse, before any work, what the table cannot hold: a built-in metric of a model trained on a data file,
    a group of fewer than two runs or of runs of different kinds. Reads only the checkpoints' metadata."""
    builtin = [m for m in metrics if m in BUILTIN_METRICS]
    kinds: dict[str, set[str]] = {name: set() for name in groups}
    for path, group in runs:
        checkpoint = find_checkpoint(path)
        meta = read_meta(checkpoint)
        if builtin:
            trained_on = (meta.get("train_config") or {}).get("data")
            require_builtin(checkpoint, trained_on, f"the built-in metrics ({', '.join(builtin)})")
        if group is not None:
            kinds[group].add(model_kind(meta))
    for name, members in groups.items():
        if len(members) < 2:
            raise AutomodError(f"group '{name}' has {len(members)} run(s): a mean ± std over seeds needs two or more runs.")
        if len(kinds[name]) > 1:
            raise AutomodError(f"group '{name}' mixes model kinds ({', '.join(sorted(kinds[name]))}): "
                               "group runs of one configuration.")


def summarise(name: str, rows: list[ComparisonRow]) -> GroupSummary:
    """Mean and sample standard deviation (ddof = 1) over `rows` per metric; a metric missing on any run stays empty."""
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    missing: dict[str, str] = {}
    for metric in rows[0].values:
        reasons = sorted({row.missing[metric] for row in rows if metric in row.missing})
        values = np.array([row.values[metric] for row in rows], dtype=np.float64)
        if reasons:
            missing[metric] = "; ".join(reasons)
            mean[metric] = std[metric] = math.nan
        else:
            mean[metric], std[metric] = float(values.mean()), float(values.std(ddof=1))
    return GroupSummary(name, rows[0].kind, [row.model for row in rows], mean, std, missing)


def compare(models: list[Path], metrics: list[str], networks: Networks, settings: CompareSettings,
            device: str | torch.device = "cpu", progress: Progress | None = None,
            groups: dict[str, list[Path]] | None = None) -> Comparison:
    """Evaluate every metric on every model, the single `models` first, then each group's runs; summarise the groups."""
    check_metrics(metrics)
    groups = groups or {}
    runs = [(Path(path), None) for path in models] + [(Path(path), name) for name, paths in groups.items() for path in paths]
    if not runs:
        raise AutomodError("nothing to compare: name at least one run or checkpoint, or a group of runs.")
    _preflight(runs, metrics, groups)
    rows = []
    for path, group in runs:
        loaded = load_for_eval(path, device)
        values, missing = measure(loaded, metrics, networks, settings, progress)
        rows.append(ComparisonRow(str(path), loaded.kind, values, missing, group))
    summaries = [summarise(name, [row for row in rows if row.group == name]) for name in groups]
    return Comparison(rows, summaries)


def _cells(values: dict[str, float]) -> dict[str, float | None]:
    return {metric: None if math.isnan(value) else value for metric, value in values.items()}


def records(comparison: Comparison) -> list[dict]:
    """The table as records, the CSV's rows and the JSON's entries: one per run (statistic "value"), then two per
    group (statistic "mean" and "std", `model` the group's name, `runs` its members). Empty cells are None and
    `missing` says why."""
    rows = [{"model": row.model, "kind": row.kind, "group": row.group, "statistic": "value", **_cells(row.values),
             "missing": row.missing} for row in comparison.rows]
    for group in comparison.groups:
        for statistic in ("mean", "std"):
            rows.append({"model": group.name, "kind": group.kind, "group": group.name, "statistic": statistic,
                         **_cells(getattr(group, statistic)), "missing": group.missing, "runs": group.runs})
    return rows


def write_csv(path: Path, comparison: Comparison, metrics: list[str]) -> None:
    """model, kind, group, statistic and a column per metric; empty cells are empty strings."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["model", "kind", "group", "statistic", *metrics], extrasaction="ignore")
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in records(comparison))

    atomic_write(Path(path), write)


def write_json(path: Path, comparison: Comparison) -> None:
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(records(comparison), indent=2) + "\n"))


DIGITS = {"lpips": 3, "fid": 2, "fid-mix": 2, "ppl": 1, "recon-mse": 4, "recon-ssim": 3, "mix-mse": 4, "mix-ssim": 3,
          "fd-builtin": 2, "fd-builtin-mix": 2}  # decimals shown in the printed and Markdown tables


def header(metric: str) -> str:
    return f"{metric.upper()} {'↑' if metric in HIGHER_IS_BETTER else '↓'}"


def format_cell(metric: str, value: float, spread: float | None = None) -> str:
    """A table cell: the value (± spread for groups) at the metric's precision; "—" when it was not measured."""
    if math.isnan(value):
        return "—"
    digits = DIGITS[metric]
    return f"{value:.{digits}f}" if spread is None else f"{value:.{digits}f} ± {spread:.{digits}f}"


def table_rows(comparison: Comparison, metrics: list[str]) -> list[list[str]]:
    """The printed table's rows: label, kind and a cell per metric; single runs by their folder name (the full
    path where two share a name), then each group as "NAME (K runs)" with mean ± std."""
    single = [row for row in comparison.rows if row.group is None]
    names = [Path(row.model).name for row in single]
    labels = names if len(set(names)) == len(names) else [row.model for row in single]
    rows = [[label, row.kind, *(format_cell(m, row.values[m]) for m in metrics)] for label, row in zip(labels, single)]
    rows += [[f"{group.name} ({len(group.runs)} runs)", group.kind,
              *(format_cell(m, group.mean[m], group.std[m]) for m in metrics)] for group in comparison.groups]
    return rows


def write_markdown(path: Path, comparison: Comparison, metrics: list[str]) -> None:
    """The printed table as a Markdown table, ready to paste into a report."""
    lines = ["| " + " | ".join(["model", "kind", *(header(m) for m in metrics)]) + " |",
             "| --- | --- |" + " ---: |" * len(metrics)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(comparison, metrics)]
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
