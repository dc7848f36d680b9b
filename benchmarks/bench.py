"""Speed benchmarks (issue 8): training throughput, encoder/decoder latency, data reader. JSON lines on stdout.

    python benchmarks/bench.py train  [--preset builtin] [--resolutions 8 16 32] [--steps 20] [--warmup 3]
                                      [--precision fp32 bf16] [--variants loop naive ...] [--rounds 3]
                                      [--compile] [--cudnn-benchmark] [--device cpu|cuda] [--peak-tflops T]
                                      [--kernel-time] [--top-ops N]
    python benchmarks/bench.py encode [--preset builtin] [--batches 1 64] [--steps 20] [--precision fp32 bf16]
    python benchmarks/bench.py data   [--resolutions 32 128 256] [--images 1024] [--workers 0 2]
    python benchmarks/bench.py project --model RUN [--start mean|random] [--steps 200] [--images 64] [--batches 16]
    python benchmarks/bench.py syncs  [--preset builtin] [--device cuda|meta] [--steps 2] [--kinds automod vae ...]
    python benchmarks/bench.py project-cost [--preset ffhq] [--distance vgg alex] [--steps 5] [--batches 1]
    python benchmarks/bench.py matmul [--device cuda] [--precision bf16] [--size 8192]

`reader` and `latency` are the older names of `data` and `encode`. Training runs the loop's own iteration (the
encoder step, the decoder step and the EMA update, under the run's precision and layout) on one batch held on
the device, at each resolution's steady state (fade-in done) with the preset's batch size, after `--warmup`
iterations; images/s counts real images consumed, as the papers count images seen. `--variants` adds versions of
the iteration with the loop's optimisations undone (benchmarks/naive.py; `naive` undoes all of them) and reports
loop_speedup = variant time ÷ loop time. `project` races the encoder against projection on a built-in model with
the pixel MSE in place of LPIPS (no weights needed; a proxy for App. G's claim). `syncs` counts the host-device
synchronisations in the training iterations of every model kind at every level (the real training run on the
built-in data): on CUDA the warnings of torch.cuda.set_sync_debug_mode, on the meta device (no GPU needed) the
host reads that raise there; tests/test_host_sync.py runs the meta version in CI. Several precisions and
variants are timed in alternating rounds (`--rounds`) so that load from other processes hits each alike. Every
record carries the peak memory (CPU: the process's peak RSS so far; CUDA: the peak allocated during that
measurement) and the model FLOPs of one training image (torch.utils.flop_counter, forward and backward). MFU =
achieved FLOP/s ÷ the GPU's dense bf16 peak, on CUDA (peak from PEAK_BF16_TFLOPS or --peak-tflops);
`--kernel-time` adds the share of time the GPU spends in kernels, from torch.profiler (issue 8's target: ≥ 40 %
at 256²), and `--top-ops N` the N ops (on CUDA: kernels) taking the most time, each with its ms per iteration
and share. Record results, with the machine, torch version, config and date, in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from automod_cli.presets import resolve_train_config
from automod_cli.locate import load_model
from automod_cli.losses import AdaptiveRobustLoss
from automod_cli.metrics.data import mean_latent_of, open_eval_data
from automod_cli.metrics.inversion import encoder_speedup, inversion_curve
from automod_cli.models import Automodulator
from automod_cli.ops.projection import PIXEL_WEIGHT, ProjectionSettings, project, projection_loss
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training.distributed import World
from automod_cli.training.ema import make_ema, update_ema
from automod_cli.training.loop import iteration
from automod_cli.training.precision import Precision
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets, decoder_step, encoder_step
from data_prep.hdf5 import H5Images, H5Writer, pyramid

sys.path.insert(0, str(Path(__file__).resolve().parent))
import naive  # noqa: E402  (benchmarks/naive.py: the straightforward iteration the loop is measured against)

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, TFLOP/s, matched against
# torch.cuda.get_device_name() ("NVIDIA H100 80GB HBM3" is the SXM part); anything else needs --peak-tflops.
PEAK_BF16_TFLOPS = {
    "H100 80GB HBM3": 989.4,
    "H200": 989.4,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "A100": 312.0,
}
EMA_BETA = 0.999  # any β: the update costs the same


def _foreach_adam(module, **kwargs):
    return torch.optim.Adam(module.parameters(), foreach=True, **kwargs)


@dataclass(frozen=True)
class Variant:
    """One way of running the iteration: the loop's own parts, or some of them replaced by benchmarks/naive.py's."""

    encoder_step: Callable = encoder_step
    decoder_step: Callable = decoder_step
    adam: Callable = _foreach_adam
    ema_update: Callable = update_ema


# `loop` is training/loop.py's iteration; each other variant undoes one optimisation (its loop ÷ variant ratio is
# what that optimisation buys), and `naive` undoes them all: one forward per loss term, per-tensor Adam and EMA.
VARIANTS = {
    "loop": Variant(),
    "naive": Variant(naive.encoder_step, naive.decoder_step, naive.plain_adam, naive.plain_ema_update),
    "separate-passes": Variant(naive.encoder_step, naive.decoder_step),
    "two-pass-encoder": Variant(encoder_step=naive.two_pass_encoder_step),
    "plain-adam": Variant(adam=naive.plain_adam),
    "plain-ema": Variant(ema_update=naive.plain_ema_update),
    # not an optimisation undone but one to try: Adam as one fused kernel; its loop_speedup < 1 means it is faster
    # than the loop's foreach Adam (no difference on the CPU: RESULTS.md)
    "fused-adam": Variant(
        adam=lambda module, **kwargs: torch.optim.Adam(module.parameters(), fused=True, **kwargs)
    ),
}


def emit(record: dict, args) -> None:
    device = torch.device(args.device)
    record.update(
        torch=torch.__version__,
        machine=platform.machine(),
        cpu_threads=torch.get_num_threads(),
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        date=datetime.date.today().isoformat(),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    waiting = {name: os.environ[name] for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if name in os.environ}
    if waiting:  # how OpenMP's threads wait (read once, when torch loads libgomp)
        record["openmp_wait"] = waiting
    if device.type == "cuda" and "peak_cuda_mb" not in record:
        record["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(record), flush=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def busy_fraction(intervals: list[tuple[float, float]], wall: float) -> float:
    """The share of a `wall`-long window covered by at least one of the (start, end) intervals (their union, so
    kernels overlapping on several streams count once)."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered / wall if wall > 0 else 0.0


