#!/usr/bin/env python3
"""The decoder's latent cycle over training for the two recipes (docs/results/small-scale.md, "The two recipes"):
1 − cos(z, φ(θ(z))) of the regular rows against images seen, one line per seed, from each run's metrics.jsonl.
Runs log 1 − cos as `latent_cos` (and the recipe's own term as `latent_rec`); runs of automod before that logged
the authors' term mean_d(2 − z_d·ẑ_d) = 2 − cos/D under `latent_cos`, which is converted back to 1 − cos here (it
is averaged over a log interval, and the conversion is linear).
Usage: python scripts/recipes_plot.py OUT.png RUN_GLOB [RUN_GLOB ...]   e.g. 'runs/recipes/recipe-paper-s*'"""

import glob
import json
import sys
from pathlib import Path

from automod_cli.metrics.plot import line_chart


def latent_cycle(run: Path) -> tuple[list[float], list[float]]:
    config = json.loads((run / "config.json").read_text())
    dim = config["model"]["latent_dim"]
    recipe = config.get(
        "recipe"
    )  # a group since the recipe became one value; before, its elements were top-level
    dot = (recipe if isinstance(recipe, dict) else config).get("latent_distance", "cosine") == "dot"
    xs, ys = [], []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "latent_cos" in record:
            value = record["latent_cos"]
            xs.append(record["images_seen"])
            ys.append(1 - dim * (2 - value) if dot and "latent_rec" not in record else value)
    return xs, ys


def main(out: str, patterns: list[str]) -> None:
    series = {}
    for pattern in patterns:
        runs = sorted(Path(p) for p in glob.glob(pattern))
        if not runs:
            raise SystemExit(f"no run matches {pattern}")
        series[runs[0].name.rsplit("-s", 1)[0]] = [latent_cycle(run) for run in runs]
    line_chart(Path(out), series, "images seen", "1 - cos(z, encoder(decoder(z)))")
    for label, lines in series.items():
        ends = ", ".join(f"{ys[-1]:.3f}" for _, ys in lines)
        print(f"{label}: final 1 - cos per seed {ends}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
