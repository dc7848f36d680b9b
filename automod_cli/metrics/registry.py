"""Every metric automod computes, one record each (`Metric`), kept in `REGISTRY`.

A record says everything the rest of the toolkit needs to know about a metric: its name (`automod eval NAME`),
the count its protocol uses, what it needs of a model (mixing, an encoder, the built-in dataset's ground truth),
the pretrained networks it stands on, which data it reads, the table columns it fills in `eval compare` (each with
its direction and its printed precision) and the function that runs it. `commands/eval.py` has one command per
record, taking the options its record names (its help, `--n` and `--batch` read from the record), and `compare.py`
fills its table from the same records, so adding a metric is one record, its function and its command.

A run function takes a `Job` (the model, the networks, the settings, a progress callback) and returns an
`Outcome`: the column values, the fields the single command reports, and the facts of the protocol it ran;
`protocol` completes them from the record into what makes a score reproducible (`--json`'s "protocol").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from automod_cli import __version__, defaults
from automod_cli.errors import AutomodError

if TYPE_CHECKING:  # the metrics (and torch) are imported when one runs: `automod eval NAME --help` needs none
    import torch

    from automod_cli.features.nets import DistanceNet, FeatureExtractor
    from automod_cli.metrics import fid as fid_metric
    from automod_cli.metrics.builtin import ground_truth
    from automod_cli.locate import OpenedModel
    from automod_cli.ops.reconstruct import ProgressCallback

PAPER, BUILTIN = (
    "paper",
    "builtin",
)  # the two families: pretrained weights / models trained on the built-in data
MIXING, ENCODER, TRUTH = "mixing", "encoder", "truth"  # what a metric may need of a model
INCEPTION, LPIPS, FACTOR_NET = (
    "inception",
    "lpips",
    "factor-net",
)  # the feature networks a metric may stand on


@dataclass(frozen=True)
class Settings:
    """What a run may read besides the model; the command's options, or `eval compare`'s for every cell."""

    n: int | None = None  # None: the record's protocol count
    batch_size: int = 32
    seed: int = 0
    data: Path | None = None  # reference images (FID); None: the model's training data
    test_data: Path | None = (
        None  # unseen test images (LPIPS); None: the built-in test split for built-in models
    )
    crop: str = "face"
    net: str = "alex"  # LPIPS trunk
    scales: str = defaults.MIX_TRUTH_SCALES  # B's blocks in the ground-truth mix
    cache_dir: Path | None = None  # reference statistics


@dataclass
class Networks:
    """Factories for the Inception features, the LPIPS network and (per resolution) the factor-network features;
    each is built on first use and kept. `files` names the weight file behind each pretrained network."""

    make_extractor: Callable[[], FeatureExtractor]
    make_distance: Callable[[], DistanceNet]
    make_factor_features: Callable[[int, ProgressCallback | None], FeatureExtractor]
    files: dict[str, Path] = field(default_factory=dict)
    _built: dict = field(default_factory=dict)

    def _get(self, key, make: Callable[[], object]):
        if key not in self._built:
            self._built[key] = make()
        return self._built[key]

    def extractor(self) -> FeatureExtractor:
        return self._get(INCEPTION, self.make_extractor)

    def distance(self) -> DistanceNet:
        return self._get(LPIPS, self.make_distance)

    def factor_features(self, resolution: int, progress: ProgressCallback | None = None) -> FeatureExtractor:
        return self._get((FACTOR_NET, resolution), lambda: self.make_factor_features(resolution, progress))


@dataclass(frozen=True)
class Job:
    loaded: OpenedModel
    networks: Networks
    settings: Settings
    progress: ProgressCallback | None = None

    def count(self, metric: "Metric", available: int | None = None) -> int | None:
        """`n`, else the protocol's count (None: all that `available` holds); never more than `available`."""
        count = self.settings.n if self.settings.n is not None else metric.count
        if count is None:
            return available
        return min(count, available) if available is not None else count