def profiled(fn: Callable[[], object], steps: int, device: torch.device):
    """`steps` calls of `fn` under torch.profiler (host ops; on CUDA also the kernels, from CUPTI), after a
    synchronised start."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synchronize(device)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        synchronize(device)
    return prof


def _kernels(prof) -> list:
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    if not kernels:
        raise SystemExit("the profiler recorded no CUDA kernels (is CUPTI available?).")
    return kernels


def kernel_time_fraction(prof) -> float:
    """Issue 8's GPU target: the share of wall time in which the GPU runs at least one kernel (the window from
    the first kernel's start to the last kernel's end, so host-side gaps between launches count as idle)."""
    kernels = [(e.time_range.start, e.time_range.end) for e in _kernels(prof)]
    window = max(end for _, end in kernels) - min(start for start, _ in kernels)
    return busy_fraction(kernels, window)


def top_ops(prof, n: int, steps: int, device: torch.device) -> list[list]:
    """Where an iteration's time goes: the `n` largest [name, ms per iteration, share] by self time. On CUDA the
    kernels, grouped by kernel name (cut to 80 characters), as shares of all kernel time; on the CPU the aten ops
    (and the named regions, such as Adam's step), as shares of all self time, which partitions the host's time."""
    totals: dict[str, float] = {}
    if device.type == "cuda":
        for e in _kernels(prof):
            name = e.name[:80]
            totals[name] = totals.get(name, 0.0) + e.time_range.elapsed_us()
    else:
        for row in prof.key_averages():
            totals[row.key] = totals.get(row.key, 0.0) + row.self_cpu_time_total
    everything = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [[name, round(us / steps / 1000, 3), round(us / everything, 4)] for name, us in ranked]


def host_syncs(fn: Callable[[], object], device: torch.device) -> list[str]:
    """The host-device synchronisations in one call of `fn`, each as a one-line message. On CUDA every
    synchronising call is reported by torch.cuda.set_sync_debug_mode("warn"). On the meta device tensors hold no
    data, so a host read of a device value (`.item()`, `bool()`, `torch.equal`, mask indexing, `.cpu()`) raises
    instead: the first one ends the call and is the only one reported."""
    if device.type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fn()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message)]
    try:
        fn()
    except (RuntimeError, NotImplementedError) as error:
        if device.type != "meta":
            raise
        return [f"{type(error).__name__}: {str(error).splitlines()[0]}"]
    return []


def images_at_every_level(schedule) -> list[int]:
    """Images-seen values inside each phase of `schedule`: early in it (in the fade-in, where there is one) and
    at its end (the steady state)."""
    points, start = [], 0
    for res in schedule.resolutions:
        points += [start + 16, start + schedule.phase_images[res] - 16]
        start += schedule.phase_images[res]
    return points


def iterations_at_every_level(trainer, schedule, steps: int = 2) -> Callable[[], set[tuple[int, bool]]]:
    """A function that runs `steps` of the run's iterations (training/loop.py's `iteration`, for any model kind:
    loading, mirroring, the steps, the EMA) at each of images_at_every_level, growing as the run would; it returns the
    (resolution, in a fade-in) pairs trained. No log interval is passed: flushing the metrics is the loop's one
    deliberate read of device values."""

    def run() -> set[tuple[int, bool]]:
        trained = set()
        for images in images_at_every_level(schedule):
            trainer.counters.images_seen = images
            phase = phase_at(schedule, images)
            trainer.set_phase(phase)
            for _ in range(steps):
                iteration(trainer, phase)
            trained.add((phase.resolution, phase.alpha < 1))
        return trained

    return run


# The model kinds whose training iterations `bench.py syncs` checks, as resolve_train_config overrides.
SYNC_KINDS = {
    "automod": {},
    "automod-authors": {
        "recipe": "authors",
        "fake_pool": 8,
    },  # a pool smaller than a batch: it fills and swaps at once
    "automod-l1": {"reconstruction": "l1"},
    "flip-invariance": {"flip_invariance_layer": 2},
    "pioneer": {"kind": "pioneer"},
    "automod-classic": {
        "model.decoder": "classic",
        "mixed_fraction_encoder": 0.0,
        "mixed_fraction_decoder": 0.0,
        "layer_loss": False,
    },
    "vae": {"kind": "vae"},
    "wae": {"kind": "wae"},
    "vae-classic": {"kind": "vae", "model.decoder": "classic"},
}
SYNC_RUN = {
    "mirror": True,
    "data_limit": 256,
}  # mirroring on: its mask is the one per-step host-to-device copy


def bench_syncs(args) -> None:
    """For each model kind, a fresh trainer runs `iterations_at_every_level` while `host_syncs` watches. On CUDA the
    first kind runs a first, unwatched pass with its own trainer, which keeps the process's one-time set-up (CUDA
    context, cuDNN handles, the allocator's first growth) out."""
    device = torch.device(args.device)
    for number, kind in enumerate(args.kinds or list(SYNC_KINDS)):
        config = resolve_train_config(args.preset, {**SYNC_RUN, **SYNC_KINDS[kind]})
        for _ in range(2 if device.type == "cuda" and number == 0 else 1):  # the last pass counts
            with tempfile.TemporaryDirectory() as tmp:
                trainer = AutomodulatorRun(config, Path(tmp), device=torch.device(args.device))
                found = host_syncs(iterations_at_every_level(trainer, config, args.steps), device)
        emit(
            {
                "bench": "syncs",
                "preset": args.preset,
                "kind": kind,
                "steps_per_point": args.steps,
                "iterations": args.steps * len(images_at_every_level(config)),
                "syncs": len(found),
                "first": found[:3],
            },
            args,
        )


