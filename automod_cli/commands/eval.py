"""`automod eval NAME` for every metric record of `metrics/registry.py` (fid, fid-mix, ppl, lpips, mix-truth,
recon-truth, fd-builtin, fd-builtin-mix), `eval compare` and `eval weights` (every pretrained file; `eval project`
is `commands/project.py`'s, added to this group by cli.py): parse options, check cheap things first, call the
metrics core, report with rich (progress on stderr, so `--json` output on stdout stays machine-readable)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from automod_cli.commands.options import (
    CROP,
    DEVICE,
    FORCE,
    JSON,
    MODEL,
    NET,
    REF_DATA,
    SEED,
    TEST_DATA,
    WEIGHTS,
    Crop,
    Net,
    progress_bars,
    torch_device,
)
from automod_cli.console import console, err_console, say
from automod_cli.errors import AutomodError
from automod_cli.metrics import registry
from automod_cli.metrics.registry import FACTOR_NET, INCEPTION, LPIPS, Metric
from automod_cli.outputs import check_outputs, check_writable, image_format

if TYPE_CHECKING:  # torch and the metrics are imported when a command runs, never for --help
    import torch

    from automod_cli.metrics import compare as comparison

eval_app = typer.Typer(
    help="Evaluate models with the papers' protocols (FID, FID-mix, PPL, LPIPS, projection) and "
    "against the built-in dataset's ground truth.",
    no_args_is_help=True,
)


# --- the networks, found before any work --------------------------------------------------------------------------


def _weight_files(networks: set[str], weights: List[Path], net: str) -> dict[str, Path]:
    """The weight file of each pretrained network needed ({INCEPTION, LPIPS} ∩ `networks`), found (or refused in one
    line) before anything heavy is loaded."""
    from automod_cli.features import weights as weight_files
    from automod_cli.features.nets import LPIPS_NETS

    wanted = {INCEPTION: weight_files.INCEPTION, LPIPS: LPIPS_NETS[net]}
    needed = {key: wanted[key] for key in (INCEPTION, LPIPS) if key in networks}
    if weights and not needed:
        raise AutomodError("no metric asked for needs a pretrained weight file: drop --weights.")
    return {
        key: weight_files.resolve_weights(w, weight_files.pick_explicit(weights, w, list(needed.values())))
        for key, w in needed.items()
    }


def _networks(files: dict[str, Path], net: str, device: torch.device) -> registry.Networks:
    """Factories for the networks (built on first use), their weight files already found."""
    from automod_cli.features.nets import inception_features, lpips_distance
    from automod_cli.metrics.builtin.factor_net import TrainingPlan, factor_features

    def factor(resolution: int, progress) -> Any:
        return factor_features(TrainingPlan(resolution), device, progress=progress)[0]

    return registry.Networks(
        make_extractor=lambda: inception_features(files[INCEPTION], device),
        make_distance=lambda: lpips_distance(net, files[LPIPS], device),
        make_factor_features=factor,
        files=files,
    )


# --- measuring one metric: `automod eval NAME` --------------------------------------------------------------------


def _measure(
    metric: Metric,
    model: Optional[Path] = None,
    data: Optional[Path] = None,
    n: Optional[int] = None,
    crop: Crop = Crop.face,
    net: Net = Net.alex,
    batch: int = 32,
    weights: List[Path] = (),
    device: str = "auto",
    seed: int = 0,
    as_json: bool = False,
    mix: bool = False,
    scales: str = "coarse",
    grid: Optional[Path] = None,
    force: bool = False,
) -> None:
    """`automod eval NAME`: every argument and file checked (outputs, device, checkpoint, weight files, data), then
    the model loaded, then the networks built and the metric run."""
    import torch

    from automod_cli.locate import open_model
    from automod_cli.metrics.data import data_path, unseen_data
    from automod_cli.metrics.fid import default_cache_dir

    metric = registry.REGISTRY[metric.mix_variant] if mix else metric
    if grid is not None:
        _check_grid(grid, force)
    check_cache_folders(set(metric.networks))
    target = torch_device(device)
    files: dict = {}

    def before_weights(
        checkpoint: Path, meta: dict
    ) -> None:  # the model's file is read once, the checks first
        trained_on = (meta.get("train_config") or {}).get("data")
        if metric.family == registry.BUILTIN:
            registry.require_builtin(checkpoint, trained_on)
        files.update(_weight_files(set(metric.networks), list(weights), net.value))
        if metric.data is not None:
            data_path(metric.data, data, Path(trained_on) if trained_on else None)

    torch.manual_seed(seed)
    loaded = open_model(model, target, check=before_weights)
    checkpoint = loaded.checkpoint
    reason = registry.missing_reason(metric, loaded.model)
    if reason is not None:
        raise AutomodError(f"eval {metric.name} cannot measure '{checkpoint}': {reason}.")
    if metric.data == "test":
        test = unseen_data(loaded, data)
        if n is not None and n > len(test):
            raise AutomodError(
                f"{test.label} holds {len(test):,} images, fewer than the {n:,} asked for: lower --n."
            )
        if test.split == "train":
            err_console.print(
                f"[yellow]note[/] {test.label} is a training split; the protocol uses unseen test images."
            )
    settings = registry.Settings(
        n,
        batch,
        seed,
        data if metric.data == "reference" else None,
        data if metric.data == "test" else None,
        crop.value,
        net.value,
        scales,
        default_cache_dir(),
    )
    networks = _networks(files, net.value, loaded.device)
    with progress_bars() as progress:
        outcome, protocol = registry.measure(metric, registry.Job(loaded, networks, settings, progress))
    if grid is not None:
        _write_grid(loaded.model, settings, grid, force)
    _report(metric, str(loaded.checkpoint), outcome, protocol, as_json)


def _check_grid(grid: Path, force: bool) -> None:
    """`--grid`, before any work: an image suffix automod writes, no file replaced without --force, a writable
    folder."""
    image_format(grid)
    check_outputs([grid], force, "--grid")


def check_cache_folders(networks: set[str]) -> None:
    """When $XDG_CACHE_HOME names the cache, the folders the metrics on `networks` may write (reference statistics,
    the factor network) can be written: refused in one line before any work rather than after it."""
    from automod_cli.metrics.builtin.factor_net import default_cache_dir as factor_cache_dir
    from automod_cli.metrics.fid import default_cache_dir

    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        return
    folders = [default_cache_dir()] if networks & {INCEPTION, FACTOR_NET} else []
    folders += [factor_cache_dir()] if FACTOR_NET in networks else []
    for folder in folders:
        try:
            check_writable(folder / "cache-file")
        except AutomodError:
            raise AutomodError(
                f"cannot write the cache folder '{folder}' under $XDG_CACHE_HOME ('{base}'): it is "
                "not a writable folder (read-only or no permission); set XDG_CACHE_HOME to a "
                "writable folder, or unset it to use ~/.cache."
            ) from None


def _write_grid(model, settings: registry.Settings, grid: Path, force: bool) -> None:
    """`mix-truth --grid`: the first 8 pairs, one row each: A, B, the mix, the truth, the swapped combination."""
    from automod_cli.images import save_image
    from automod_cli.metrics.builtin import ground_truth
    from automod_cli.ops.figures import captioned_grid
    from automod_cli.ops.scales import describe

    blocks = ground_truth.b_blocks(model, settings.scales)
    truth = ground_truth.truth_for(model, blocks)
    mixer = ground_truth.model_mixer(model, blocks)
    pairs = ground_truth.truth_pairs(min(8, settings.n or 8), model.resolution, truth.layout_from)
    columns = ground_truth.GRID_COLUMNS
    text = (
        f"columns: {', '.join(columns)}; mix: A with B's {describe(blocks, model.block_levels)} (automod mix A B); "
        f"truth: {truth.label}; swapped: {truth.swapped_label}"
    )
    save_image(
        grid, captioned_grid(ground_truth.mixing_grid(mixer, pairs), len(columns), text), overwrite=force
    )


def _report(metric: Metric, model: str, outcome: registry.Outcome, protocol: dict, as_json: bool) -> None:
    """The result as JSON (with its protocol) on stdout, or as tables: the scores, then the protocol."""
    if as_json:
        typer.echo(
            json.dumps(
                {"metric": metric.name, "model": model, **outcome.fields, "protocol": protocol}, indent=2
            )
        )
        return
    if outcome.rows is not None:
        console.print(_scores_table(outcome.title or metric.title, outcome.rows))
        if outcome.note:
            console.print(f"[yellow]note[/] {escape(outcome.note)}")
    else:
        table = Table(title=outcome.title or metric.title, show_header=False, title_justify="left")
        for key, value in {"metric": metric.name, "model": model, **outcome.fields}.items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(table)
    _print_protocol(protocol)


def _scores_table(title: str, rows: dict) -> Table:
    """One row per comparison, MSE and SSIM as mean ± standard deviation over images."""
    table = Table(title=title, title_justify="left")
    for column, justify in (("compared with", "left"), ("MSE ↓", "right"), ("SSIM ↑", "right")):
        table.add_column(column, justify=justify)
    for label, scores in rows.items():
        table.add_row(
            label, f"{scores.mse:.4f} ± {scores.mse_std:.4f}", f"{scores.ssim:.3f} ± {scores.ssim_std:.3f}"
        )
    return table


def _print_protocol(protocol: dict) -> None:
    """The protocol, one line per fact (files with their full SHA-256, unwrapped so they can be copied)."""

    def text(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k} {text(v)}" for k, v in value.items() if v is not None)
        return "—" if value is None else str(value)

    console.print("[bold]protocol[/]")
    for key, value in protocol.items():
        if key != "metric":
            say(f"  {key.replace('_', ' ')}: {escape(text(value))}", markup=True)


# --- the commands, one per metric record --------------------------------------------------------------------------
# Each record of `metrics/registry.py` has its command here, written out: its options are the ones the record says the
# metric reads (`data`, `crops`, `scales`, `mix_variant`, the networks that need `--weights`, `seeded`), in the same
# order in every command; its help, `--n` and `--batch` come from the record. tests/test_eval_cli.py checks that every
# record has its command and that the two agree.


def _help(name: str) -> str:
    """`automod eval NAME --help`'s text: what the metric measures, and an example."""
    metric = registry.REGISTRY[name]
    return f"{metric.help}\n\nExample: {metric.example}"


