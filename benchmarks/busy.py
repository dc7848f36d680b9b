#!/usr/bin/env python3
"""Training throughput alone and beside a busy process (issue 23 item 3): for each way of running the threads
(torch's thread count, OpenMP's wait policy), `bench.py train` at the given resolutions, first alone, then with
`--busy N` one-thread busy loops running beside it. JSON lines on stdout, one per measurement, each with
`busy_loops` and, from bench.py, `cpu_threads` and `openmp_wait`.

    python benchmarks/busy.py [--resolutions 16 32] [--busy 1] [--steps 8] [--rounds 2]
           [--ways default spin:10000 passive threads:1 ...]

A way is `default` (2 threads per core count, libgomp's own spinning), `spin:N` (GOMP_SPINCOUNT=N: a waiting
thread spins N times, then sleeps), `passive` (OMP_WAIT_POLICY=PASSIVE: it sleeps at once) or `threads:N`
(torch.set_num_threads(N), default spinning). libgomp reads its variables once, when torch loads it, so each way runs in its own process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "bench.py"
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


def measure(way: str, busy: int, args) -> list[dict]:
    variables, extra = way_settings(way)
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES} | variables
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)
        out = subprocess.run([sys.executable, str(BENCH), "train", "--resolutions", *map(str, args.resolutions),
                              "--steps", str(args.steps), "--rounds", str(args.rounds), "--warmup", "2", *extra,
                              *[f"--set={item}" for item in args.set]],
                             env=env, capture_output=True, text=True, check=True).stdout
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for record in records:
        record.update(way=way, busy_loops=busy, load_average=[round(v, 2) for v in os.getloadavg()])
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[32])
    parser.add_argument("--busy", type=int, default=1, help="busy loops beside the training (one thread each)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ways", nargs="+", default=["default", "spin:10000", "passive", "threads:1"])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="passed to bench.py train")
    args = parser.parse_args()
    for way in args.ways:
        way_settings(way)  # refuse an unknown way before any measurement
    for way in args.ways:
        for busy in (0, args.busy):
            for record in measure(way, busy, args):
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