def bench_matmul(args) -> None:
    """The device's practical matrix-product ceiling: an n³ product (--size; 8192 on a GPU, 4096 on a CPU) of
    random operands, the median of --steps timed calls after --warmup, per precision. MFU is quoted against the
    data-sheet peak; this says how much of that a plain matrix product reaches on the same card."""
    device = torch.device(args.device)
    n = args.size or (8192 if device.type == "cuda" else 4096)
    for name in args.precision:
        dtype = torch.bfloat16 if name == "bf16" else torch.float32
        a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
        times = [
            timed(lambda: a @ b, 1, device, warmup=args.warmup if i == 0 else 0)[0] for i in range(args.steps)
        ]
        emit(
            {
                "bench": "matmul",
                "n": n,
                "precision": name,
                "steps": args.steps,
                "tflops": round(2 * n**3 / statistics.median(times) / 1e12, 3),
            },
            args,
        )


def peak_tflops(args) -> float | None:
    if args.peak_tflops is not None:
        return args.peak_tflops
    if torch.device(args.device).type != "cuda":
        return None
    name = torch.cuda.get_device_name(torch.device(args.device))
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def bench_data(args) -> None:
    top = max(args.resolutions)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        writer = H5Writer(
            path, top, {"source": "bench", "source_path": "-", "alignment": "none", "split": "all"}, "bench"
        )
        for _ in range(args.images):
            writer.add(pyramid(rng.integers(0, 256, (top, top, 3), dtype=np.uint8)))
        writer.checkpoint(args.images)
        writer.commit()
        for res in args.resolutions:
            for workers in args.workers:
                loader = DataLoader(
                    H5Images(path, res),
                    batch_size=32,
                    shuffle=True,
                    num_workers=workers,
                    prefetch_factor=4 if workers else None,
                )  # as training/data.py's loader
                batches = iter(loader)
                next(batches)  # steady state: the workers' start (once per phase in training) stays out
                start, n = time.perf_counter(), 0
                for batch in batches:
                    n += batch.shape[0]
                emit(
                    {
                        "bench": "data",
                        "resolution": res,
                        "workers": workers,
                        "batch": 32,
                        "images_per_s": round(n / (time.perf_counter() - start), 1),
                    },
                    args,
                )