def _n(name: str) -> Any:
    """`--n`: the protocol's count by default, within the record's bounds."""
    metric = registry.REGISTRY[name]
    return typer.Option(
        metric.count, "--n", min=metric.count_min, max=metric.count_max, help=metric.count_help
    )


def _batch(name: str) -> Any:
    metric = registry.REGISTRY[name]
    return typer.Option(metric.batch, "--batch", min=1)


MIX = typer.Option(
    False,
    "--mix",
    help="Decode each sample from two random latents split at a random block (= eval fd-builtin-mix).",
)
TRUTH_SCALES = typer.Option(
    "coarse",
    "--scales",
    help="Blocks taken from B, as automod mix A B takes them: coarse, mid, fine or i:j. The truth is the "
    "layout of whoever drives block 0 (4²) in the other's colours.",
)
GRID = typer.Option(
    None,
    "--grid",
    help="Also write a PNG: for the first 8 pairs, A, B, the mix, the truth and the swapped combination.",
)
GRID_FORCE = typer.Option(False, "--force", help="Replace an existing --grid file.")


# Each metric's command lists its options and hands them, by name (its locals on entry), to _measure.
@eval_app.command("fid", help=_help("fid"))
def fid_command(
    model: Optional[Path] = MODEL,
    data: Optional[Path] = REF_DATA,
    n: int = _n("fid"),
    batch: int = _batch("fid"),
    weights: List[Path] = WEIGHTS,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["fid"], **locals())


