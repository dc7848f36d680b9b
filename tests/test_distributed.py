"""Data-parallel training under torchrun (gloo on the CPU): ranks stay identical and only rank 0 writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automod_cli.checkpoint import run_checkpoints

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"
GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


@pytest.mark.parametrize(
    "recipe", ["paper", "authors"]
)  # the authors': each rank's own pool, averaged gradients
def test_two_ranks_stay_in_sync(tmp_path, recipe):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(out: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        return subprocess.run(
            [*cmd, str(SCRIPT), str(out), recipe], env=env, capture_output=True, text=True, timeout=300
        )

    done = torchrun(tmp_path)
    if done.returncode != 0 and GLOO_TEARDOWN_ABORT in done.stderr:
        # Gloo's worker threads can abort a rank as its interpreter exits (2 of 5 full-suite runs on 2026-12-07, none of
        # 17 runs alone; pytorch/pytorch#179291): a crash after the work, not a wrong result, so the run is made
        # again once, from scratch, and every assertion below holds for that run
        tmp_path = tmp_path / "again"
        done = torchrun(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = json.loads((tmp_path / "ranks.json").read_text())
    assert len(ranks) == 2
    assert ranks[0] == ranks[1]  # identical weights on both ranks after training
    assert ranks[0][2] == 128  # two phases of 64 images, each step counting 2 ranks × 8 images
    checkpoints = run_checkpoints(tmp_path / "run")
    assert [p.name for p in checkpoints] == ["ckpt-0000000064.safetensors", "ckpt-0000000128.safetensors"]
