"""The run's log: metrics.jsonl (one line per log interval) and, when installed, TensorBoard events."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from automod_cli.training.schedule import PhaseState


class RunLog:
    """Accumulates per-step scalars on the device and turns them into numbers only when flushed."""

    def __init__(self, run_dir: Path, enabled: bool, resumed_at: int):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.tensorboard = None
        if enabled and resumed_at > 0 and self.path.exists():
            # a resumed run repeats the work after its checkpoint: drop the lines it will write again
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line and json.loads(line)["images_seen"] <= resumed_at
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 -- the optional [tb] extra

                self.tensorboard = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except ImportError:  # TensorBoard is the optional [tb] extra
                self.tensorboard = None

    def add(self, scalars: dict[str, torch.Tensor]) -> None:
        for name, value in scalars.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.count += 1

    def flush(self, phase: PhaseState, counters, images_per_s: float, robust) -> dict:
        """Average the scalars added since the last flush into one record with where the run stands (`counters`,
        a state.RunCounters) and d_ρ's mean α when `robust` is given; write it (rank 0) and return it."""
        values = {name: (total / max(self.count, 1)).item() for name, total in self.sums.items()}
        record = {
            "images_seen": counters.images_seen,
            "step": counters.step,
            "resolution": phase.resolution,
            "alpha": round(phase.alpha, 6),
            "lr": phase.lr,
            "kl_margin": phase.kl_margin,
            "images_per_s": round(images_per_s, 2),
            "elapsed_s": round(counters.elapsed_s, 3),
            "threads": torch.get_num_threads(),  # on a CPU, training/threads.py may change it as the run goes
            **values,
        }
        if robust is not None:
            record["robust_alpha"] = robust.alpha().mean().item()
        self.sums, self.count = {}, 0
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            if self.tensorboard is not None:
                for name, value in record.items():
                    if isinstance(value, (int, float)) and name not in ("images_seen", "step"):
                        self.tensorboard.add_scalar(name, value, counters.images_seen)
        return record

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