@dataclass(frozen=True)
class Outcome:
    values: dict[str, float]  # a value per table column of the record
    fields: dict[str, Any]  # what the single command reports (JSON), besides metric, model and protocol
    facts: dict[str, Any]  # the run's part of the protocol: images, reference, feature network's name, ...
    rows: dict[str, ground_truth.Scores] | None = None  # MSE/SSIM rows of a ground-truth score, for its table
    title: str | None = None  # the printed table's title, when it depends on the run
    note: str | None = None  # a caveat printed under the table


@dataclass(frozen=True)
class Column:
    """One column of the comparison table."""

    name: str
    higher_is_better: bool = False
    digits: int = 2  # decimals shown in printed and Markdown tables

    @property
    def header(self) -> str:
        return f"{self.name.upper()} {'↑' if self.higher_is_better else '↓'}"


@dataclass(frozen=True)
class Metric:
    """One metric: what it is, what it needs and reads, the columns it fills, and how to run it."""

    name: str  # `automod eval NAME`
    title: str  # the printed result's title
    help: str  # the command's help: what it measures
    example: str
    family: str  # PAPER or BUILTIN
    count: int | None  # the protocol's count (None: every image of the data)
    count_help: str
    run: Callable[[Job], Outcome]
    columns: tuple[Column, ...]
    needs: frozenset[str] = frozenset()  # MIXING, ENCODER, TRUTH
    networks: tuple[str, ...] = ()  # INCEPTION, LPIPS, FACTOR_NET
    data: str | None = None  # "reference" or "test": what `--data` names
    crops: bool = False  # takes --crop (and, with LPIPS, --net)
    seeded: bool = True  # takes --seed (ground-truth scores involve no randomness)
    batch: int = 32
    count_min: int = 1
    count_max: int | None = None
    resize: str = "none"  # what happens to the images before the feature network (see `protocol`)
    mix_variant: str | None = None  # the record that `--mix` runs instead
    scales: bool = False  # takes --scales and --grid (the ground-truth mix)


# --- run functions ------------------------------------------------------------------------------------------------


def _fid_outcome(
    name: str,
    result: fid_metric.FIDResult,
    extractor: FeatureExtractor,
    extra: dict | None = None,
    key: str | None = None,
    feature_file: Path | None = None,
) -> Outcome:
    fields = {
        name: result.fid,
        "samples": result.samples,
        "reference": result.reference,
        "reference_images": result.reference_count,
        "reference_cached": result.reference_cached,
        **(extra or {}),
    }
    facts = {
        "images": result.samples,
        "unit": "samples",
        "feature_name": getattr(extractor, "name", None),
        "feature_file": feature_file,
        "reference": {
            "data": result.reference,
            "key": key,
            "images": result.reference_count,
            "statistics": result.statistics_file,
        },
    }
    return Outcome({name: result.fid}, fields, facts)


def _run_fid(mix: bool) -> Callable[[Job], Outcome]:
    def run(job: Job) -> Outcome:
        import torch

        from automod_cli.metrics import fid as fid_metric
        from automod_cli.metrics.data import reference_data

        s = job.settings
        reference, extractor = reference_data(job.loaded, s.data), job.networks.extractor()
        torch.manual_seed(
            s.seed
        )  # layer noise from the seed, in the single command and in each cell of compare
        result = fid_metric.fid(
            job.loaded.model,
            reference,
            extractor,
            job.count(REGISTRY["fid-mix" if mix else "fid"]),
            s.batch_size,
            s.seed,
            mix,
            s.cache_dir,
            job.progress,
        )
        return _fid_outcome("fid-mix" if mix else "fid", result, extractor, key=reference.key)

    return run


def _run_fd_builtin(mix: bool) -> Callable[[Job], Outcome]:
    def run(job: Job) -> Outcome:
        import torch

        from automod_cli.metrics.builtin import fd_builtin

        s, name = job.settings, "fd-builtin-mix" if mix else "fd-builtin"
        extractor = job.networks.factor_features(job.loaded.model.resolution, job.progress)
        torch.manual_seed(s.seed)
        result = fd_builtin.fd_builtin(
            job.loaded.model,
            extractor,
            job.count(REGISTRY[name]),
            s.batch_size,
            s.seed,
            mix,
            s.cache_dir,
            job.progress,
        )
        extra = {"extractor": extractor.name, "extractor_cached": getattr(extractor, "cached", None)}
        return _fid_outcome(name, result, extractor, extra, feature_file=getattr(extractor, "file", None))

    return run


