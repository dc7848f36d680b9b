"""Several models, several metrics, one table laid out like NeurIPS Table 2a: a row per model, a column per
metric, each with its protocol unless `n` says less. The columns and how to fill them come from the metric
records of `registry.py`, the same ones `automod eval NAME` runs.

Two families of metrics fill the columns:

- the papers' (LPIPS of test reconstructions, FID, FID of mixtures, PPL), which stand on pretrained Inception and
  LPIPS weights;
- the built-in dataset's, which need no downloaded network and apply only to models trained on the built-in data:
  reconstruction MSE / SSIM of held-out images and the ground-truth mixing MSE / SSIM (`builtin/ground_truth.py`;
  B's latent drives the coarse blocks, as `automod mix A B --coarse` and `automod eval mix-truth` by default), and
  FD_builtin of samples and of mixtures (`builtin/fd_builtin.py`).

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

import numpy as np
import torch

from automod_cli.checkpoint import model_kind, read_meta
from automod_cli.outputs import atomic_write
from automod_cli.locate import find_checkpoint, open_model
from automod_cli.errors import AutomodError
from automod_cli.metrics.registry import (
    BUILTIN,
    COLUMN_SETS,
    COLUMNS,
    Job,
    Networks,
    Settings,
    missing_reason,
    require_builtin,
)
from automod_cli.metrics.registry import measure as registry_measure
from automod_cli.ops.reconstruct import ProgressCallback


@dataclass(frozen=True)
class ComparisonRow:
    """One run's values (NaN: not measured) and, per empty cell, why."""

    model: str
    kind: str  # automod, pioneer, vae, wae or lia
    values: dict[str, float]
    missing: dict[str, str] = field(default_factory=dict)
    group: str | None = None
    protocols: dict[str, dict] = field(default_factory=dict)  # per metric run (`registry.protocol`)


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


def measure(
    loaded,
    columns: list[str],
    networks: Networks,
    settings: Settings,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, float], dict[str, str], dict[str, dict]]:
    """Every column of one model: (values, NaN where not measured; why, per empty cell; the protocol of each metric
    run). A metric's run fills all its columns at once, so one reconstruction (mixing) pass serves both its MSE
    and its SSIM cell."""
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    outcomes: dict[str, dict[str, float]] = {}
    protocols: dict[str, dict] = {}
    job = Job(loaded, networks, settings, progress)
    for column in columns:
        metric, _ = COLUMNS[column]
        reason = missing_reason(metric, loaded.model)
        if reason is not None:
            values[column], missing[column] = math.nan, reason
            continue
        if metric.name not in outcomes:
            outcome, protocols[metric.name] = registry_measure(metric, job)
            outcomes[metric.name] = outcome.values
        values[column] = outcomes[metric.name][column]
    return values, missing, protocols


def check_metrics(columns: list[str]) -> None:
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise AutomodError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}: choose from "
            f"{', '.join(COLUMNS)} (or {' / '.join(COLUMN_SETS)} for each family)."
        )


def _preflight(
    runs: list[tuple[Path, str | None]], metrics: list[str], groups: dict[str, list[Path]]
) -> None:
    """Refuse, before any work, what the table cannot hold: a built-in metric of a model trained on a data file,
    a group of fewer than two runs or of runs of different kinds.
    Reads only the checkpoints' metadata."""
    builtin = [m for m in metrics if COLUMNS[m][0].family == BUILTIN]
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
            raise AutomodError(
                f"group '{name}' has {len(members)} run(s): a mean ± std over seeds needs two or more runs."
            )
        if len(kinds[name]) > 1:
            raise AutomodError(
                f"group '{name}' mixes model kinds ({', '.join(sorted(kinds[name]))}): "
                "group runs of one configuration."
            )


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