class TrainingIteration:
    """The loop's iteration (training/loop.py) at one resolution's steady state, on a fixed batch."""

    def __init__(
        self,
        config,
        res: int,
        device: torch.device,
        precision: str,
        compile: bool,
        variant: Variant = Variant(),
    ):
        start = sum(config.phase_images[r] for r in config.resolutions if r < res)
        self.config, self.device = config, device
        self.phase = phase_at(config, start + config.phase_images[res] - 1)  # the phase's last image: α = 1
        model = Automodulator(config.model)
        self.nets = Nets(
            model.encoder.to(device), model.decoder.to(device), AdaptiveRobustLoss(3, res).to(device)
        )
        self.ema = make_ema(self.nets.decoder)
        self.precision = Precision(device.type, precision)
        self.precision.prepare(self.nets.encoder, self.nets.decoder, self.ema, compile=compile)
        self.variant = variant
        adam = lambda m: variant.adam(m, lr=self.phase.lr, betas=config.adam_betas, eps=config.adam_eps)
        self.encoder_opts, self.decoder_opts = (
            [adam(self.nets.encoder), adam(self.nets.robust)],
            [adam(self.nets.decoder)],
        )
        self.x = torch.rand(self.phase.batch_size, 3, res, res, device=device) * 2 - 1

    def __call__(self) -> None:
        world, config = World(), self.config
        with self.precision.autocast():
            self.variant.encoder_step(self.nets, self.x, self.phase, config, self.encoder_opts, world)
            self.variant.decoder_step(
                self.nets, self.x.shape[0], self.phase, config, self.decoder_opts, world, self.device
            )
        self.variant.ema_update(self.ema, self.nets.decoder, EMA_BETA)

    def flops(self, iterations: int = 8) -> float:
        """Model FLOPs of one iteration, forward and backward (matrix products and convolutions), averaged over a
        few iterations: L_j's canvas depth follows the random split j (drawn from a fixed seed, so the count is
        the same every time). Count on the meta device: same operations, no arithmetic, seconds at 256²."""
        counter = FlopCounterMode(display=False)
        torch.manual_seed(0)
        with counter:
            for _ in range(iterations):
                self()
        return counter.get_total_flops() / iterations