def _run_lpips(job: Job) -> Outcome:
    from automod_cli.metrics import lpips_recon
    from automod_cli.metrics.data import unseen_data

    s = job.settings
    data = unseen_data(job.loaded, s.test_data)
    result = lpips_recon.reconstruction_lpips(
        job.loaded.model,
        data,
        _distance(job),
        job.count(REGISTRY["lpips"], len(data)),
        s.crop,
        s.batch_size,
        job.progress,
    )
    fields = {
        "lpips": result.lpips,
        "std": result.std,
        "images": result.images,
        "data": result.data,
        "crop": result.crop,
        "net": s.net,
    }
    return Outcome(
        {"lpips": result.lpips},
        fields,
        {"images": result.images, "unit": "test images", "reference": {"data": data.label, "key": data.key}},
    )


def _run_ppl(job: Job) -> Outcome:
    from automod_cli.metrics import ppl

    s = job.settings
    result = ppl.perceptual_path_length(
        job.loaded.model,
        _distance(job),
        job.count(REGISTRY["ppl"]),
        crop_mode=s.crop,
        batch_size=s.batch_size,
        seed=s.seed,
        progress=job.progress,
    )
    fields = {
        "ppl": result.ppl,
        "pairs": result.samples,
        "epsilon": result.epsilon,
        "crop": result.crop,
        "net": s.net,
    }
    return Outcome(
        {"ppl": result.ppl}, fields, {"images": result.samples, "unit": "latent pairs", "reference": None}
    )


def _run_recon_truth(job: Job) -> Outcome:
    from automod_cli.metrics.builtin import ground_truth

    model = job.loaded.model
    count = job.count(REGISTRY["recon-truth"], ground_truth.TEST_COUNT)
    result = ground_truth.reconstruction_error(
        ground_truth.model_reconstructor(model),
        count,
        model.resolution,
        job.settings.batch_size,
        progress=job.progress,
    )
    values = {"recon-mse": result.reconstruction.mse, "recon-ssim": result.reconstruction.ssim}
    fields = {
        "images": result.images,
        "resolution": result.resolution,
        "reconstruction": asdict(result.reconstruction),
        "mean_image": asdict(result.mean_image),
    }
    rows = {"reconstruction": result.reconstruction, "mean training image": result.mean_image}
    return Outcome(
        values,
        fields,
        {
            "images": result.images,
            "unit": "test images",
            "reference": {"data": f"built-in test split (seed {ground_truth.TEST_SEED})"},
        },
        rows,
        f"reconstruction of {result.images} held-out images at {result.resolution}²",
    )


def _run_mix_truth(job: Job) -> Outcome:
    from automod_cli.metrics.builtin import ground_truth
    from automod_cli.ops.scales import describe

    model = job.loaded.model
    blocks = ground_truth.b_blocks(model, job.settings.scales)
    truth = ground_truth.truth_for(model, blocks)
    pairs = ground_truth.truth_pairs(
        job.count(REGISTRY["mix-truth"], ground_truth.MAX_PAIRS), model.resolution, truth.layout_from
    )
    result = ground_truth.mixing_error(
        ground_truth.model_mixer(model, blocks), pairs, job.settings.batch_size, job.progress
    )
    values = {"mix-mse": result.truth.mse, "mix-ssim": result.truth.ssim}
    layout = ground_truth.scale_blocks(ground_truth.LAYOUT_SCALE, model.num_active_blocks, model.block_levels)
    fields = {
        "pairs": result.pairs,
        "resolution": result.resolution,
        "b_blocks": list(blocks),
        "layout_blocks": list(layout),
        "truth_is": truth.label,
        "swapped_is": truth.swapped_label,
        "exact_truth": truth.exact,
        **{name: asdict(scores) for name, scores in result.rows().items()},
    }
    labels = {
        "truth": f"truth: {truth.label}",
        "swapped": f"swapped: {truth.swapped_label}",
        "a": "A",
        "b": "B",
    }
    where = describe(blocks, model.block_levels)
    title = (
        f"ground-truth mixing error: A with B's {where}, as automod mix A B; truth: {truth.label} (block 0, "
        f"4x4, is {truth.layout_from}'s); {result.pairs} pairs at {result.resolution}²"
    )
    group = layout if truth.split == "layout" else range(layout.stop, model.num_active_blocks)
    note = (
        None
        if truth.exact
        else (
            f"B's {where} split the {'layout blocks' if truth.split == 'layout' else 'blocks above the layout'}, "
            f"{describe(group, model.block_levels)}, between A and B: no image is exactly right, and the truth only "
            "follows whoever drives block 0."
        )
    )
    return Outcome(
        values,
        fields,
        {
            "images": result.pairs,
            "unit": "image pairs",
            "reference": {"data": f"built-in test split (seed {ground_truth.TEST_SEED})"},
        },
        {labels[name]: scores for name, scores in result.rows().items()},
        title,
        note,
    )


