"""LIA's two-stage training loop (LIA Sec. 4) with the project's data, schedule, checkpoints and exact resume.

Stage 1 grows the generator (NICE mapping + AdaIN synthesis) and the discriminator progressively as the
automodulator grows; stage 2 freezes the generator (its EMA copy is g*) and trains the encoder into y-space at
the target resolution while the discriminator is fine-tuned. One run directory holds both stages.

A checkpoint is the pair the automodulator loop writes (training/state.py): `ckpt-<images>.safetensors` with the
weights under 'decoder.' (generator), 'decoder_ema.', 'discriminator.' and, once stage 2 has begun, 'encoder.',
plus JSON metadata (kind "lia", LIA and training configs, stage, level, α, progress); and `.train.pt` with the
optimiser and RNG states. The safetensors file alone is a complete model for `model_from_checkpoint`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from automod_cli.checkpoint import find_checkpoint, read_checkpoint, run_checkpoints, save_checkpoint
from automod_cli.errors import AutomodError
from automod_cli.images import make_grid, save_image
from automod_cli.models.encoder import Encoder
from automod_cli.models.lia import (LiaDiscriminator, LiaGenerator, LiaModel, checkpoint_meta,
                                    checkpoint_tensors, is_lia_checkpoint, model_from_checkpoint)
from automod_cli.training.data import advance, make_loader, mirror, open_training_data
from automod_cli.training.distributed import World
from automod_cli.training.driver import Report, TrainResult, drive
from automod_cli.training.ema import ema_beta, make_ema, update_ema
from automod_cli.training.lia_config import LiaTrainConfig
from automod_cli.training.lia_steps import encoder_step, gan_step
from automod_cli.devices import pick_device
from automod_cli.training.state import latest_resumable
from automod_cli.training.metrics import MetricsLog
from automod_cli.training.perceptual import FeatureNet, vgg_conv43
from automod_cli.training.precision import Precision
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import Progress, load_training_checkpoint, restore_training, write_training_checkpoint

STAGES = (1, 2)


class LiaTrainer:
    """Owns the networks, optimisers and progress of one LIA run; `run(end)` trains up to `end` images."""

    def __init__(self, config: LiaTrainConfig | None, run_dir: Path, device: str = "auto", resume: Path | None = None,
                 report: Report | None = None):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise AutomodError("LIA training runs in a single process: start it without torchrun.")
        self.run_dir = Path(run_dir)
        self.report = report or (lambda event, data: None)
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        restored = load_training_checkpoint(resume) if resume is not None else None
        if restored is not None and not is_lia_checkpoint(restored.meta):
            raise AutomodError(f"'{resume}' is not a LIA run: resume it as the model it is (without --model lia).")
        if restored is None and config is None:
            raise AutomodError("a new LIA run needs a config (or resume an existing run).")
        self.config = LiaTrainConfig.from_dict(restored.meta["lia_train_config"]) if restored else config
        network = self.config.network
        torch.manual_seed(self.config.train.seed)  # the same initial weights on every (re)start
        self.generator = LiaGenerator(network).to(self.device)
        self.discriminator = LiaDiscriminator(network).to(self.device)
        self.encoder = Encoder(network.model).to(self.device)
        self.ema = make_ema(self.generator)
        # --precision bf16: the steps run under bf16 autocast (stage 2 decodes through the EMA generator inside them)
        self.precision = Precision(self.device.type, self.config.train.precision)
        self.precision.prepare_modules(self.generator, self.discriminator, self.encoder, self.ema)
        self.progress = restored.progress if restored else Progress()
        # the stage being trained: its optimisers exist and, for stage 2, the encoder is saved
        self.active_stage = restored.meta["stage"] if restored else 1
        self.optimizers = self._optimizers(self.active_stage)
        if restored:
            restore_training(restored, self._modules(), self.optimizers)
        # the level last trained: a run resumed at a growth step writes the old level's grids as the original did
        self.level = restored.meta["level"] if restored else phase_at(self.config.train, 0).level
        self.dataset = open_training_data(self.config.train)
        self.preview = self._preview_images()
        self.features: FeatureNet | None = None  # ε of stage 2, given to `run`

    @property
    def due_stage(self) -> int:
        """The stage the images seen so far call for (`active_stage` follows it at the next iteration)."""
        return 1 if self.progress.images_seen < self.config.stage1_images else 2

    def _adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        train = self.config.train
        lr = phase_at(train, self.progress.images_seen).lr
        return torch.optim.Adam(module.parameters(), lr=lr, betas=train.adam_betas, eps=train.adam_eps, foreach=True)

    def _optimizers(self, stage: int) -> dict[str, torch.optim.Optimizer]:
        """Stage 1 trains generator and discriminator; stage 2 the encoder and (fine-tuning) the discriminator,
        each with a fresh Adam."""
        trained = self.generator if stage == 1 else self.encoder
        return {"generator" if stage == 1 else "encoder": self._adam(trained), "discriminator": self._adam(self.discriminator)}

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"decoder": self.generator, "decoder_ema": self.ema, "discriminator": self.discriminator}
        if self.active_stage == 2:
            modules["encoder"] = self.encoder
        return modules

    def _preview_images(self) -> torch.Tensor:
        """Eight held-out images at full resolution for the reconstruction grid (as the automodulator loop)."""
        train = self.config.train
        source = open_training_data(train, split="test") if train.data is None else self.dataset
        source.set_resolution(train.model.max_resolution)
        images = torch.stack([source[i] for i in range(min(8, len(source)))])
        source.set_resolution(4 * 2**self.level)
        return images.to(self.device)

    def set_phase(self, phase: PhaseState) -> None:
        self.level = phase.level
        self.dataset.set_resolution(phase.resolution)
        loader = make_loader(self.dataset, phase.batch_size, World(), self.config.train, self.progress.position,
                             self.device.type == "cuda")
        self.batches = iter(loader)

    def _switch_stage(self) -> list[Path]:
        """Once stage 1's images are seen: its last grids, then stage 2 with fresh optimisers (asked before every
        iteration; returns the grids written)."""
        if self.due_stage == self.active_stage:
            return []
        paths = self.grids()
        self.active_stage = 2
        self.optimizers = self._optimizers(2)
        self.report("stage", {"stage": 2, "images_seen": self.progress.images_seen})
        return paths

    def checkpoint(self, phase: PhaseState) -> Path:
        cfg, progress = self.config, self.progress
        meta = {
            "kind": "lia", "lia_config": cfg.network.to_dict(), "train_config": cfg.train.to_dict(),
            "lia_train_config": cfg.to_dict(), "stage": self.active_stage,
            "level": self.level, "alpha": phase.alpha if phase.level == self.level else 1.0,
        }
        path = write_training_checkpoint(self.run_dir, self._modules(), self.optimizers, meta, progress,
                                         cfg.train.keep_checkpoints)
        self.report("checkpoint", {"path": str(path), "images_seen": progress.images_seen})
        return path

    @torch.no_grad()
    def grids(self) -> list[Path]:
        """<res>-samples.png from the EMA generator (fixed z) and, in stage 2, <res>-reconstructions.png."""
        res, folder = 4 * 2**self.level, self.run_dir / "grids"
        z = torch.randn(32, self.config.network.latent_dim, generator=torch.Generator().manual_seed(self.config.train.seed))
        samples = self.ema(z.to(self.device), self.level, 1.0, False)
        paths = [save_image(folder / f"{res}-samples.png", make_grid(samples, 8), overwrite=True)]
        if self.active_stage == 2:
            real = torch.nn.functional.interpolate(self.preview, size=(res, res), mode="area")
            recon = self.ema.synthesize(self.encoder(real, self.level, 1.0), self.level, 1.0, False)
            pairs = torch.stack([real, recon], dim=1).flatten(0, 1)
            paths.append(save_image(folder / f"{res}-reconstructions.png", make_grid(pairs, 8), overwrite=True))
        self.report("grids", {"resolution": res, "paths": [str(p) for p in paths]})
        return paths

    def iteration(self, phase: PhaseState) -> None:
        cfg, progress = self.config, self.progress
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = phase.lr
        x = next(self.batches).to(self.device, non_blocking=True)
        if cfg.train.mirror:
            x = mirror(x, cfg.train.seed, progress.step)
        if self.active_stage == 1:
            with self.precision.autocast():
                scalars = gan_step(self.generator, self.discriminator, x, phase, cfg.r1_gamma, cfg.train.layer_noise, self.optimizers)
            update_ema(self.ema, self.generator, ema_beta(x.shape[0], cfg.train.ema_half_life, progress.images_seen))
        else:
            weights = (cfg.r1_gamma, cfg.perceptual_weight, cfg.adversarial_weight)
            with self.precision.autocast():
                scalars = encoder_step(self.encoder, self.ema, self.discriminator, self.features, x, phase, weights, self.optimizers)
        progress.images_seen += x.shape[0]
        progress.step += 1
        progress.position = advance(progress.position, len(self.dataset), x.shape[0])
        self.metrics.add(scalars)

    def log_record(self, phase: PhaseState, images_per_s: float) -> dict:
        return {"stage": self.active_stage, **self.metrics.flush(phase, self.progress, images_per_s, None)}

    def run(self, end: int, features: FeatureNet | None) -> TrainResult:
        """Train until `end` images (counted over both stages) or SIGINT/SIGTERM, checkpointing as configured,
        at every growth step and at the end of stage 1."""
        self.features = features
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = MetricsLog(self.run_dir, True, self.progress.images_seen)
        (self.run_dir / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        return drive(self, self.config.train, end, end, switch_stage=self._switch_stage, checkpoint_at=self.config.stage1_images)


def train_lia(config: LiaTrainConfig | None, run_dir: Path, stage: int | None = None, device: str = "auto",
              resume: Path | None = None, report: Report | None = None, stop_after_images: int | None = None,
              features: FeatureNet | None = None, vgg_weights: Path | None = None) -> TrainResult:
    """Train LIA in `run_dir`: `stage` 1 (the GAN), 2 (the encoder; continues the run's latest checkpoint
    when `resume` is None) or None (both in sequence). `stop_after_images` counts images over both stages.
    Stage 2 needs ε: `features` if given, else VGG16 conv4_3 from `vgg_weights`, the environment or the cache,
    looked up before any training starts. A resumed run keeps the config saved in its checkpoint."""
    if stage is not None and stage not in STAGES:
        raise AutomodError(f"LIA has stages 1 and 2, not {stage}.")
    if stage == 2 and resume is None:
        if not run_checkpoints(run_dir):
            raise AutomodError(f"stage 2 continues a LIA run whose stage 1 is done, and '{run_dir}' has no checkpoints: run stage 1 first.")
        resume, _ = latest_resumable(run_dir)
    trainer = LiaTrainer(config, run_dir, device=device, resume=resume, report=report)
    cfg = trainer.config
    if stage == 2 and trainer.progress.images_seen < cfg.stage1_images:
        raise AutomodError(
            f"stage 1 of '{run_dir}' has seen {trainer.progress.images_seen:,} of {cfg.stage1_images:,} images: "
            "finish it first (--stage 1), or train both stages in one go."
        )
    end = cfg.stage1_images if stage == 1 else cfg.total_images
    if stop_after_images is not None:
        end = min(end, stop_after_images)
    if end > cfg.stage1_images and features is None:
        features = vgg_conv43(vgg_weights, trainer.device)
    if isinstance(features, torch.nn.Module):
        features.requires_grad_(False)
    return trainer.run(end, features)


def save_lia_model(path: Path, model: LiaModel) -> None:
    """Write a self-contained LIA model file (weights, config, level/α) that `load_lia_model` rebuilds."""
    save_checkpoint(path, checkpoint_tensors(model), checkpoint_meta(model))


def load_lia_model(path: Path | None, device: str | torch.device = "cpu", ema: bool = True) -> LiaModel:
    """A LIA model from a checkpoint file, a run directory (its newest checkpoint) or None (the newest run)."""
    path = find_checkpoint(path)
    tensors, meta = read_checkpoint(path)
    return model_from_checkpoint(tensors, meta, str(path), ema=ema).to(device)
