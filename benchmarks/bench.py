"""Throughput benchmarks: data reader, training step, encoder/decoder latency. JSON lines on stdout.

    python benchmarks/bench.py reader [--resolutions 32 128 256] [--images 1024]
    python benchmarks/bench.py train  [--preset builtin] [--resolutions 4 8 16 32] [--steps 20]
    python benchmarks/bench.py latency [--preset builtin]

Record results with the machine in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from automod_cli.config import resolve_train_config
from automod_cli.losses import AdaptiveRobustLoss
from automod_cli.models import Automodulator
from automod_cli.training.distributed import World
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets, decoder_step, encoder_step


def emit(record: dict) -> None:
    record.update(torch=torch.__version__, machine=platform.machine(), cpus=torch.get_num_threads(),
                  peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    print(json.dumps(record), flush=True)


def bench_reader(args) -> None:
    from data_prep.hdf5 import H5Images, H5Writer, pyramid

    top = max(args.resolutions)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        writer = H5Writer(path, top, {"source": "bench", "source_path": "-", "alignment": "none", "split": "all"}, "bench")
        for _ in range(args.images):
            writer.add(pyramid(rng.integers(0, 256, (top, top, 3), dtype=np.uint8)))
        writer.checkpoint(args.images)
        writer.commit()
        for res in args.resolutions:
            for workers in (0, 2):
                loader = DataLoader(H5Images(path, res), batch_size=32, shuffle=True, num_workers=workers)
                start, n = time.perf_counter(), 0
                for batch in loader:
                    n += batch.shape[0]
                emit({"bench": "reader", "resolution": res, "workers": workers, "images_per_s": round(n / (time.perf_counter() - start), 1)})


def bench_train(args) -> None:
    config = resolve_train_config(args.preset)
    device = torch.device(args.device)
    world = World()
    for res in args.resolutions:
        start_images = sum(config.phase_images[r] for r in config.resolutions if r < res)
        phase = phase_at(config, start_images + config.phase_images[res] - 1)  # steady state: fade-in done
        model = Automodulator(config.model)
        nets = Nets(model.encoder.to(device), model.decoder.to(device), AdaptiveRobustLoss(3, res).to(device))
        adam = lambda m: torch.optim.Adam(m.parameters(), lr=phase.lr, betas=config.adam_betas, foreach=True)
        enc_opts, dec_opts = [adam(nets.encoder), adam(nets.robust)], [adam(nets.decoder)]
        x = torch.rand(phase.batch_size, 3, res, res, device=device) * 2 - 1
        for step in range(args.warmup + args.steps):
            if step == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            encoder_step(nets, x, phase, config, enc_opts, world)
            decoder_step(nets, phase.batch_size, phase, config, dec_opts, world, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        emit({"bench": "train", "preset": args.preset, "resolution": res, "batch": phase.batch_size,
              "images_per_s": round(args.steps * phase.batch_size / seconds, 2)})


@torch.inference_mode()
def bench_latency(args) -> None:
    config = resolve_train_config(args.preset)
    model = Automodulator(config.model).eval().to(args.device)
    res = model.resolution
    for batch in (1, 64):
        x = torch.rand(batch, 3, res, res, device=args.device) * 2 - 1
        z = model.encode(x)
        for name, fn in (("encode", lambda: model.encode(x)), ("decode", lambda: model.decode(z))):
            fn()
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            emit({"bench": name, "preset": args.preset, "resolution": res, "batch": batch,
                  "ms_per_call": round(1000 * (time.perf_counter() - start) / args.steps, 2)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["reader", "train", "latency"])
    parser.add_argument("--preset", default="builtin")
    parser.add_argument("--resolutions", type=int, nargs="+")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.resolutions is None:
        args.resolutions = [32, 128, 256] if args.what == "reader" else list(resolve_train_config(args.preset).resolutions)
    {"reader": bench_reader, "train": bench_train, "latency": bench_latency}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