# --- the records --------------------------------------------------------------------------------------------------

_INCEPTION_RESIZE = (
    "bilinear to 299×299, no antialiasing (pytorch-fid's InceptionV3), after uint8 quantisation"
)
_BUILTIN_RESIZE = (
    "none: the built-in images are drawn at 64² and box-downscaled to the model's resolution, as in training"
)

METRICS: tuple[Metric, ...] = (
    Metric(
        "fid",
        "FID",
        "FID of random samples against the training data (Inception-v3 pool3, as pytorch-fid).",
        "automod eval fid --model runs/ffhq --n 50000",
        PAPER,
        defaults.FID_SAMPLES,
        "Generated samples (paper: 50k).",
        _run_fid(False),
        (Column("fid"),),
        networks=(INCEPTION,),
        data="reference",
        batch=defaults.FID_BATCH,
        count_min=2,
        resize=_INCEPTION_RESIZE,
    ),
    Metric(
        "fid-mix",
        "FID-MIX",
        "FID of samples decoded from two random latents split at a random block (NeurIPS Table 1).",
        "automod eval fid-mix --model runs/celebahq --n 50000",
        PAPER,
        defaults.FID_SAMPLES,
        "Generated mixtures (paper: 50k).",
        _run_fid(True),
        (Column("fid-mix"),),
        needs=frozenset({MIXING}),
        networks=(INCEPTION,),
        data="reference",
        batch=defaults.FID_BATCH,
        count_min=2,
        resize=_INCEPTION_RESIZE,
    ),
    Metric(
        "ppl",
        "PPL",
        "Perceptual path length: LPIPS/ε² between decodings at t and t+ε of latent paths (slerp on "
        "the sphere, lines for Gaussian and LIA latents), ε = 1e-4, trimmed mean.",
        "automod eval ppl --model runs/ffhq --n 100000",
        PAPER,
        defaults.PPL_SAMPLES,
        "Latent pairs (paper: 100k).",
        _run_ppl,
        (Column("ppl", digits=1),),
        networks=(LPIPS,),
        crops=True,
        count_min=2,
    ),
    Metric(
        "lpips",
        "LPIPS reconstruction",
        "Mean LPIPS between unseen test images and their reconstructions (NeurIPS Table 2a).",
        "automod eval lpips --model runs/ffhq --data data/ffhq-test-256.h5 --n 10000",
        PAPER,
        None,
        "Test images (default: all; paper: 10k).",
        _run_lpips,
        (Column("lpips", digits=3),),
        needs=frozenset({ENCODER}),
        networks=(LPIPS,),
        data="test",
        crops=True,
    ),
    Metric(
        "mix-truth",
        "ground-truth mixing error",
        "Ground-truth mixing error: mix(A, B), A with B's --scales as "
        "`automod mix A B` draws it, against the renderer's picture of the layout of whoever drives block 0 "
        "(4²) in the other's colours (built-in models only).",
        "automod eval mix-truth --model runs/builtin --scales coarse --grid mix-truth.png",
        BUILTIN,
        defaults.MIX_TRUTH_PAIRS,
        "Pairs of held-out built-in images (default: all 512 of the test split).",
        _run_mix_truth,
        (Column("mix-mse", digits=4), Column("mix-ssim", higher_is_better=True, digits=3)),
        needs=frozenset({MIXING, ENCODER, TRUTH}),
        seeded=False,
        count_max=defaults.MIX_TRUTH_PAIRS,
        resize=_BUILTIN_RESIZE,
        scales=True,
    ),
    Metric(
        "recon-truth",
        "reconstruction of held-out images",
        "MSE and SSIM of reconstructions of held-out built-in images, beside the training set's mean image.",
        "automod eval recon-truth --model runs/builtin",
        BUILTIN,
        defaults.BUILTIN_TEST_COUNT,
        "Held-out built-in images (default: all 1,024 of the test split).",
        _run_recon_truth,
        (Column("recon-mse", digits=4), Column("recon-ssim", higher_is_better=True, digits=3)),
        needs=frozenset({ENCODER, TRUTH}),
        seeded=False,
        count_max=defaults.BUILTIN_TEST_COUNT,
        resize=_BUILTIN_RESIZE,
    ),
    Metric(
        "fd-builtin",
        "FD_builtin",
        "Fréchet distance of samples (or mixes) to held-out built-in images in "
        "automod's own factor-network features.",
        "automod eval fd-builtin --model runs/builtin --mix",
        BUILTIN,
        defaults.FD_BUILTIN_SAMPLES,
        "Generated samples (default: as many as the 1,024 test images).",
        _run_fd_builtin(False),
        (Column("fd-builtin"),),
        networks=(FACTOR_NET,),
        batch=defaults.FD_BUILTIN_BATCH,
        count_min=2,
        resize=_BUILTIN_RESIZE,
        mix_variant="fd-builtin-mix",
    ),
    Metric(
        "fd-builtin-mix",
        "FD_builtin (mixes)",
        "FD_builtin of samples decoded from two random latents split at a "
        "random block (the same as fd-builtin --mix).",
        "automod eval fd-builtin-mix --model runs/builtin",
        BUILTIN,
        defaults.FD_BUILTIN_SAMPLES,
        "Generated mixtures (default: as many as the 1,024 test images).",
        _run_fd_builtin(True),
        (Column("fd-builtin-mix"),),
        needs=frozenset({MIXING}),
        networks=(FACTOR_NET,),
        batch=defaults.FD_BUILTIN_BATCH,
        count_min=2,
        resize=_BUILTIN_RESIZE,
    ),
)
REGISTRY: dict[str, Metric] = {metric.name: metric for metric in METRICS}
COLUMNS: dict[str, tuple[Metric, Column]] = {
    c.name: (m, c) for m in METRICS for c in m.columns
}  # compare's names
PAPER_COLUMNS = ("lpips", "fid", "fid-mix", "ppl")  # Table 2's order
BUILTIN_COLUMNS = tuple(name for name, (metric, _) in COLUMNS.items() if metric.family == BUILTIN)
COLUMN_SETS = {PAPER: PAPER_COLUMNS, BUILTIN: BUILTIN_COLUMNS}  # shorthands for `eval compare --metrics`


