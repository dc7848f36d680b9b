"""The automodulator's training run, and its baselines' (PIONEER, VAE, WAE): networks, optimisers and the step of
each iteration (training/steps.py's encoder and decoder steps, or training/baselines.py's joint step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from automod_cli import kinds
from automod_cli.config import TrainConfig, level_resolution
from automod_cli.devices import pick_device
from automod_cli.losses import reconstruction_distance
from automod_cli.models import Automodulator
from automod_cli.models.initialisation import authors_initialisation
from automod_cli.training import distributed
from automod_cli.training.baselines import JOINT_STEPS
from automod_cli.training.draws import RandomDraws
from automod_cli.training.ema import make_ema
from automod_cli.training.grids import write_phase_grids
from automod_cli.training.init import load_init_weights
from automod_cli.training.loop import TrainResult, training_loop
from automod_cli.training.pool import ImagePool, pool_capacity
from automod_cli.training.precision import Precision
from automod_cli.training.run import Report, TrainingRun
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import RunCounters, load_training_checkpoint, restore_training
from automod_cli.training.steps import (
    Nets,
    adain_maps,
    cotrain_planned,
    cotrains,
    decoder_step,
    encoder_step,
)


class AutomodulatorRun(TrainingRun):
    """One run of an automodulator (or PIONEER, VAE, WAE): `resume` a checkpoint pair or start from `config`;
    `run()` trains until the end of the schedule or a stop."""

    def __init__(
        self,
        config: TrainConfig | None,
        run_dir: Path,
        device: str | torch.device = "auto",
        resume: Path | None = None,
        report: Report | None = None,
        total_kimg: float | None = None,
        time_budget_min: float | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.report = report or (lambda event, data: None)
        # a name from the command line (validated, one-line errors), or a torch.device as is (e.g. meta in the tests)
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.world = distributed.init_world(self.device)
        if self.world.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        restored = load_training_checkpoint(resume) if resume is not None else None
        # `--resume RUN --kimg K --time-budget M`: a new length, a new time budget
        self.config = (restored.config if restored else config).resumed(total_kimg, time_budget_min)
        cfg = self.train_config = self.config
        self.lr_scale = {"encoder": cfg.encoder_lr_scale}
        torch.manual_seed(cfg.seed)
        model = Automodulator(cfg.model)
        if cfg.recipe.initialisation == "authors":
            authors_initialisation(model)
        self.counters = restored.counters if restored else RunCounters(images_seen=cfg.start_images)
        # the level last trained; a resumed run grows from here exactly as the uninterrupted run did
        self.level = restored.meta["level"] if restored else phase_at(cfg, cfg.start_images).level
        self.nets = Nets(
            model.encoder,
            model.decoder,
            reconstruction_distance(cfg.reconstruction, level_resolution(self.level)),
        )
        # VAE and WAE train their AdaIN maps from the reconstruction anyway (one joint step)
        game = kinds.get(cfg.kind).step == kinds.GAME
        maps = adain_maps(self.nets.decoder)  # none in a classic decoder (TrainConfig refuses "on" for it)
        if game and len(maps) and cotrain_planned(cfg):
            self.nets.adain = maps
        self.ema = make_ema(self.nets.decoder)
        if (
            cfg.init and not restored
        ):  # fine-tuning: the init model's weights, fresh optimisers (training/init.py)
            load_init_weights(cfg, self.modules())
        for module in self.modules().values():
            module.to(self.device)
        self.precision = Precision(
            self.device.type, cfg.precision
        )  # bf16 autocast, channels-last on CUDA, compile
        self.precision.prepare(self.nets.encoder, self.nets.decoder, self.ema, compile=cfg.compile)
        self.optimizers = {"encoder": self.adam(self.nets.encoder), "decoder": self.adam(self.nets.decoder)}
        if self.nets.robust is not None:
            self.optimizers["robust"] = self.adam(self.nets.robust)
        if self.nets.adain is not None:  # their own Adam, as the authors' optimizerA
            self.optimizers["adain"] = self.adam(self.nets.adain)
        # the authors' pool of generated images for the encoder step (the AGE game only)
        self.pool = (
            ImagePool(pool_capacity(cfg.recipe.fake_pool, level_resolution(self.level)))
            if game and cfg.recipe.fake_pool
            else None
        )
        if restored:
            restore_training(restored, self.modules(), self.optimizers)
            if self.pool is not None:
                self.pool.load_state(restored.state.get("pool"), self.device)
            for name, grad in ((restored.state or {}).get("robust_gradients") or {}).items():  # a running sum
                getattr(self.nets.robust, name).grad = grad.to(self.device)
        for module in self.modules().values():
            distributed.broadcast_module(module, self.world)
        if self.world.active:  # same weights everywhere, different random latents per rank
            torch.manual_seed(cfg.seed + 1_000 * self.world.rank + self.counters.step)
        self.draws = RandomDraws()  # every random number of a step (a ReplayDraws serves recorded ones)
        self.open_data()
        self.open_log()

    def modules(self) -> dict[str, torch.nn.Module]:
        modules = {"encoder": self.nets.encoder, "decoder": self.nets.decoder, "decoder_ema": self.ema}
        if self.nets.robust is not None:
            modules["robust"] = self.nets.robust
        return modules

    def follow(self, config: TrainConfig) -> None:
        self.config = self.train_config = config
        # config.json says what the run now trains; where it cannot be written (a full disk, say) the run goes on:
        # its checkpoints carry the config, and the next one reports the disk
        try:
            self.prepare()
        except OSError:
            pass

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"model_config": self.config.model.to_dict(), "train_config": self.config.to_dict()}

    def training_state(self) -> dict[str, Any] | None:
        """The pool, and d_ρ's gradients where they add up over the steps (Recipe.robust_gradients): both are
        part of where the run stands, so a resumed run goes on exactly."""
        state: dict[str, Any] = {}
        if self.pool is not None:
            state["pool"] = self.pool.state()
        robust = self.nets.robust
        if robust is not None and self.config.recipe.robust_gradients == "accumulated":
            state["robust_gradients"] = {
                name: p.grad.detach().cpu() for name, p in robust.named_parameters() if p.grad is not None
            }
        return state or None

    def learned_distance(self) -> torch.nn.Module | None:
        return self.nets.robust

    def grow(self) -> None:
        """d_ρ's α map doubles (with a fresh optimiser); the pool starts afresh at the new size."""
        if self.pool is not None:  # older images are of the wrong size
            self.pool = ImagePool(pool_capacity(self.config.recipe.fake_pool, level_resolution(self.level)))
        if self.nets.robust is not None:
            self.nets.robust.grow(self.config.recipe.robust_growth)
            self.optimizers["robust"] = self.adam(self.nets.robust)

    def train_step(self, x: torch.Tensor, phase: PhaseState) -> dict[str, torch.Tensor]:
        """VAE, WAE: one joint step of every network (training/baselines.py). Automodulator, PIONEER: the AGE game,
        an encoder step (φ and d_ρ learn) then a decoder step (θ learns) (training/steps.py)."""
        cfg, opts = self.config, self.optimizers
        with self.precision.autocast():
            if kinds.get(cfg.kind).step == kinds.JOINT:
                return JOINT_STEPS[cfg.kind](self.nets, x, phase, cfg, list(opts.values()), self.world)
            encoder_opts = [opts["encoder"]] + ([opts["robust"]] if "robust" in opts else [])
            if cotrains(self.nets, phase, cfg):
                encoder_opts.append(opts["adain"])
            enc = encoder_step(self.nets, x, phase, cfg, encoder_opts, self.world, self.pool, self.draws)
            dec = decoder_step(
                self.nets, x.shape[0], phase, cfg, [opts["decoder"]], self.world, self.device, self.draws
            )
        return {**enc, **dec}

    def ema_source(self) -> torch.nn.Module:
        return self.nets.decoder

    def ema_beta(self, phase: PhaseState) -> float:
        """A fixed β per step with `ema_decay` (the authors' recipe), else the half-life's."""
        return (
            self.config.recipe.ema_decay
            if self.config.recipe.ema_decay is not None
            else super().ema_beta(phase)
        )

    def grids(self) -> list[Path]:
        if not self.world.is_main:
            return []
        level, res = self.level, level_resolution(self.level)
        real = torch.nn.functional.interpolate(self.preview, size=(res, res), mode="area")
        paths = write_phase_grids(
            self.run_dir / "grids",
            self.nets.encoder,
            self.ema,
            real,
            level,
            self.config.model.latent_dim,
            self.config.seed,
        )
        self.report("grids", {"resolution": res, "paths": [str(p) for p in paths.values()]})
        return list(paths.values())

    def run(self, stop_after_images: int | None = None) -> TrainResult:
        """Train to the end of the schedule (or `stop_after_images`); SIGINT/SIGTERM stop cleanly with a checkpoint."""
        total = self.config.total_images
        end = total if stop_after_images is None else min(total, stop_after_images)
        return training_loop(self, end, total)


def train_automodulator(
    config: TrainConfig | None,
    run_dir: Path,
    device: str | torch.device = "auto",
    resume: Path | None = None,
    report: Report | None = None,
    stop_after_images: int | None = None,
    total_kimg: float | None = None,
    time_budget_min: float | None = None,
) -> TrainResult:
    """Train (or resume) an automodulator, PIONEER, VAE or WAE run in `run_dir`. `total_kimg` replaces the length
    of a resumed run, `time_budget_min` its time budget (0: none)."""
    run = AutomodulatorRun(
        config,
        run_dir,
        device=device,
        resume=resume,
        report=report,
        total_kimg=total_kimg,
        time_budget_min=time_budget_min,
    )
    try:
        return run.run(stop_after_images)
    finally:
        distributed.shutdown(run.world)
