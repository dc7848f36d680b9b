"""What every model kind's training run shares: where it stands, its data, optimisers, preview images, log and
checkpoints. A kind (training/automodulator.py, training/lia/run.py) subclasses `TrainingRun` and supplies its
networks and the hooks the loop (training/loop.py) calls: `train_step`, `ema_source`, `checkpoint_meta`,
`modules`, `grids`, and, where it has them, growth (`grow`), stages (`next_stage`) and extra training state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

from automod_cli.config import TrainConfig, level_resolution
from automod_cli.outputs import atomic_write
from automod_cli.training.data import advance, check_batches, make_loader, mirror, open_training_data
from automod_cli.training.distributed import World
from automod_cli.training.fade import blended_real
from automod_cli.training.ema import ema_beta
from automod_cli.training.log import RunLog
from automod_cli.training.precision import Precision
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import RunCounters, write_training_checkpoint

Report = Callable[[str, dict], None]


class TrainingRun:
    """One run of one model kind. Subclasses set, before using the helpers below: `config` (what the run saves in
    config.json), `train_config` (the TrainConfig that drives data, schedule, Adam, EMA and bookkeeping),
    `run_dir`, `device`, `world`, `report`, `counters`, `level` (the level last trained), `ema`, `optimizers` and
    `precision` (training/precision.py, "auto" resolved), and call `open_data()` and `open_log()`."""

    config: Any
    train_config: TrainConfig
    run_dir: Path
    device: torch.device
    world: World
    report: Report
    counters: RunCounters
    level: int
    ema: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    precision: Precision
    lr_scale: dict[str, float] = {}  # optimiser name → factor on the phase's learning rate
    log: RunLog

    # --- the model kind's part -----------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, phase: PhaseState) -> dict[str, torch.Tensor]:
        """Train on the batch `x`: the kind's encoder and decoder steps (or its own); returns detached scalars."""
        raise NotImplementedError

    def ema_source(self) -> torch.nn.Module | None:
        """The network whose weights `ema` averages after this step (None: no EMA update)."""
        raise NotImplementedError

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks saved in a checkpoint, by tensor prefix ('encoder', 'decoder', 'decoder_ema', ...)."""
        raise NotImplementedError

    def checkpoint_meta(self) -> dict[str, Any]:
        """The kind's checkpoint metadata (configs, kind); level, α and the counters are added by `checkpoint`."""
        raise NotImplementedError

    def grids(self) -> list[Path]:
        """Write the preview grids of the level last trained."""
        raise NotImplementedError

    def grow(self) -> None:
        """Called each time `level` goes up by one, before the data switch resolution."""

    def next_stage(self) -> list[Path]:
        """Move to the next stage when the images seen call for it; returns the grids written (none by default)."""
        return []

    def training_state(self) -> dict[str, Any] | None:
        """Other training state for the checkpoint's companion file (e.g. the image pool)."""
        return None

    def learned_distance(self) -> torch.nn.Module | None:
        """d_ρ where the run learns it: its mean α goes into each log record."""
        return None

    def report_fields(self) -> dict[str, Any]:
        """Fields added to each iteration's 'step' report and to each log report (e.g. LIA's stage)."""
        return {}

    def follow(self, config: TrainConfig) -> None:
        """Train on along `config` from here, a shortened schedule (training/budget.py), and save it as the run's."""
        raise NotImplementedError(f"{type(self).__name__} has no time budget")

    # --- shared by every kind --------------------------------------------------------------------------------------
    def adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        """A fresh Adam for `module` at the current phase's learning rate, with the run's betas and ε."""
        cfg = self.train_config
        lr = phase_at(cfg, self.counters.images_seen).lr
        return torch.optim.Adam(
            module.parameters(), lr=lr, betas=cfg.adam_betas, eps=cfg.adam_eps, foreach=True
        )

    def open_data(self) -> None:
        """The training images and eight held-out images at full resolution for the grids (the built-in test
        split; for a file, its first images)."""
        cfg = self.train_config
        self.dataset = open_training_data(cfg)
        # every phase still to train must fill a batch: checked before the run directory is written
        check_batches(len(self.dataset), cfg, phase_at(cfg, self.counters.images_seen).level, self.world.size)
        source = open_training_data(cfg, split="test") if cfg.data is None else self.dataset
        source.set_resolution(cfg.model.max_resolution)
        images = torch.stack([source[i] for i in range(min(8, len(source)))])
        source.set_resolution(level_resolution(self.level))
        self.preview = images.to(self.device)

    def open_log(self) -> None:
        """The run's log (metrics.jsonl, written by rank 0), cut back to the images seen when resuming."""
        self.log = RunLog(self.run_dir, self.world.is_main, self.counters.images_seen)

    def prepare(self) -> None:
        """Before the first iteration: the run directory with config.json (rank 0)."""
        if self.world.is_main:
            text = json.dumps(self.config.to_dict(), indent=2) + "\n"
            atomic_write(self.run_dir / "config.json", lambda tmp: tmp.write_text(text))

    def set_phase(self, phase: PhaseState) -> None:
        """Grow to the phase's level, then draw batches at its resolution and batch size from the data position."""
        while self.level < phase.level:
            self.level += 1
            self.grow()
        self.dataset.set_resolution(phase.resolution)
        loader = make_loader(
            self.dataset,
            phase.batch_size,
            self.world,
            self.train_config,
            self.counters.position,
            self.device.type == "cuda",
        )
        self.batches = iter(loader)

    def batch(self, phase: PhaseState) -> torch.Tensor:
        """The next batch on the device, mirrored when the run mirrors (a fixed choice per step and seed), and
        during a fade-in blended with its half-resolution copy where the recipe says so (training/fade.py)."""
        cfg = self.train_config
        x = next(self.batches)
        if cfg.recipe.real_fade == "blended" and phase.level > 0 and phase.alpha < 1.0:
            # on the host, before the copy (no device round trip); PIL's half-size filter is symmetric, so this
            # commutes with the mirroring below bit for bit, and the authors mirror first
            x = blended_real(x, phase.alpha)
        x = x.to(self.device, non_blocking=True)
        return mirror(x, cfg.seed, self.counters.step) if cfg.mirror else x

    def set_learning_rates(self, phase: PhaseState) -> None:
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = phase.lr * self.lr_scale.get(name, 1.0)

    def ema_beta(self, phase: PhaseState) -> float:
        """The EMA decay for this step: 0.5^(batch / half-life) with the half-life's ramp-up (training/ema.py)."""
        return ema_beta(
            phase.batch_size * self.world.size, self.train_config.ema_half_life, self.counters.images_seen
        )

    def count(self, phase: PhaseState, scalars: dict[str, torch.Tensor]) -> None:
        """Advance the counters by one global batch and add the step's scalars to the log."""
        images = phase.batch_size * self.world.size
        self.counters.images_seen += images
        self.counters.step += 1
        self.counters.position = advance(self.counters.position, len(self.dataset), images)
        self.log.add(scalars)

    def log_record(self, phase: PhaseState, images_per_s: float) -> dict:
        """Flush the log into the record reported as a log event (d_ρ's mean α with it where the run learns d_ρ)."""
        record = self.log.flush(phase, self.counters, images_per_s, self.learned_distance())
        return {**self.report_fields(), **record}

    def checkpoint(self, phase: PhaseState) -> Path | None:
        """Write a checkpoint pair of the run as it stands (training/state.py); None on ranks other than 0."""
        if not self.world.is_main:
            return None
        alpha = phase.alpha if phase.level == self.level else 1.0
        meta = {**self.checkpoint_meta(), "level": self.level, "alpha": alpha}
        path = write_training_checkpoint(
            self.run_dir,
            self.modules(),
            self.optimizers,
            meta,
            self.counters,
            self.train_config.keep_checkpoints,
            self.training_state(),
        )
        self.report("checkpoint", {"path": str(path), "images_seen": self.counters.images_seen})
        return path