# --- what a model must offer, and the protocol of a score ---------------------------------------------------------


def missing_reason(metric: Metric, model: torch.nn.Module) -> str | None:
    """Why `model` cannot be measured by `metric`, or None when it can."""
    from automod_cli.features.ssim import WINDOW

    if MIXING in metric.needs and not model.supports_mixing:
        return "a classic decoder takes one latent for every layer: it cannot mix (mixing needs an AdaIN decoder)"
    if ENCODER in metric.needs and not model.has_encoder:
        return "the model has no encoder (a LIA model after stage 1 only)"
    if TRUTH in metric.needs and model.resolution < WINDOW:
        return (
            f"the model's {model.resolution}² images are smaller than the {WINDOW}×{WINDOW} window of the "
            "ground-truth SSIM"
        )
    return None


def require_builtin(
    checkpoint: Path, trained_on: Path | str | None, what: str = "the ground-truth metrics"
) -> None:
    """Refuse a model that was not trained on the built-in dataset (its checkpoint records a data file)."""
    if trained_on is not None:
        raise AutomodError(
            f"'{checkpoint}' was trained on '{trained_on}'; {what} need a model trained on the built-in "
            "dataset (automod train without --data)."
        )


def check_lpips_window(resolution: int, crop: str, net: str, min_side: int | None = None) -> None:
    """Refuse an LPIPS window smaller than the trunk takes (`min_side`, by default LPIPS_MIN_SIDE[net]), before any
    image is compared; the advice names only flag values other than those given that fit a model of this size."""
    from automod_cli.features.crop import crop_side
    from automod_cli.features.nets import LPIPS_MIN_SIDE

    side, needed = crop_side(resolution, crop), LPIPS_MIN_SIDE[net] if min_side is None else min_side
    if side >= needed:
        return
    sides = {**LPIPS_MIN_SIDE, net: needed}
    fits = [(c, n) for c in ("face", "center", "none") for n in sides if crop_side(resolution, c) >= sides[n]]
    one_change = [f"--crop {c}" if n == net else f"--net {n}" for c, n in fits if (c == crop) != (n == net)]
    if one_change:
        advice = "use " + " or ".join(one_change)
    elif fits:
        advice = f"use --crop {fits[0][0]} --net {fits[0][1]}"
    else:
        advice = (
            f"no window of a {resolution}² model is that large: evaluate a model of at least "
            f"{min(sides.values())}²"
        )
    raise AutomodError(
        f"LPIPS-{net} needs images of at least {needed} pixels, but the '{crop}' crop of this model's "
        f"{resolution}² images is {side}: {advice}."
    )


