"""The progressive training loop: set up, resume, then for each iteration an encoder step and a decoder step."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from automod_cli.config import TrainConfig
from automod_cli.devices import pick_device
from automod_cli.losses import AdaptiveRobustLoss
from automod_cli.models import Automodulator
from automod_cli.training import distributed
from automod_cli.training.baselines import JOINT_STEPS
from automod_cli.training.data import advance, make_loader, mirror, open_training_data
from automod_cli.training.driver import Report, TrainResult, drive
from automod_cli.training.ema import ema_beta, make_ema, update_ema
from automod_cli.training.grids import write_phase_grids
from automod_cli.training.init import load_init_weights
from automod_cli.training.metrics import MetricsLog
from automod_cli.training.pool import ImagePool, pool_capacity
from automod_cli.training.precision import Precision
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import (
    Progress,
    load_training_checkpoint,
    restore_training,
    save_training_checkpoint,
)
from automod_cli.training.steps import Nets, decoder_step, encoder_step


class Trainer:
    """Owns the networks, optimisers and progress of one run; `run()` trains until done or stopped."""

    def __init__(self, config: TrainConfig, run_dir: Path, device: str | torch.device = "auto", resume: Path | None = None, report: Report | None = None,
                 total_kimg: float | None = None):
        self.run_dir = Path(run_dir)
        self.report = report or (lambda event, data: None)
        # a name from the command line (validated, one-line errors), or a torch.device as is (e.g. meta in the tests)
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.world = distributed.init_world(self.device)
        if self.world.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        restored = load_training_checkpoint(resume) if resume is not None else None
        self.config = restored.config if restored else config
        if total_kimg is not None:  # `--resume RUN --kimg K` lengthens (or shortens) a run
            self.config = dataclasses.replace(self.config, total_kimg=total_kimg)
        cfg = self.config
        torch.manual_seed(cfg.seed)
        model = Automodulator(cfg.model)
        self.progress = restored.progress if restored else Progress(images_seen=cfg.start_images)
        # the level last trained; a resumed run grows from here exactly as the uninterrupted run did
        self.level = restored.meta["level"] if restored else phase_at(cfg, cfg.start_images).level
        robust = AdaptiveRobustLoss(3, 4 * 2**self.level) if cfg.reconstruction == "robust" else None
        self.nets = Nets(model.encoder, model.decoder, robust)
        self.ema = make_ema(self.nets.decoder)
        if cfg.init and not restored:  # fine-tuning: the init model's weights, fresh optimisers (training/init.py)
            load_init_weights(cfg, self._modules())
        for module in self._modules().values():
            module.to(self.device)
        self.precision = Precision(self.device.type, cfg.precision)  # bf16 autocast, channels-last on CUDA, compile
        self.precision.prepare(self.nets.encoder, self.nets.decoder, self.ema, compile=cfg.compile)
        self.optimizers = {
            "encoder": self._adam(self.nets.encoder),
            "decoder": self._adam(self.nets.decoder),
        }
        if robust is not None:
            self.optimizers["robust"] = self._adam(robust)
        # the authors' pool of generated images for the encoder step (the AGE game only)
        self.pool = ImagePool(pool_capacity(cfg.fake_pool, 4 * 2**self.level)) if cfg.fake_pool and cfg.kind not in JOINT_STEPS else None
        if restored:
            restore_training(restored, self._modules(), self.optimizers)
            if self.pool is not None:
                self.pool.load_state(restored.state.get("pool"), self.device)
        for module in self._modules().values():
            distributed.broadcast_module(module, self.world)
        if self.world.active:  # same weights everywhere, different random latents per rank
            torch.manual_seed(cfg.seed + 1_000 * self.world.rank + self.progress.step)
        self.dataset = open_training_data(cfg)
        self.preview = self._preview_images()
        self.metrics = MetricsLog(self.run_dir, self.world.is_main, self.progress.images_seen)

    def _adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        cfg = self.config
        lr = phase_at(cfg, self.progress.images_seen).lr
        return torch.optim.Adam(module.parameters(), lr=lr, betas=cfg.adam_betas, eps=cfg.adam_eps, foreach=True)

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"encoder": self.nets.encoder, "decoder": self.nets.decoder, "decoder_ema": self.ema}
        if self.nets.robust is not None:
            modules["robust"] = self.nets.robust
        return modules

    def _preview_images(self) -> torch.Tensor:
        """Eight held-out images at full resolution for the reconstruction and mix grids (the built-in test split;
        for a file, its first images)."""
        top = self.config.model.max_resolution
        source = open_training_data(self.config, split="test") if self.config.data is None else self.dataset
        source.set_resolution(top)
        images = torch.stack([source[i] for i in range(min(8, len(source)))])
        source.set_resolution(4 * 2**self.level)
        return images.to(self.device)

    def set_phase(self, phase: PhaseState) -> None:
        """Grow to the phase's level: d_ρ's α map doubles (with a fresh optimiser), the data switch resolution."""
        while self.level < phase.level:
            self.level += 1
            if self.pool is not None:  # older images are of the wrong size
                self.pool = ImagePool(pool_capacity(self.config.fake_pool, 4 * 2**self.level))
            if self.nets.robust is not None:
                self.nets.robust.grow()
                self.optimizers["robust"] = self._adam(self.nets.robust)
        self.dataset.set_resolution(phase.resolution)
        loader = make_loader(self.dataset, phase.batch_size, self.world, self.config, self.progress.position, self.device.type == "cuda")
        self.batches = iter(loader)
        self.loader_phase = phase.level

    def checkpoint(self, phase: PhaseState) -> Path | None:
        if not self.world.is_main:
            return None
        path = save_training_checkpoint(
            self.run_dir, self._modules(), self.optimizers, self.config, self.progress,
            level=self.level, alpha=phase.alpha if phase.level == self.level else 1.0, keep=self.config.keep_checkpoints,
            state={"pool": self.pool.state()} if self.pool is not None else None,
        )
        self.report("checkpoint", {"path": str(path), "images_seen": self.progress.images_seen})
        return path

    def grids(self) -> list[Path]:
        if not self.world.is_main:
            return []
        level, res = self.level, 4 * 2**self.level
        real = torch.nn.functional.interpolate(self.preview, size=(res, res), mode="area")
        paths = write_phase_grids(self.run_dir / "grids", self.nets.encoder, self.ema, real, level, self.config.model.latent_dim, self.config.seed)
        self.report("grids", {"resolution": res, "paths": [str(p) for p in paths.values()]})
        return list(paths.values())

    def iteration(self, phase: PhaseState) -> None:
        cfg, progress = self.config, self.progress
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group["lr"] = phase.lr * (cfg.encoder_lr_scale if name == "encoder" else 1.0)
        x = next(self.batches).to(self.device, non_blocking=True)
        if cfg.mirror:
            x = mirror(x, cfg.seed, progress.step)
        with self.precision.autocast():
            if cfg.kind in JOINT_STEPS:  # VAE, WAE: every network learns from one loss (training/baselines.py)
                scalars = JOINT_STEPS[cfg.kind](self.nets, x, phase, cfg, list(self.optimizers.values()), self.world)
            else:  # automodulator, PIONEER: the AGE game, an encoder step then a decoder step
                enc = encoder_step(self.nets, x, phase, cfg, [self.optimizers["encoder"]] + ([self.optimizers["robust"]] if self.nets.robust is not None else []), self.world, self.pool)
                dec = decoder_step(self.nets, x.shape[0], phase, cfg, [self.optimizers["decoder"]], self.world, self.device)
                scalars = {**enc, **dec}
        global_batch = phase.batch_size * self.world.size
        beta = cfg.ema_decay if cfg.ema_decay is not None else ema_beta(global_batch, cfg.ema_half_life, progress.images_seen)
        update_ema(self.ema, self.nets.decoder, beta)
        progress.images_seen += global_batch
        progress.step += 1
        progress.position = advance(progress.position, len(self.dataset), global_batch)
        self.metrics.add(scalars)

    def log_record(self, phase: PhaseState, images_per_s: float) -> dict:
        return self.metrics.flush(phase, self.progress, images_per_s, self.nets.robust)

    def run(self, stop_after_images: int | None = None) -> TrainResult:
        """Train to the end of the schedule (or `stop_after_images`); SIGINT/SIGTERM stop cleanly with a checkpoint."""
        cfg = self.config
        if self.world.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        end = cfg.total_images if stop_after_images is None else min(cfg.total_images, stop_after_images)
        return drive(self, cfg, end, cfg.total_images)


def train(config: TrainConfig, run_dir: Path, device: str = "auto", resume: Path | None = None, report: Report | None = None,
          stop_after_images: int | None = None, total_kimg: float | None = None) -> TrainResult:
    """Train (or resume) a run in `run_dir`; see Trainer. `total_kimg` replaces the length of a resumed run."""
    trainer = Trainer(config, run_dir, device=device, resume=resume, report=report, total_kimg=total_kimg)
    try:
        return trainer.run(stop_after_images)
    finally:
        distributed.shutdown(trainer.world)
