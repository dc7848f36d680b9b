"""How long `automod serve` takes to redraw a mix when a slider moves: the decode of one mixed image and its PNG,
as the page's mix view computes it (automod_cli/serve/views.py), with the photos' codes already cached.

    python benchmarks/serve_mix.py                      # the built-in model's network at 32², the paper's at 256²
    python benchmarks/serve_mix.py --calls 20 --threads 2

Networks have random weights (the time does not depend on them): the built-in preset's (32², 128-d latents, narrow
channels) and the FFHQ preset's (256², 512-d latents, 512 channels up to 64²). Prints one JSON line per network
with the median and the spread of the per-call times, and the time to add one photo (checked, decoded, encoded,
reconstructed).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from automod_cli.checkpoint import save_model
from automod_cli.config import PAPER_CHANNELS, ModelConfig
from automod_cli.locate import open_model
from automod_cli.models import Automodulator
from automod_cli.serve import views
from automod_cli.serve.studio import Studio

NETWORKS = {
    "builtin-32": ModelConfig(max_resolution=32, latent_dim=128, channels=(64, 64, 48, 32, 32, 16, 8, 8)),
    "ffhq-256": ModelConfig(max_resolution=256, latent_dim=512, channels=PAPER_CHANNELS),
}


def photo_bytes(seed: int, size: int) -> bytes:
    pixels = torch.randint(
        0, 256, (size, size, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="PNG")
    return buffer.getvalue()


def measure(name: str, config: ModelConfig, calls: int, folder: Path) -> dict:
    path = folder / f"{name}.safetensors"
    save_model(path, Automodulator(config).eval())
    studio = Studio(open_model(path), str(path), align=False, folder=folder)
    began = time.perf_counter()
    a = studio.add("a.png", photo_bytes(0, config.max_resolution))
    add_ms = 1000 * (time.perf_counter() - began)  # check, decode, encode and reconstruct one photo
    b = studio.add("b.png", photo_bytes(1, config.max_resolution))
    views.mix(studio, a, b, "coarse")  # warm-up
    seconds = []
    for i in range(calls):
        began = time.perf_counter()
        views.mix(studio, a, b, "coarse" if i % 2 else "mid")
        seconds.append(time.perf_counter() - began)
    studio.close()
    return {
        "bench": "serve-mix",
        "network": name,
        "resolution": config.max_resolution,
        "calls": calls,
        "threads": torch.get_num_threads(),
        "median_ms": round(1000 * statistics.median(seconds), 1),
        "min_ms": round(1000 * min(seconds), 1),
        "max_ms": round(1000 * max(seconds), 1),
        "add_photo_ms": round(add_ms, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with torch.inference_mode(), tempfile.TemporaryDirectory() as folder:
        for name in args.networks:
            print(json.dumps(measure(name, NETWORKS[name], args.calls, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
