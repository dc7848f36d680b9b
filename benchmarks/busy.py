#!/usr/bin/env python3
"""Training throughput alone and beside a busy process (issue 23 item 3): for each way of running the threads
(torch's thread count, OpenMP's wait policy), `bench.py train` at the given resolutions, first alone, then with
`--busy N` one-thread busy loops running beside it. JSON lines on stdout, one per measurement, each with
`busy_loops` and, from bench.py, `cpu_threads` and `openmp_wait`.

    python benchmarks/busy.py [--resolutions 16 32] [--busy 1] [--steps 8] [--rounds 2]
           [--ways default spin:10000 passive threads:1 ...]
    python benchmarks/busy.py --train 90 [--ways default threads:2 threads:1]

With `--train SECONDS` each measurement is the real `automod train` (the `builtin` preset, its first three phases
cut to 512 images each, then 32²) stopped by SIGTERM (as Ctrl-C stops it) after SECONDS, so that the run's own
thread chooser (training/threads.py) acts: the record is the 32² images/s from its metrics.jsonl, from its first
32² record to its last (`default` then means the chooser; `threads:N` is `automod train --threads N`).

A way is `default` (2 threads per core count, libgomp's own spinning), `spin:N` (GOMP_SPINCOUNT=N: a waiting
thread spins N times, then sleeps), `passive` (OMP_WAIT_POLICY=PASSIVE: it sleeps at once) or `threads:N`
(torch.set_num_threads(N), default spinning). libgomp reads its variables once, when torch loads it, so each way
runs in its own process."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench.py"
# the demo's iteration at 32², reached after a few seconds: the `builtin` preset's lower phases cut short
TRAIN_SCHEDULE = [
    "--set",
    "phase_images.4=512",
    "--set",
    "phase_images.8=512",
    "--set",
    "phase_images.16=512",
    "--set",
    "phase_images.32=1000000",
    "--set",
    "log_every=128",
    "--set",
    "checkpoint_every=10000000",
]
BUSY_LOOP = "while True: pass"
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def way_settings(way: str) -> tuple[dict[str, str], list[str]]:
    """The environment variables and bench.py arguments of one way of running the threads."""
    if way == "default":
        return {}, []
    if way == "passive":
        return {"OMP_WAIT_POLICY": "PASSIVE"}, []
    name, _, value = way.partition(":")
    if name == "spin" and value.isdigit():
        return {"GOMP_SPINCOUNT": value}, []
    if name == "threads" and value.isdigit():
        return {}, ["--threads", value]
    raise SystemExit(f"unknown way '{way}': default, passive, spin:N or threads:N")


@contextlib.contextmanager
def busy_loops(count: int):
    """`count` one-thread busy processes, running until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        time.sleep(0.5 if count else 0)
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def measure(way: str, busy: int, args) -> list[dict]:
    variables, extra = way_settings(way)
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES} | variables
    with busy_loops(busy):
        out = subprocess.run(
            [
                sys.executable,
                str(BENCH),
                "train",
                "--resolutions",
                *map(str, args.resolutions),
                "--steps",
                str(args.steps),
                "--rounds",
                str(args.rounds),
                "--warmup",
                "2",
                *extra,
                *[f"--set={item}" for item in args.set],
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for record in records:
        record.update(way=way, busy_loops=busy, load_average=[round(v, 2) for v in os.getloadavg()])
    return records


def measure_training(way: str, busy: int, seconds: float) -> list[dict]:
    """`automod train` with `way`'s threads for `seconds`, beside `busy` busy loops: its 32² images/s."""
    variables, extra = way_settings(way)
    env = {k: v for k, v in os.environ.items() if k not in (*WAIT_VARIABLES, "OMP_NUM_THREADS")} | variables
    with tempfile.TemporaryDirectory() as scratch, busy_loops(busy):
        run = Path(scratch) / "run"
        train = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "automod_cli",
                "train",
                "--out",
                str(run),
                "--device",
                "cpu",
                *TRAIN_SCHEDULE,
                *extra,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(seconds)
        # SIGTERM stops a run as Ctrl-C does (a checkpoint, then exit 143); SIGINT may be ignored in a background job
        train.send_signal(signal.SIGTERM)
        _, err = train.communicate(timeout=120)
        if train.returncode not in (0, 128 + signal.SIGTERM):
            raise SystemExit(f"automod train failed ({way}, {busy} busy):\n{err}")
        log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    at32 = [record for record in log if record["resolution"] == 32]
    if len(at32) < 2:
        raise SystemExit(
            f"too few 32² records in {seconds} s ({way}, {busy} busy): give --train more seconds"
        )
    first, last = at32[0], at32[-1]
    rate = (last["images_seen"] - first["images_seen"]) / (last["elapsed_s"] - first["elapsed_s"])
    return [
        {
            "bench": "train-command",
            "resolution": 32,
            "way": way,
            "busy_loops": busy,
            "seconds": seconds,
            "images_per_s": round(rate, 2),
            "threads_used": sorted({record["threads"] for record in at32}),
            "threads_last": last["threads"],
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d"),
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32])
    parser.add_argument(
        "--busy", type=int, default=1, help="busy loops beside the training (one thread each)"
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ways", nargs="+", default=["default", "spin:10000", "passive", "threads:1"])
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="passed to bench.py train"
    )
    parser.add_argument(
        "--train",
        type=float,
        metavar="SECONDS",
        help="measure the real `automod train` for SECONDS each (its thread chooser acts)",
    )
    args = parser.parse_args()
    for way in args.ways:
        way_settings(way)  # refuse an unknown way before any measurement
    for way in args.ways:
        for busy in (0, args.busy):
            records = measure_training(way, busy, args.train) if args.train else measure(way, busy, args)
            for record in records:
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