def compare(
    models: list[Path],
    metrics: list[str],
    networks: Networks,
    settings: Settings,
    device: str | torch.device = "cpu",
    progress: ProgressCallback | None = None,
    groups: dict[str, list[Path]] | None = None,
) -> Comparison:
    """Evaluate every metric on every model, the single `models` first, then each group's runs; summarise the groups."""
    check_metrics(metrics)
    groups = groups or {}
    runs = [(Path(path), None) for path in models] + [
        (Path(path), name) for name, paths in groups.items() for path in paths
    ]
    if not runs:
        raise AutomodError("nothing to compare: name at least one run or checkpoint, or a group of runs.")
    _preflight(runs, metrics, groups)
    rows = []
    for path, group in runs:
        loaded = open_model(path, device)
        values, missing, protocols = measure(loaded, metrics, networks, settings, progress)
        rows.append(ComparisonRow(str(path), loaded.kind, values, missing, group, protocols))
    summaries = [summarise(name, [row for row in rows if row.group == name]) for name in groups]
    return Comparison(rows, summaries)


def _cells(values: dict[str, float]) -> dict[str, float | None]:
    return {metric: None if math.isnan(value) else value for metric, value in values.items()}


def records(comparison: Comparison) -> list[dict]:
    """The table as records, the CSV's rows and the JSON's entries: one per run (statistic "value"), then two per
    group (statistic "mean" and "std", `model` the group's name, `runs` its members). Empty cells are None and
    `missing` says why; a run's `protocol` holds, per metric run, what it was measured with (`registry.protocol`)."""
    rows = [
        {
            "model": row.model,
            "kind": row.kind,
            "group": row.group,
            "statistic": "value",
            **_cells(row.values),
            "missing": row.missing,
            "protocol": row.protocols,
        }
        for row in comparison.rows
    ]
    for group in comparison.groups:
        for statistic in ("mean", "std"):
            rows.append(
                {
                    "model": group.name,
                    "kind": group.kind,
                    "group": group.name,
                    "statistic": statistic,
                    **_cells(getattr(group, statistic)),
                    "missing": group.missing,
                    "runs": group.runs,
                }
            )
    return rows


def write_csv(path: Path, comparison: Comparison, metrics: list[str]) -> None:
    """model, kind, group, statistic and a column per metric; empty cells are empty strings."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["model", "kind", "group", "statistic", *metrics], extrasaction="ignore"
            )
            writer.writeheader()
            writer.writerows(
                {k: ("" if v is None else v) for k, v in row.items()} for row in records(comparison)
            )

    atomic_write(Path(path), write)


def write_json(path: Path, comparison: Comparison) -> None:
    atomic_write(
        Path(path), lambda tmp: Path(tmp).write_text(json.dumps(records(comparison), indent=2) + "\n")
    )


def header(metric: str) -> str:
    return COLUMNS[metric][1].header


def format_cell(metric: str, value: float, spread: float | None = None) -> str:
    """A table cell: the value (± spread for groups) at the metric's precision; "—" when it was not measured."""
    if math.isnan(value):
        return "—"
    digits = COLUMNS[metric][1].digits
    return f"{value:.{digits}f}" if spread is None else f"{value:.{digits}f} ± {spread:.{digits}f}"


def table_rows(comparison: Comparison, metrics: list[str]) -> list[list[str]]:
    """The printed table's rows: label, kind and a cell per metric; single runs by their folder name (the full
    path where two share a name), then each group as "NAME (K runs)" with mean ± std."""
    single = [row for row in comparison.rows if row.group is None]
    names = [Path(row.model).name for row in single]
    labels = names if len(set(names)) == len(names) else [row.model for row in single]
    rows = [
        [label, row.kind, *(format_cell(m, row.values[m]) for m in metrics)]
        for label, row in zip(labels, single)
    ]
    rows += [
        [
            f"{group.name} ({len(group.runs)} runs)",
            group.kind,
            *(format_cell(m, group.mean[m], group.std[m]) for m in metrics),
        ]
        for group in comparison.groups
    ]
    return rows


def write_markdown(path: Path, comparison: Comparison, metrics: list[str]) -> None:
    """The printed table as a Markdown table, ready to paste into a report."""
    lines = [
        "| " + " | ".join(["model", "kind", *(header(m) for m in metrics)]) + " |",
        "| --- | --- |" + " ---: |" * len(metrics),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(comparison, metrics)]
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
