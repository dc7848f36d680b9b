#!/usr/bin/env python3
"""Images seen and training time of runs trained in one go (not resumed), from their metrics.jsonl: each line's
images/s is the mean rate since the process started, so the last line's images over its images/s is the time
the training loop ran. Usage: python scripts/train_time.py RUN_DIR...
For a run with one CPU thread (OMP_NUM_THREADS=1, as scripts/small_scale.sh runs them) this is also its CPU time."""

import json
import sys
from pathlib import Path


def train_time(run: Path) -> tuple[int, float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    return last["images_seen"], last["images_seen"] / last["images_per_s"]


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/train_time.py RUN_DIR...")
    for name in sys.argv[1:]:
        images, seconds = train_time(Path(name))
        print(f"{name}\t{images} images\t{seconds / 60:.1f} min")
