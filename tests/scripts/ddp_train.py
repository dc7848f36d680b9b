"""Run under torchrun by tests/test_distributed.py: train a tiny model on 2 ranks with the recipe argv[2] (default
paper; a pool of 4 generated images where the recipe has one), then report every rank's parameter checksum so the
test can check that the ranks stayed in sync. With argv[3] = budget the run has a time budget of 21 s and each
rank a loop clock of its own that counts the images trained at its own rate: rank 0 fast, rank 1 slow enough to
run out of time in the last phase."""

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from automod_cli.presets import resolve_train_config
from automod_cli.training import distributed, loop
from automod_cli.training.automodulator import AutomodulatorRun

out = Path(sys.argv[1])
recipe = sys.argv[2] if len(sys.argv) > 2 else "paper"
config = resolve_train_config(
    "builtin",
    {
        "model.max_resolution": 8,
        "model.latent_dim": 16,
        "model.channels": [16, 16],
        "phase_images": 64,
        "batch_size": 8,
        "data_limit": 64,
        "log_every": 32,
        "checkpoint_every": 1000,
        "recipe": recipe,
        "fake_pool": 4,
    },
)
report = None
if len(sys.argv) > 3 and sys.argv[3] == "budget":
    rate = 1000.0 if int(os.environ["RANK"]) == 0 else 4.0  # images/s
    seen = [0]

    def report(event: str, data: dict) -> None:
        if event == "step":
            seen[0] = data["images_seen"]

    loop.clock = lambda: seen[0] / rate
    config = dataclasses.replace(config, time_budget_min=0.35)
trainer = AutomodulatorRun(config, out / "run", device="cpu", report=report)
result = trainer.run()
vector = torch.cat(
    [
        p.detach().flatten()
        for p in list(trainer.nets.encoder.parameters()) + list(trainer.nets.decoder.parameters())
    ]
)
local = torch.tensor(
    [vector.sum().item(), vector.pow(2).sum().item(), float(result.images_seen)], dtype=torch.float64
)
gathered = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, local)
if dist.get_rank() == 0:
    (out / "ranks.json").write_text(json.dumps([g.tolist() for g in gathered]))
distributed.shutdown(trainer.world)
