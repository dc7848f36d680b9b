"""`automod eval fid | fid-mix | ppl | lpips | project | compare`, the built-in dataset's ground-truth metrics
`automod eval mix-truth | recon-truth | fd-builtin`, and `automod project IMG`: parse options, call the metrics
core, report with rich (progress on stderr, so `--json` output on stdout stays machine-readable)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Iterator, List, Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from automod_cli.errors import AutomodError
from automod_cli.metrics import compare as comparison
from automod_cli.metrics.builtin import ground_truth
from automod_cli.metrics import weights as weight_files
from automod_cli.metrics.data import LoadedModel, load_for_eval, reference_data, unseen_data
from automod_cli.metrics.features import LPIPS_NETS, inception_features, lpips_distance
from automod_cli.metrics.builtin.factor_net import Recipe, factor_features
from automod_cli.metrics.fid import default_cache_dir, fid

console = Console()
err_console = Console(stderr=True)
eval_app = typer.Typer(help="Evaluate models with the papers' protocols (FID, FID-mix, PPL, LPIPS, projection) and against "
                            "the built-in dataset's ground truth.", no_args_is_help=True)


class Crop(str, Enum):
    face = "face"
    center = "center"
    none = "none"


class Net(str, Enum):
    alex = "alex"
    vgg = "vgg"


class Start(str, Enum):
    encoder = "encoder"
    random = "random"
    mean = "mean"


MODEL = typer.Option(None, "--model", "-m", help="Checkpoint file, run directory or a named model such as ffhq256 (see automod models; default: newest run under ./runs).")
REF_DATA = typer.Option(None, "--data", help="Reference .h5 file (default: the data the model was trained on).")
TEST_DATA = typer.Option(None, "--data", help="Unseen test .h5 file (default: the built-in test split for built-in models).")
WEIGHTS = typer.Option([], "--weights", help="Pretrained weight file(s) (standard names); else env variable or torch cache.")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ...")
SEED = typer.Option(0, "--seed", help="Seed for latents and layer noise.")
JSON = typer.Option(False, "--json", help="Print the result as JSON on stdout.")
CROP = typer.Option(Crop.face, "--crop", help="Image window compared: face (StyleGAN's, the papers'), center, none.")
NET = typer.Option(Net.alex, "--net", help="LPIPS trunk: alex (lpips default) or vgg.")
FORCE = typer.Option(False, "--force", help="Replace existing output files.")


def _device(name: str) -> torch.device:
    from automod_cli.devices import pick_device

    return pick_device(name)


def _setup(model: Optional[Path], device: str, seed: int) -> LoadedModel:
    torch.manual_seed(seed)
    return load_for_eval(model, _device(device))


def _lpips(net: Net, paths: List[Path], device: torch.device):
    """The LPIPS network of `--net`, its weights from `--weights`, the environment or the cache."""
    weight = LPIPS_NETS[net.value]
    return lpips_distance(net.value, weight_files.pick_explicit(paths, weight, [weight]), device)


@contextmanager
def _progress() -> Iterator:
    """A rich bar per stage on stderr, fed with (stage, done, total)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _emit(result: dict, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in result.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def _check_outputs(paths: list[Path], force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise AutomodError(f"'{path}' already exists: choose another --out or pass --force to overwrite.")


def _fid(model, data, n, batch, weights, device, seed, as_json, mix: bool) -> None:
    loaded = _setup(model, device, seed)
    if mix and not loaded.model.supports_mixing:
        raise AutomodError("FID-mix needs an AdaIN (automodulator) decoder; this model's classic decoder cannot mix.")
    weight = weight_files.pick_explicit(weights, weight_files.INCEPTION, [weight_files.INCEPTION])
    extractor = inception_features(weight, loaded.device)
    reference = reference_data(loaded, data)
    torch.manual_seed(seed)  # layer noise from the seed, as each cell of `eval compare`
    with _progress() as progress:
        result = fid(loaded.model, reference, extractor, n, batch, seed, mix, default_cache_dir(), progress)
    name = "fid-mix" if mix else "fid"
    _emit({"metric": name, "model": str(loaded.checkpoint), name: result.fid, "samples": result.samples,
           "reference": result.reference, "reference_images": result.reference_count,
           "reference_cached": result.reference_cached}, as_json, name.upper())


@eval_app.command("fid")
def fid_command(model: Optional[Path] = MODEL, data: Optional[Path] = REF_DATA,
                n: int = typer.Option(50_000, "--n", min=2, help="Generated samples (paper: 50k)."),
                batch: int = typer.Option(50, "--batch", min=1), weights: List[Path] = WEIGHTS,
                device: str = DEVICE, seed: int = SEED, as_json: bool = JSON) -> None:
    """FID of random samples against the training data (Inception-v3 pool3, as pytorch-fid).

    Example: automod eval fid --model runs/ffhq --n 50000
    """
    _fid(model, data, n, batch, weights, device, seed, as_json, mix=False)


@eval_app.command("fid-mix")
def fid_mix_command(model: Optional[Path] = MODEL, data: Optional[Path] = REF_DATA,
                    n: int = typer.Option(50_000, "--n", min=2, help="Generated mixtures (paper: 50k)."),
                    batch: int = typer.Option(50, "--batch", min=1), weights: List[Path] = WEIGHTS,
                    device: str = DEVICE, seed: int = SEED, as_json: bool = JSON) -> None:
    """FID of samples decoded from two random latents split at a random block (NeurIPS Table 1).

    Example: automod eval fid-mix --model runs/celebahq --n 50000
    """
    _fid(model, data, n, batch, weights, device, seed, as_json, mix=True)


@eval_app.command("ppl")
def ppl_command(model: Optional[Path] = MODEL,
                n: int = typer.Option(100_000, "--n", min=2, help="Latent pairs (paper: 100k)."),
                crop: Crop = CROP, net: Net = NET, batch: int = typer.Option(32, "--batch", min=1),
                weights: List[Path] = WEIGHTS, device: str = DEVICE, seed: int = SEED, as_json: bool = JSON) -> None:
    """Perceptual path length: LPIPS/ε² between decodings at t and t+ε of latent paths (slerp on the sphere, lines
    for Gaussian and LIA latents), ε = 1e-4, trimmed mean.

    Example: automod eval ppl --model runs/ffhq --n 100000
    """
    from automod_cli.metrics.ppl import perceptual_path_length

    loaded = _setup(model, device, seed)
    distance = _lpips(net, weights, loaded.device)
    with _progress() as progress:
        result = perceptual_path_length(loaded.model, distance, n, crop_mode=crop.value, batch_size=batch, seed=seed,
                                        progress=progress)
    _emit({"metric": "ppl", "model": str(loaded.checkpoint), "ppl": result.ppl, "pairs": result.samples,
           "epsilon": result.epsilon, "crop": result.crop, "net": net.value}, as_json, "PPL")


@eval_app.command("lpips")
def lpips_command(model: Optional[Path] = MODEL, data: Optional[Path] = TEST_DATA,
                  n: Optional[int] = typer.Option(None, "--n", min=1, help="Test images (default: all; paper: 10k)."),
                  crop: Crop = CROP, net: Net = NET, batch: int = typer.Option(32, "--batch", min=1),
                  weights: List[Path] = WEIGHTS, device: str = DEVICE, seed: int = SEED, as_json: bool = JSON) -> None:
    """Mean LPIPS between unseen test images and their reconstructions (NeurIPS Table 2a).

    Example: automod eval lpips --model runs/ffhq --data data/ffhq-test-256.h5 --n 10000
    """
    from automod_cli.metrics.lpips_recon import reconstruction_lpips

    loaded = _setup(model, device, seed)
    distance = _lpips(net, weights, loaded.device)
    test = unseen_data(loaded, data)
    if test.split == "train":
        err_console.print(f"[yellow]note[/] {test.label} is a training split; the protocol uses unseen test images.")
    with _progress() as progress:
        result = reconstruction_lpips(loaded.model, test, distance, n, crop.value, batch, progress)
    _emit({"metric": "lpips", "model": str(loaded.checkpoint), "lpips": result.lpips, "std": result.std,
           "images": result.images, "data": result.data, "crop": result.crop, "net": net.value}, as_json, "LPIPS reconstruction")


def _builtin_model(model: Optional[Path], device: str, seed: int = 0) -> LoadedModel:
    """A model trained on the built-in dataset (its checkpoint records no data file), else a one-line error."""
    loaded = _setup(model, device, seed)
    comparison.require_builtin(loaded.checkpoint, loaded.trained_on)
    return loaded


def _scores_table(title: str, rows: dict) -> Table:
    """One row per comparison, MSE and SSIM as mean ± standard deviation over images."""
    table = Table(title=title, title_justify="left")
    for column, justify in (("compared with", "left"), ("MSE ↓", "right"), ("SSIM ↑", "right")):
        table.add_column(column, justify=justify)
    for label, scores in rows.items():
        table.add_row(label, f"{scores.mse:.4f} ± {scores.mse_std:.4f}", f"{scores.ssim:.3f} ± {scores.ssim_std:.3f}")
    return table


@eval_app.command("mix-truth")
def mix_truth_command(model: Optional[Path] = MODEL,
                      n: int = typer.Option(ground_truth.MAX_PAIRS, "--n", min=1, max=ground_truth.MAX_PAIRS,
                                            help="Pairs of held-out built-in images (default: all 512 of the test split)."),
                      scales: str = typer.Option("coarse", "--scales", help="Blocks driven by A's latent: coarse, mid, fine or i:j."),
                      batch: int = typer.Option(32, "--batch", min=1),
                      grid: Optional[Path] = typer.Option(None, "--grid", help="Also write a PNG: for the first 8 pairs, A, B, the mix, the truth and the swapped combination."),
                      force: bool = typer.Option(False, "--force", help="Replace an existing --grid file."),
                      device: str = DEVICE, as_json: bool = JSON) -> None:
    """Ground-truth mixing error: mix(A, B) against the renderer's A-layout-in-B's-colours (built-in models only).

    Example: automod eval mix-truth --model runs/builtin --scales coarse --grid mix-truth.png
    """
    from automod_cli.images import save_image
    from automod_cli.ops.figures import captioned_grid
    from automod_cli.ops.scales import describe, scale_range

    if grid is not None and grid.exists() and not force:
        raise AutomodError(f"'{grid}' already exists: choose another --grid or pass --force to overwrite.")
    loaded = _builtin_model(model, device)
    blocks = scale_range(loaded.model, scales, "the ground-truth mixing error")
    pairs = ground_truth.truth_pairs(n, loaded.model.resolution)
    mixer = ground_truth.model_mixer(loaded.model, blocks)
    with _progress() as progress:
        result = ground_truth.mixing_error(mixer, pairs, batch, progress)
    if grid is not None:
        columns = ground_truth.GRID_COLUMNS
        text = (f"columns: {', '.join(columns)}; mix: A drives {describe(blocks, loaded.model.block_levels)}, "
                f"B the rest; truth: A's layout in B's colours; swapped: B's layout in A's colours")
        save_image(grid, captioned_grid(ground_truth.mixing_grid(mixer, pairs), len(columns), text), overwrite=force)
    if as_json:
        typer.echo(json.dumps({"metric": "mix-truth", "model": str(loaded.checkpoint), "pairs": result.pairs,
                               "resolution": result.resolution, "a_blocks": [blocks.start, blocks.stop],
                               **{name: asdict(scores) for name, scores in result.rows().items()}}, indent=2))
        return
    labels = {"truth": "truth: A's layout, B's colours", "swapped": "swapped: B's layout, A's colours", "a": "A", "b": "B"}
    title = f"ground-truth mixing error: A drives {describe(blocks)}, B the rest; {result.pairs} pairs at {result.resolution}²"
    console.print(_scores_table(title, {labels[name]: scores for name, scores in result.rows().items()}))


@eval_app.command("recon-truth")
def recon_truth_command(model: Optional[Path] = MODEL,
                        n: int = typer.Option(ground_truth.TEST_COUNT, "--n", min=1, max=ground_truth.TEST_COUNT,
                                              help="Held-out built-in images (default: all 1,024 of the test split)."),
                        batch: int = typer.Option(32, "--batch", min=1), device: str = DEVICE, as_json: bool = JSON) -> None:
    """MSE and SSIM of reconstructions of held-out built-in images, beside the training set's mean image.

    Example: automod eval recon-truth --model runs/builtin
    """
    loaded = _builtin_model(model, device)
    reconstructor = ground_truth.model_reconstructor(loaded.model)
    with _progress() as progress:
        result = ground_truth.reconstruction_error(reconstructor, n, loaded.model.resolution, batch, progress=progress)
    if as_json:
        typer.echo(json.dumps({"metric": "recon-truth", "model": str(loaded.checkpoint), "images": result.images,
                               "resolution": result.resolution, "reconstruction": asdict(result.reconstruction),
                               "mean_image": asdict(result.mean_image)}, indent=2))
        return
    rows = {"reconstruction": result.reconstruction, "mean training image": result.mean_image}
    console.print(_scores_table(f"reconstruction of {result.images} held-out images at {result.resolution}²", rows))


@eval_app.command("fd-builtin")
def fd_builtin_command(model: Optional[Path] = MODEL,
                       n: int = typer.Option(1024, "--n", min=2, help="Generated samples (default: as many as the 1,024 test images)."),
                       mix: bool = typer.Option(False, "--mix", help="Decode each sample from two random latents split at a random block."),
                       batch: int = typer.Option(64, "--batch", min=1), device: str = DEVICE, seed: int = SEED,
                       as_json: bool = JSON) -> None:
    """Fréchet distance of samples (or mixes) to held-out built-in images in automod's own factor-network features.

    Example: automod eval fd-builtin --model runs/builtin --mix
    """
    from automod_cli.metrics.builtin.fd_builtin import fd_builtin

    loaded = _builtin_model(model, device, seed)
    with _progress() as progress:
        extractor, net_cached = factor_features(Recipe(loaded.model.resolution), loaded.device, progress=progress)
        torch.manual_seed(seed)  # layer noise from the seed, as each cell of `eval compare`
        result = fd_builtin(loaded.model, extractor, n, batch, seed, mix, default_cache_dir(), progress)
    name = "fd-builtin-mix" if mix else "fd-builtin"
    _emit({"metric": name, "model": str(loaded.checkpoint), name: result.fid, "samples": result.samples,
           "reference": result.reference, "reference_images": result.reference_count,
           "reference_cached": result.reference_cached, "extractor": extractor.name, "extractor_cached": net_cached},
          as_json, "FD_builtin (mixes)" if mix else "FD_builtin")


def _comparison_table(result: comparison.Comparison, metrics: list[str]) -> Table:
    """Table 2a's layout: a row per model or group of seeds (mean ± std), a column per metric; "—": not measured."""
    table = Table(title="comparison (↓ smaller is better, ↑ larger is better)", title_justify="left")
    table.add_column("model")
    table.add_column("kind")
    for metric in metrics:
        table.add_column(comparison.header(metric), justify="right")
    for row in comparison.table_rows(result, metrics):
        table.add_row(*row)
    return table


def _networks(metrics: list[str], weights: List[Path], net: Net, device: torch.device) -> comparison.Networks:
    """Find every weight file the metrics need before any work starts; build the networks on first use."""
    needed = ([weight_files.INCEPTION] if {"fid", "fid-mix"} & set(metrics) else [])
    needed += [LPIPS_NETS[net.value]] if {"lpips", "ppl"} & set(metrics) else []
    paths = {w.name: weight_files.resolve_weights(w, weight_files.pick_explicit(weights, w, needed)) for w in needed}
    return comparison.Networks(
        make_extractor=lambda: inception_features(paths[weight_files.INCEPTION.name], device),
        make_distance=lambda: lpips_distance(net.value, paths[LPIPS_NETS[net.value].name], device),
        make_factor_features=lambda resolution, progress: factor_features(Recipe(resolution), device, progress=progress)[0],
    )


def _metric_names(spec: str) -> list[str]:
    """`--metrics`: names and the family shorthands (paper, builtin), in order, each once."""
    names = [name.strip() for name in spec.split(",") if name.strip()]
    expanded = [m for name in names for m in comparison.METRIC_SETS.get(name, (name,))]
    comparison.check_metrics(expanded)
    return list(dict.fromkeys(expanded))


def _groups(specs: List[str]) -> dict[str, list[Path]]:
    """`--group NAME=RUN1,RUN2,...`, each NAME once."""
    groups: dict[str, list[Path]] = {}
    for spec in specs:
        name, equals, runs = spec.partition("=")
        if not equals or not name.strip() or not runs.strip():
            raise AutomodError(f"--group '{spec}' should read NAME=RUN1,RUN2,... (runs of one configuration, different seeds).")
        if name.strip() in groups:
            raise AutomodError(f"--group '{name.strip()}' is given twice: give each group its own name.")
        groups[name.strip()] = [Path(run.strip()) for run in runs.split(",") if run.strip()]
    return groups


@eval_app.command("compare")
def compare_command(
    models: Optional[List[Path]] = typer.Argument(None, help="Checkpoint files or run directories, one table row each."),
    metrics: str = typer.Option(",".join(comparison.PAPER_METRICS), "--metrics",
                                help="Comma-separated. The papers': lpips, fid, fid-mix, ppl (pretrained weights). Built-in "
                                     "models only, no weights: recon-mse, recon-ssim (held-out reconstructions), mix-mse, "
                                     "mix-ssim (ground-truth coarse mix), fd-builtin, fd-builtin-mix. Shorthands: paper, builtin."),
    groups: List[str] = typer.Option([], "--group", help="NAME=RUN1,RUN2,...: runs of one configuration with different "
                                                         "seeds, shown as one row of mean ± std (repeatable)."),
    n: Optional[int] = typer.Option(None, "--n", min=2, help="Images/samples per metric (default: each metric's protocol)."),
    data: Optional[Path] = REF_DATA, test_data: Optional[Path] = typer.Option(None, "--test-data", help="Unseen test .h5 for LPIPS."),
    crop: Crop = CROP, net: Net = NET, batch: int = typer.Option(32, "--batch", min=1), weights: List[Path] = WEIGHTS,
    out: Path = typer.Option(Path("compare"), "--out", help="Writes OUT.csv and OUT.json (per-run values and group mean/std) and OUT.md (the printed table)."),
    force: bool = FORCE, device: str = DEVICE, seed: int = SEED, as_json: bool = JSON,
) -> None:
    """Run several metrics on several models and print one Table-2-style table (also as CSV, JSON and Markdown).

    Example: automod eval compare runs/automod runs/pioneer runs/vae --metrics lpips,fid,ppl --out table2a

    Example (built-in data, no downloads): automod eval compare runs/pioneer --group automod=runs/am-s1,runs/am-s2,runs/am-s3 --metrics builtin
    """
    chosen = _metric_names(metrics)
    named = _groups(groups)
    csv_path, json_path, md_path = (out.with_name(out.name + suffix) for suffix in (".csv", ".json", ".md"))
    _check_outputs([csv_path, json_path, md_path], force)
    torch.manual_seed(seed)
    target = _device(device)
    networks = _networks(chosen, weights, net, target)
    settings = comparison.CompareSettings(n, data, test_data, crop.value, seed, batch, default_cache_dir())
    with _progress() as progress:
        result = comparison.compare(list(models or []), chosen, networks, settings, target, progress, named)
    comparison.write_csv(csv_path, result, chosen)
    comparison.write_json(json_path, result)
    comparison.write_markdown(md_path, result, chosen)
    if as_json:
        typer.echo(json.dumps(comparison.records(result), indent=2))
        return
    console.print(_comparison_table(result, chosen))
    console.print(f"wrote {csv_path}, {json_path} and {md_path}")


def register(app: typer.Typer) -> None:
    """Attach `automod eval ...` and the top-level `automod project`."""
    from automod_cli.commands import project

    eval_app.command("project")(project.eval_project)
    app.add_typer(eval_app, name="eval")
    app.command("project")(project.project)
