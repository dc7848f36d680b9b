#!/usr/bin/env python3
"""Images seen and training time of runs, from the last line of their metrics.jsonl: its `elapsed_s`, the
seconds the training loop ran summed over every (re)start. Usage: python scripts/train_time.py RUN_DIR...
(Runs logged before `elapsed_s` existed, where images/s was the mean since the process started, are timed as
their last line's images over its images/s, which holds for a run trained in one go.)
For a run with one CPU thread (OMP_NUM_THREADS=1, as scripts/small_scale.sh runs them) this is also its CPU time
when it had a core to itself."""

import json
import sys
from pathlib import Path


def train_time(run: Path) -> tuple[int, float]:
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    seconds = last["elapsed_s"] if "elapsed_s" in last else last["images_seen"] / last["images_per_s"]
    return last["images_seen"], seconds


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/train_time.py RUN_DIR...")
    for name in sys.argv[1:]:
        images, seconds = train_time(Path(name))
        print(f"{name}\t{images} images\t{seconds / 60:.1f} min")