def _distance(job: Job) -> DistanceNet:
    """The LPIPS network, once the model's window is known to be large enough for it."""
    distance = job.networks.distance()
    min_side = getattr(distance, "min_side", None)  # stand-ins without one take any size
    if min_side is not None:
        check_lpips_window(job.loaded.model.resolution, job.settings.crop, job.settings.net, min_side)
    return distance


def _file(path: Path | str | None) -> dict | None:
    """A file and its SHA-256 (None when there is no such file)."""
    from automod_cli.features.weights import file_sha256

    if path is None or not Path(path).is_file():
        return None
    return {"file": str(path), "sha256": file_sha256(Path(path))}


def protocol(metric: Metric, job: Job, outcome: Outcome) -> dict[str, Any]:
    """What a score was measured with, so that it can be reproduced: the count, resolution, crop and resizing, the
    feature network (its weight file and SHA-256), the reference (data and cached statistics, with its SHA-256),
    seed, batch size and automod's version."""
    from automod_cli.features.crop import MAX_SIDE, crop_side

    s, facts, resolution = job.settings, outcome.facts, job.loaded.model.resolution
    network: dict[str, Any] | None = None
    if INCEPTION in metric.networks:
        network = {
            "name": facts.get("feature_name") or "inception-v3-pool3",
            **(_file(job.networks.files.get(INCEPTION)) or {}),
        }
    elif LPIPS in metric.networks:
        network = {"name": f"lpips-v0.1-{s.net}", **(_file(job.networks.files.get(LPIPS)) or {})}
    elif FACTOR_NET in metric.networks:
        network = {"name": facts.get("feature_name"), **(_file(facts.get("feature_file")) or {})}
    reference = facts.get("reference")
    if reference is not None and "statistics" in reference:
        reference = {**reference, "statistics": _file(reference["statistics"])}
    resize = metric.resize
    if metric.crops:
        side = crop_side(resolution, s.crop)
        resize = f"box to {MAX_SIDE}×{MAX_SIDE} (the crop is {side} wide)" if side // MAX_SIDE > 1 else "none"
    return {
        "metric": metric.name,
        "images": facts.get("images"),
        "unit": facts.get("unit"),
        "resolution": resolution,
        "crop": s.crop if metric.crops else None,
        "resize": resize,
        "feature_network": network,
        "reference": reference,
        "model": _file(job.loaded.checkpoint),
        "seed": s.seed if metric.seeded else None,
        "batch": s.batch_size,
        "automod_version": __version__,
    }


def measure(metric: Metric, job: Job) -> tuple[Outcome, dict[str, Any]]:
    """Run one metric on one model: its outcome and its protocol."""
    outcome = metric.run(job)
    return outcome, protocol(metric, job, outcome)


def nan_values(metric: Metric) -> dict[str, float]:
    return {column.name: math.nan for column in metric.columns}