@eval_app.command("fid-mix", help=_help("fid-mix"))
def fid_mix_command(
    model: Optional[Path] = MODEL,
    data: Optional[Path] = REF_DATA,
    n: int = _n("fid-mix"),
    batch: int = _batch("fid-mix"),
    weights: List[Path] = WEIGHTS,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["fid-mix"], **locals())


@eval_app.command("ppl", help=_help("ppl"))
def ppl_command(
    model: Optional[Path] = MODEL,
    n: int = _n("ppl"),
    crop: Crop = CROP,
    net: Net = NET,
    batch: int = _batch("ppl"),
    weights: List[Path] = WEIGHTS,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["ppl"], **locals())


@eval_app.command("lpips", help=_help("lpips"))
def lpips_command(
    model: Optional[Path] = MODEL,
    data: Optional[Path] = TEST_DATA,
    n: Optional[int] = _n("lpips"),
    crop: Crop = CROP,
    net: Net = NET,
    batch: int = _batch("lpips"),
    weights: List[Path] = WEIGHTS,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["lpips"], **locals())


@eval_app.command("mix-truth", help=_help("mix-truth"))
def mix_truth_command(
    model: Optional[Path] = MODEL,
    n: int = _n("mix-truth"),
    scales: str = TRUTH_SCALES,
    batch: int = _batch("mix-truth"),
    grid: Optional[Path] = GRID,
    force: bool = GRID_FORCE,
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["mix-truth"], **locals())