def timed(
    fn: Callable[[], object], steps: int, device: torch.device, warmup: int = 0
) -> tuple[float, float | None]:
    """Seconds for `steps` calls of `fn`, after `warmup` untimed ones, and on CUDA the peak MiB allocated meanwhile."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    reset_peak(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return seconds, peak


def bench_train(args) -> None:
    """Each resolution: one TrainingIteration per precision and variant, timed in alternating rounds so that load
    from other processes on a shared machine hits every one alike; the median round counts. FLOPs are the loop's
    model FLOPs (a variant that repeats passes does more arithmetic for the same training step, and is charged
    the loop's count: achieved FLOP/s and MFU measure useful work)."""
    config = resolve_train_config(args.preset, settings(args.set))
    device = torch.device(args.device)
    peak = peak_tflops(args)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    for res in args.resolutions:
        flops = TrainingIteration(
            config, res, torch.device("meta"), "fp32", compile=False
        ).flops()  # eager, so countable
        runs = {
            (p, v): TrainingIteration(config, res, device, p, args.compile, VARIANTS[v])
            for p in args.precision
            for v in args.variants
        }
        for step in runs.values():
            for _ in range(args.warmup):
                step()
        rounds: dict[tuple, list] = {key: [] for key in runs}
        for _ in range(args.rounds):
            for key, step in runs.items():
                rounds[key].append(timed(step, args.steps, device))
        for (p, v), measured in rounds.items():
            batch = runs[p, v].phase.batch_size
            seconds = statistics.median(s for s, _ in measured)
            record = {
                "bench": "train",
                "preset": args.preset,
                **({"set": args.set} if args.set else {}),
                "resolution": res,
                "batch": batch,
                "precision": p,
                "variant": v,
                "compile": args.compile,
                "cudnn_benchmark": args.cudnn_benchmark,
                "steps": args.steps,
                "rounds": args.rounds,
                "images_per_s": round(args.steps * batch / seconds, 2),
                "images_per_s_by_round": [round(args.steps * batch / s, 1) for s, _ in measured],
                "gflop_per_image": round(flops / batch / 1e9, 3),
                "achieved_tflops": round(flops * args.steps / seconds / 1e12, 4),
            }
            if v != "loop" and (p, "loop") in rounds:  # what the optimisation this variant undoes buys
                loop_seconds = statistics.median(s for s, _ in rounds[p, "loop"])
                record["loop_speedup"] = round(seconds / loop_seconds, 3)
            if device.type == "cuda":
                record["peak_cuda_mb"] = round(max(m for _, m in measured), 1)
            if args.kernel_time or args.top_ops:
                prof = profiled(runs[p, v], args.steps, device)
                if args.kernel_time:
                    record["kernel_time_fraction"] = round(kernel_time_fraction(prof), 4)
                if args.top_ops:
                    record["top_ops"] = top_ops(prof, args.top_ops, args.steps, device)
            if peak is not None:
                record.update(peak_tflops=peak, mfu=round(flops * args.steps / seconds / (peak * 1e12), 4))
            emit(record, args)


def bench_encode(args) -> None:
    """Encoder and decoder latency of the preset's full-resolution model under inference mode, as the image
    operations and metrics run it (ops/reconstruct.py)."""
    config = resolve_train_config(args.preset)
    device = torch.device(args.device)
    for name in args.precision:
        model = Automodulator(config.model).eval().to(device)
        precision = Precision(device.type, name)
        precision.prepare(model.encoder, model.decoder)
        res = model.resolution
        with torch.inference_mode(), precision.autocast():
            for batch in args.batches:
                x = torch.rand(batch, 3, res, res, device=device) * 2 - 1
                z = model.encode(x)
                for what, fn in (("encode", lambda: model.encode(x)), ("decode", lambda: model.decode(z))):
                    with FlopCounterMode(display=False) as counter:
                        fn()
                    ms = 1000 * timed(fn, args.steps, device, args.warmup)[0] / args.steps
                    emit(
                        {
                            "bench": what,
                            "preset": args.preset,
                            "resolution": res,
                            "batch": batch,
                            "precision": name,
                            "ms_per_call": round(ms, 2),
                            "images_per_s": round(1000 * batch / ms, 1),
                            "gflop_per_image": round(counter.get_total_flops() / batch / 1e9, 3),
                            "achieved_tflops": round(counter.get_total_flops() / ms / 1e9, 4),
                        },
                        args,
                    )


def pixel_distance(images: torch.Tensor, fitted: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error: the race's distance where LPIPS weights cannot be had."""
    return (images - fitted).pow(2).flatten(1).mean(1)


def bench_project(args) -> None:
    """Supp. App. G's race on a built-in model, measured where no LPIPS weights can be had: the encoder's one pass
    against projection (`--start mean` or `random`, Adam on the pixel error) until it reaches the encoder's
    reconstruction error, with the pixel MSE standing in for LPIPS both as the loss and as the yardstick. The
    claim itself is `automod eval project --start mean` with LPIPS-VGG/Alex weights at 256²; this is a proxy."""
    device = torch.device(args.device)
    model = load_model(args.model, device).eval()
    test = open_eval_data(None, model.resolution, "test")
    mean = (
        mean_latent_of(model, open_eval_data(None, model.resolution, "train"))
        if args.start == "mean"
        else None
    )
    settings = ProjectionSettings(steps=args.steps, start=args.start)
    curve = inversion_curve(
        model, test, pixel_distance, pixel_distance, settings, args.images, args.batches[0], "none", 0, mean
    )
    speedup = encoder_speedup(curve)
    emit(
        {
            "bench": "project",
            "model": str(args.model),
            "resolution": model.resolution,
            "images": args.images,
            "batch": args.batches[0],
            "start": args.start,
            "distance": "pixel-mse",
            "encoder_ms_per_image": round(curve[0].seconds * 1000, 3),
            "encoder_mse": round(curve[0].lpips, 5),
            "projection": [(p.step, round(p.seconds, 4), round(p.lpips, 5)) for p in curve[1:]],
            "speedup": None
            if speedup is None
            else {
                "ratio": round(speedup.ratio, 1),
                "reached": speedup.reached,
                "step": speedup.step,
                "seconds": round(speedup.seconds, 4),
            },
        },
        args,
    )


# LPIPS reads these ReLU outputs of torchvision's trunks (Zhang et al. 2018): alex relu1-5, vgg16 relu1_2 ... relu5_3
LPIPS_TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}


class LpipsShaped(nn.Module):
    """A distance with LPIPS's cost and no weights to load: torchvision's AlexNet or VGG16 trunk with random weights,
    unit-normalised channels at LPIPS's five taps, squared differences averaged (LPIPS's learned 1×1 weights, a
    negligible cost, are left out). For timing only: its values mean nothing."""

    def __init__(self, net: str):
        super().__init__()
        import torchvision  # noqa: PLC0415 -- torchvision's second of import only for project-cost

        trunk = (
            torchvision.models.alexnet(weights=None)
            if net == "alex"
            else torchvision.models.vgg16(weights=None)
        )
        self.layers = trunk.features[: LPIPS_TAPS[net][-1] + 1]
        self.taps = set(LPIPS_TAPS[net])
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(x.shape[0])
        for index, layer in enumerate(self.layers):
            x, y = layer(x), layer(y)
            if index in self.taps:
                total = total + (_unit_channels(x) - _unit_channels(y)).pow(2).sum(1).flatten(1).mean(1)
        return total


def _unit_channels(t: torch.Tensor) -> torch.Tensor:
    return t / (t.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


def bench_project_cost(args) -> None:
    """Supp. App. G's race at a preset's full size where no trained model or LPIPS weights can be had: one encoder
    pass against one projection step (automod_cli/ops/projection.py's own loop: the decoder forward and its
    backward to the latent, an LPIPS-shaped distance forward and backward, Adam, back onto the sphere), per
    image at --batches[0], with random weights (a pass costs the same whatever the weights). FLOPs are counted on
    the meta device, seconds on --device. `steps_for_1000x` is the number of projection steps that cost 1000
    encoder passes: the claim holds exactly when projection needs more steps than that to reach the encoder's
    LPIPS, which only `automod eval project` with a trained model and the weights can say."""
    config = resolve_train_config(args.preset)
    device, meta = torch.device(args.device), torch.device("meta")
    batch = args.batches[0]

    def parts(where: torch.device, net: str):
        model = Automodulator(config.model).eval().to(where)
        x = torch.rand(batch, 3, model.resolution, model.resolution, device=where) * 2 - 1
        return model, LpipsShaped(net).to(where), x

    for net in args.distance:
        costs = {}
        # FLOPs: a step's arithmetic is its loss's forward and backward (Adam's and the renormalisation's are
        # negligible)
        model, distance, x = parts(meta, net)
        z = model.sample_latents(batch).to(meta).requires_grad_(True)
        step = lambda: projection_loss(x, model.decode(z, noise=False), distance, PIXEL_WEIGHT).backward()
        for name, fn, grad in (("encode", lambda: model.encode(x), False), ("project", step, True)):
            counter = FlopCounterMode(display=False)
            with counter, torch.set_grad_enabled(grad):
                fn()
            costs[f"{name}_gflop"] = counter.get_total_flops() / 1e9 / batch
        # seconds: the encoder under inference mode, then `automod project`'s own loop (a one-step run first as warm-up)
        model, distance, x = parts(device, net)
        with torch.inference_mode():
            costs["encode_ms"] = 1000 * timed(lambda: model.encode(x), 5, device, args.warmup)[0] / 5 / batch
        run = lambda steps: project(
            model,
            x,
            distance,
            distance,
            ProjectionSettings(steps=steps, start="random"),
            crop_mode="none",
            record=[],
        )
        run(1)
        costs["step_ms"] = 1000 * timed(lambda: run(args.steps), 1, device)[0] / args.steps / batch
        emit(
            {
                "bench": "project-cost",
                "preset": args.preset,
                "resolution": config.model.max_resolution,
                "batch": batch,
                "distance": f"lpips-{net}-shaped",
                "projection_steps_timed": args.steps,
                "encoder_gflop_per_image": round(costs["encode_gflop"], 2),
                "step_gflop_per_image": round(costs["project_gflop"], 2),
                "encoder_ms_per_image": round(costs["encode_ms"], 3),
                "step_ms_per_image": round(costs["step_ms"], 3),
                "step_over_encoder_time": round(costs["step_ms"] / costs["encode_ms"], 2),
                "step_over_encoder_flops": round(costs["project_gflop"] / costs["encode_gflop"], 2),
                "steps_for_1000x": round(1000 * costs["encode_ms"] / costs["step_ms"], 1),
            },
            args,
        )


def settings(items: list[str]) -> dict[str, str]:
    """`--set NAME=VALUE` items as resolve_train_config overrides (the values parsed as `automod train` parses them)."""
    pairs = [item.partition("=") for item in items]
    if any(not sep or not key for key, sep, _ in pairs):
        raise SystemExit(f"--set takes NAME=VALUE, got {items}")
    return {key.strip(): value.strip() for key, _, value in pairs}


COMMANDS = {
    "train": bench_train,
    "encode": bench_encode,
    "data": bench_data,
    "project": bench_project,
    "syncs": bench_syncs,
    "matmul": bench_matmul,
    "project-cost": bench_project_cost,
    "latency": bench_encode,
    "reader": bench_data,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=list(COMMANDS))
    parser.add_argument("--preset", default="builtin")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="train: change a setting of the preset as `automod train --set` does (repeatable)",
    )
    parser.add_argument(
        "--threads", type=int, help="torch's CPU threads (default: torch's own choice, one per core)"
    )
    parser.add_argument(
        "--resolutions",
        type=int,
        nargs="+",
        help="train: default every resolution of the preset; data: 32 128 256",
    )
    parser.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1, 64],
        help="encode: batch sizes; project: the first is the batch",
    )
    parser.add_argument(
        "--model", type=Path, help="project: a checkpoint or run directory of a built-in model"
    )
    parser.add_argument(
        "--start", choices=["mean", "random"], default="mean", help="project: where the projection starts"
    )
    parser.add_argument(
        "--images", type=int, help="data: images in the temporary HDF5 file (1024); project: test images (64)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="timed iterations (train, 20), calls (encode, 20), projection steps (project, 200) "
        "or iterations per point checked (syncs, 2)",
    )
    parser.add_argument(
        "--distance",
        choices=list(LPIPS_TAPS),
        nargs="+",
        default=["vgg", "alex"],
        help="project-cost: the LPIPS trunks whose cost the projection pays (vgg: `automod project`'s default)",
    )
    parser.add_argument("--size", type=int, help="matmul: the matrices' side (8192 on a GPU, 4096 on a CPU)")
    parser.add_argument(
        "--kinds", choices=list(SYNC_KINDS), nargs="+", help="syncs: the model kinds to check (default: all)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0, 2],
        help="data: DataLoader worker processes, each measured",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),  # concrete precisions only, so each record names what it measured
        nargs="+",
        default=["fp32"],
        help="one or more, compared side by side",
    )
    parser.add_argument(
        "--variants",
        choices=list(VARIANTS),
        nargs="+",
        default=["loop"],
        help="train: the loop's iteration and/or versions with optimisations undone (benchmarks/naive.py)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="train: alternating timed rounds per precision and variant (median reported)",
    )
    parser.add_argument(
        "--kernel-time",
        action="store_true",
        help="train, CUDA: also profile --steps iterations for the share of time in GPU kernels",
    )
    parser.add_argument(
        "--top-ops",
        type=int,
        default=0,
        metavar="N",
        help="train: also profile --steps iterations and record the N ops (CUDA: kernels) that take the most time",
    )
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="train: let cuDNN time its convolution algorithms per shape (torch.backends.cudnn.benchmark)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="train: torch.compile the decoder, as `automod train --compile`",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the device's dense bf16 peak for MFU (default: looked up for known GPUs)",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.what == "syncs" and torch.device(args.device).type not in ("cuda", "meta"):
        parser.error(
            "syncs needs --device cuda (counted by torch.cuda.set_sync_debug_mode) or meta (host reads raise)"
        )
    if args.kernel_time and torch.device(args.device).type != "cuda":
        parser.error("--kernel-time needs --device cuda: it measures the share of time in GPU kernels")
    racing = COMMANDS[args.what] is bench_project  # not `project`: that is projection's function
    if racing and args.model is None:
        parser.error(
            "project needs --model: a checkpoint or run directory of a model trained on the built-in data"
        )
    args.images = args.images or (64 if racing else 1024)
    args.steps = (
        args.steps
        if args.steps is not None
        else (200 if racing else 2 if args.what == "syncs" else 5 if args.what == "project-cost" else 20)
    )
    if args.resolutions is None:
        args.resolutions = (
            [32, 128, 256]
            if COMMANDS[args.what] is bench_data
            else list(resolve_train_config(args.preset).resolutions)
        )
    COMMANDS[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
