#!/usr/bin/env python3
"""Issue 16's reference point for `--recipe authors` on the built-in data: for a run's checkpoints at the given
image counts, the held-out reconstruction MSE of its raw and EMA decoders (512 test images, area-downscaled from
64², pixels in [0, 1], layer noise off) beside the mean training image's, and the latent cycle 1 − cos(z, φ(θ(z)))
over 256 random unit latents, for both decoders.
Usage: python scripts/recipe_reference.py RUN [IMAGES ...]   (default: 48000 80000, the ends of 8² and 16²)"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from automod_cli.checkpoint import run_checkpoints
from automod_cli.locate import load_model
from automod_cli.models.latents import random_latents
from data_prep.builtin import BuiltinDataset


def held_out(resolution: int, count: int = 512) -> torch.Tensor:
    data = BuiltinDataset("test", count=count)
    native = torch.stack([data[i] for i in range(count)])
    return F.interpolate(native, size=(resolution, resolution), mode="area")


def scores(path: Path) -> dict[str, float]:
    out = {}
    for name, ema in (("raw", False), ("ema", True)):
        model = load_model(path, ema=ema).eval()
        x = held_out(model.resolution)
        recon = model.decode(model.encode(x))
        out[f"{name} MSE"] = ((recon.clamp(-1, 1) - x) / 2).pow(2).mean().item()
        z = random_latents(256, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
        out[f"{name} 1-cos"] = (1 - F.cosine_similarity(z, model.encode(model.decode(z)))).mean().item()
    train = BuiltinDataset("train", count=8192)
    mean = F.interpolate(
        torch.stack([train[i] for i in range(8192)]).mean(0, keepdim=True), size=x.shape[-2:], mode="area"
    )
    out["mean image MSE"] = ((mean - x) / 2).pow(2).mean().item()
    return out


def main(run: Path, counts: list[int]) -> None:
    torch.set_grad_enabled(False)  # here, not at import: importing the script must not turn autograd off
    found = {int(p.name.split("-")[1].split(".")[0]): p for p in run_checkpoints(run)}
    for count in counts:
        if count not in found:
            raise SystemExit(f"{run} has no checkpoint at {count} images (it keeps {sorted(found)})")
        values = scores(found[count])
        print(f"{count:>7,} images: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), [int(c) for c in sys.argv[2:]] or [48000, 80000])