@eval_app.command("recon-truth", help=_help("recon-truth"))
def recon_truth_command(
    model: Optional[Path] = MODEL,
    n: int = _n("recon-truth"),
    batch: int = _batch("recon-truth"),
    device: str = DEVICE,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["recon-truth"], **locals())


@eval_app.command("fd-builtin", help=_help("fd-builtin"))
def fd_builtin_command(
    model: Optional[Path] = MODEL,
    n: int = _n("fd-builtin"),
    mix: bool = MIX,
    batch: int = _batch("fd-builtin"),
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["fd-builtin"], **locals())


@eval_app.command("fd-builtin-mix", help=_help("fd-builtin-mix"))
def fd_builtin_mix_command(
    model: Optional[Path] = MODEL,
    n: int = _n("fd-builtin-mix"),
    batch: int = _batch("fd-builtin-mix"),
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    _measure(registry.REGISTRY["fd-builtin-mix"], **locals())


# --- eval compare -------------------------------------------------------------------------------------------------


def _comparison_table(result: comparison.Comparison, metrics: list[str]) -> Table:
    """Table 2a's layout: a row per model or group of seeds (mean ± std), a column per metric; "—": not measured."""
    from automod_cli.metrics import compare as comparison

    table = Table(title="comparison (↓ smaller is better, ↑ larger is better)", title_justify="left")
    table.add_column("model")
    table.add_column("kind")
    for metric in metrics:
        table.add_column(comparison.header(metric), justify="right")
    for row in comparison.table_rows(result, metrics):
        table.add_row(*row)
    return table


def _metric_names(spec: str) -> list[str]:
    """`--metrics`: names and the family shorthands (paper, builtin), in order, each once."""
    from automod_cli.metrics import compare as comparison

    names = [name.strip() for name in spec.split(",") if name.strip()]
    expanded = [m for name in names for m in registry.COLUMN_SETS.get(name, (name,))]
    comparison.check_metrics(expanded)
    return list(dict.fromkeys(expanded))


def _groups(specs: List[str]) -> dict[str, list[Path]]:
    """`--group NAME=RUN1,RUN2,...`, each NAME once."""
    groups: dict[str, list[Path]] = {}
    for spec in specs:
        name, equals, runs = spec.partition("=")
        if not equals or not name.strip() or not runs.strip():
            raise AutomodError(
                f"--group '{spec}' should read NAME=RUN1,RUN2,... (runs of one configuration, different "
                "seeds)."
            )
        if name.strip() in groups:
            raise AutomodError(f"--group '{name.strip()}' is given twice: give each group its own name.")
        groups[name.strip()] = [Path(run.strip()) for run in runs.split(",") if run.strip()]
    return groups


_METRICS_HELP = (
    f"Comma-separated. The papers': {', '.join(registry.PAPER_COLUMNS)} (pretrained weights). Built-in "
    f"models only, no weights: {', '.join(registry.BUILTIN_COLUMNS)}. Shorthands: "
    f"{', '.join(registry.COLUMN_SETS)}."
)


@eval_app.command("compare")
def compare_command(
    models: Optional[List[Path]] = typer.Argument(
        None, help="Checkpoint files or run directories, one table row each."
    ),
    metrics: str = typer.Option(",".join(registry.PAPER_COLUMNS), "--metrics", help=_METRICS_HELP),
    groups: List[str] = typer.Option(
        [],
        "--group",
        help="NAME=RUN1,RUN2,...: runs of one configuration with different "
        "seeds, shown as one row of mean ± std (repeatable).",
    ),
    n: Optional[int] = typer.Option(
        None, "--n", min=2, help="Images/samples per metric (default: each metric's protocol)."
    ),
    data: Optional[Path] = REF_DATA,
    test_data: Optional[Path] = typer.Option(None, "--test-data", help="Unseen test .h5 for LPIPS."),
    crop: Crop = CROP,
    net: Net = NET,
    batch: int = typer.Option(32, "--batch", min=1),
    weights: List[Path] = WEIGHTS,
    out: Path = typer.Option(
        Path("compare"),
        "--out",
        help="Writes OUT.csv and OUT.json (per-run values and group "
        "mean/std) and OUT.md (the printed table).",
    ),
    force: bool = FORCE,
    device: str = DEVICE,
    seed: int = SEED,
    as_json: bool = JSON,
) -> None:
    """Run several metrics on several models and print one Table-2-style table (also as CSV, JSON and Markdown).

    Example: automod eval compare runs/automod runs/pioneer runs/vae --metrics lpips,fid,ppl --out table2a

    Example (built-in data, no downloads): automod eval compare runs/pioneer \
--group automod=runs/am-s1,runs/am-s2,runs/am-s3 --metrics builtin
    """
    import torch

    from automod_cli.metrics import compare as comparison
    from automod_cli.metrics.fid import default_cache_dir

    chosen = _metric_names(metrics)
    named = _groups(groups)
    csv_path, json_path, md_path = (out.with_name(out.name + suffix) for suffix in (".csv", ".json", ".md"))
    check_outputs([csv_path, json_path, md_path], force)
    needed = {network for column in chosen for network in registry.COLUMNS[column][0].networks}
    check_cache_folders(needed)
    torch.manual_seed(seed)
    target = torch_device(device)
    networks = _networks(_weight_files(needed, weights, net.value), net.value, target)
    settings = registry.Settings(
        n, batch, seed, data, test_data, crop.value, net.value, cache_dir=default_cache_dir()
    )
    with progress_bars() as progress:
        result = comparison.compare(list(models or []), chosen, networks, settings, target, progress, named)
    comparison.write_csv(csv_path, result, chosen)
    comparison.write_json(json_path, result)
    comparison.write_markdown(md_path, result, chosen)
    if as_json:
        typer.echo(json.dumps(comparison.records(result), indent=2))
        return
    console.print(_comparison_table(result, chosen))
    say(f"wrote {csv_path}, {json_path} and {md_path}")


# --- eval weights -------------------------------------------------------------------------------------------------


@eval_app.command("weights")
def weights_command(as_json: bool = JSON) -> None:
    """List every pretrained file automod can use: present or missing, where it was looked for or found, and its
    SHA-256 checked against the hash its name carries (torch.hub's convention) where one is known. Downloads nothing.

    Example: automod eval weights
    """
    from automod_cli.metrics import inventory

    entries = inventory.inventory()
    check_style = {inventory.OK: "green", inventory.MISMATCH: "red", inventory.UNCHECKED: "yellow"}
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    for e in entries:
        if e.state == inventory.MISSING:
            say(f"[bold]{escape(e.name)}[/]  [red]missing[/]", markup=True)
        else:
            note = f" (expected {e.expected}…)" if e.check == inventory.MISMATCH else ""
            say(
                f"[bold]{escape(e.name)}[/]  present  [{check_style[e.check]}]{e.check}{note}[/]", markup=True
            )
        say(f"  used by  {escape(e.used_by)}", markup=True)
        if e.state == inventory.MISSING:
            say(f"  looked   {escape('; '.join(e.looked))}", markup=True)
        else:
            say(f"  found    {escape(str(e.path))}\n  sha256   {e.sha256}", markup=True)
    say(
        "Files named NAME-<hex>.pth are checked against the SHA-256 prefix in their name; docs/evaluation.md "
        "says where to get each file. Nothing was downloaded.",
        markup=True,
    )


def register(app: typer.Typer) -> typer.Typer:
    """Attach `automod eval ...`; the group is returned for `commands/project.py` to add `eval project` to."""
    app.add_typer(eval_app, name="eval")
    return eval_app
