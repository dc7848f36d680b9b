"""LIA's training run (LIA Sec. 4) with the project's data, schedule, loop, checkpoints and exact resume.

Stage 1 grows the generator (NICE mapping + AdaIN synthesis) and the discriminator progressively as the
automodulator grows; stage 2 freezes the generator (its EMA copy is g*) and trains the encoder into y-space at
the target resolution while the discriminator is fine-tuned. One run directory holds both stages.

A checkpoint is the pair every run writes (training/state.py), with the weights under 'decoder.' (generator),
'decoder_ema.', 'discriminator.' and, once stage 2 has begun, 'encoder.', and the metadata kind "lia", the LIA and
training configs and the stage. The safetensors file alone is a complete model for `locate.load_model`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from automod_cli.checkpoint import is_lia_checkpoint, run_checkpoints
from automod_cli.config import level_resolution
from automod_cli.devices import pick_device
from automod_cli.errors import AutomodError
from automod_cli.images import make_grid, save_image
from automod_cli.features.vgg import FeatureNet, vgg_conv43
from automod_cli.models.encoder import Encoder
from automod_cli.models.lia import KIND, LiaDiscriminator, LiaGenerator
from automod_cli.training.distributed import World
from automod_cli.training.ema import make_ema
from automod_cli.training.lia.config import LiaTrainConfig
from automod_cli.training.lia.steps import encoder_step, gan_step
from automod_cli.training.loop import TrainResult, training_loop
from automod_cli.training.precision import Precision
from automod_cli.training.run import Report, TrainingRun
from automod_cli.training.schedule import PhaseState, phase_at
from automod_cli.training.state import (
    RunCounters,
    latest_resumable,
    load_training_checkpoint,
    restore_training,
)

STAGES = (1, 2)


class LiaRun(TrainingRun):
    """One LIA run: `resume` a checkpoint pair or start from `config`; trained by training_loop up to an end."""

    def __init__(
        self,
        config: LiaTrainConfig | None,
        run_dir: Path,
        device: str | torch.device = "auto",
        resume: Path | None = None,
        report: Report | None = None,
    ):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise AutomodError("LIA training runs in a single process: start it without torchrun.")
        self.run_dir = Path(run_dir)
        self.report = report or (lambda event, data: None)
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.world = World()
        restored = load_training_checkpoint(resume) if resume is not None else None
        if restored is not None and not is_lia_checkpoint(restored.meta):
            raise AutomodError(
                f"'{resume}' is not a LIA run: resume it as the model it is (without --model lia)."
            )
        if restored is None and config is None:
            raise AutomodError("a new LIA run needs a config (or resume an existing run).")
        self.config = LiaTrainConfig.from_dict(restored.meta["lia_train_config"]) if restored else config
        self.train_config, network = self.config.train, self.config.network
        torch.manual_seed(self.train_config.seed)  # the same initial weights on every (re)start
        self.generator = LiaGenerator(network).to(self.device)
        self.discriminator = LiaDiscriminator(network).to(self.device)
        self.encoder = Encoder(network.model).to(self.device)
        self.ema = make_ema(self.generator)
        # --precision bf16: the steps run under bf16 autocast (stage 2 decodes through the EMA generator inside them)
        self.precision = Precision(self.device.type, self.train_config.precision)
        self.precision.prepare_modules(self.generator, self.discriminator, self.encoder, self.ema)
        self.counters = restored.counters if restored else RunCounters()
        # the stage being trained: its optimisers exist and, for stage 2, the encoder is saved
        self.active_stage = restored.meta["stage"] if restored else 1
        self.optimizers = self.stage_optimizers(self.active_stage)
        if restored:
            restore_training(restored, self.modules(), self.optimizers)
        # the level last trained: a run resumed at a growth step writes the old level's grids as the original did
        self.level = restored.meta["level"] if restored else phase_at(self.train_config, 0).level
        self.open_data()
        self.open_log()
        self.features: FeatureNet | None = None  # ε of stage 2, set before stage 2 trains (`train_lia`)

    @property
    def due_stage(self) -> int:
        """The stage the images seen so far call for (`active_stage` follows it at the next iteration)."""
        return 1 if self.counters.images_seen < self.config.stage1_images else 2

    def stage_optimizers(self, stage: int) -> dict[str, torch.optim.Optimizer]:
        """Stage 1 trains generator and discriminator; stage 2 the encoder and (fine-tuning) the discriminator,
        each with a fresh Adam."""
        if stage == 1:
            return {"generator": self.adam(self.generator), "discriminator": self.adam(self.discriminator)}
        return {"encoder": self.adam(self.encoder), "discriminator": self.adam(self.discriminator)}

    def modules(self) -> dict[str, torch.nn.Module]:
        modules = {"decoder": self.generator, "decoder_ema": self.ema, "discriminator": self.discriminator}
        if self.active_stage == 2:
            modules["encoder"] = self.encoder
        return modules

    def checkpoint_meta(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "kind": KIND,
            "lia_config": cfg.network.to_dict(),
            "train_config": cfg.train.to_dict(),
            "lia_train_config": cfg.to_dict(),
            "stage": self.active_stage,
        }

    def report_fields(self) -> dict[str, Any]:
        return {"stage": self.active_stage}

    def next_stage(self) -> list[Path]:
        """Once stage 1's images are seen: its last grids, then stage 2 with fresh optimisers."""
        if self.due_stage == self.active_stage:
            return []
        paths = self.grids()
        self.active_stage = 2
        self.optimizers = self.stage_optimizers(2)
        self.report("stage", {"stage": 2, "images_seen": self.counters.images_seen})
        return paths

    def train_step(self, x: torch.Tensor, phase: PhaseState) -> dict[str, torch.Tensor]:
        """Stage 1: the GAN step (g∘φ⁻¹, then c; LIA Eq. 9-10). Stage 2: the encoder step through the frozen g*
        (f, then c; LIA Eq. 11-12). Both in training/lia/steps.py."""
        cfg = self.config
        with self.precision.autocast():
            if self.active_stage == 1:
                return gan_step(
                    self.generator,
                    self.discriminator,
                    x,
                    phase,
                    cfg.r1_gamma,
                    cfg.train.layer_noise,
                    self.optimizers,
                )
            weights = (cfg.r1_gamma, cfg.perceptual_weight, cfg.adversarial_weight)
            return encoder_step(
                self.encoder, self.ema, self.discriminator, self.features, x, phase, weights, self.optimizers
            )

    def ema_source(self) -> torch.nn.Module | None:
        """The generator in stage 1; in stage 2 it is frozen and its EMA is g*."""
        return self.generator if self.active_stage == 1 else None

    @torch.no_grad()
    def grids(self) -> list[Path]:
        """<res>-samples.png from the EMA generator (fixed z) and, in stage 2, <res>-reconstructions.png."""
        res, folder = level_resolution(self.level), self.run_dir / "grids"
        seed = torch.Generator().manual_seed(self.train_config.seed)
        z = torch.randn(32, self.config.network.latent_dim, generator=seed)
        samples = self.ema(z.to(self.device), self.level, 1.0, False)
        paths = [save_image(folder / f"{res}-samples.png", make_grid(samples, 8), overwrite=True)]
        if self.active_stage == 2:
            real = torch.nn.functional.interpolate(self.preview, size=(res, res), mode="area")
            recon = self.ema.synthesize(self.encoder(real, self.level, 1.0), self.level, 1.0, False)
            pairs = torch.stack([real, recon], dim=1).flatten(0, 1)
            paths.append(
                save_image(folder / f"{res}-reconstructions.png", make_grid(pairs, 8), overwrite=True)
            )
        self.report("grids", {"resolution": res, "paths": [str(p) for p in paths]})
        return paths


def train_lia(
    config: LiaTrainConfig | None,
    run_dir: Path,
    stage: int | None = None,
    device: str = "auto",
    resume: Path | None = None,
    report: Report | None = None,
    stop_after_images: int | None = None,
    features: FeatureNet | None = None,
    vgg_weights: Path | None = None,
) -> TrainResult:
    """Train LIA in `run_dir`: `stage` 1 (the GAN), 2 (the encoder; continues the run's latest checkpoint
    when `resume` is None) or None (both in sequence). `stop_after_images` counts images over both stages.
    Stage 2 needs ε: `features` if given, else VGG16 conv4_3 from `vgg_weights`, the environment or the cache,
    looked up before any training starts. A resumed run keeps the config saved in its checkpoint."""
    if stage is not None and stage not in STAGES:
        raise AutomodError(f"LIA has stages 1 and 2, not {stage}.")
    if stage == 2 and resume is None:
        if not run_checkpoints(run_dir):
            raise AutomodError(
                f"stage 2 continues a LIA run whose stage 1 is done, and '{run_dir}' has no "
                "checkpoints: run stage 1 first."
            )
        resume, _ = latest_resumable(run_dir)
    run = LiaRun(config, run_dir, device=device, resume=resume, report=report)
    cfg = run.config
    if stage == 2 and run.counters.images_seen < cfg.stage1_images:
        raise AutomodError(
            f"stage 1 of '{run_dir}' has seen {run.counters.images_seen:,} of {cfg.stage1_images:,} images: "
            "finish it first (--stage 1), or train both stages in one go."
        )
    end = cfg.stage1_images if stage == 1 else cfg.total_images
    if stop_after_images is not None:
        end = min(end, stop_after_images)
    if end > cfg.stage1_images and features is None:
        features = vgg_conv43(vgg_weights, run.device)
    if isinstance(features, torch.nn.Module):
        features.requires_grad_(False)
    run.features = features
    # every image counts over both stages, so the run's total is its end; stage 1's end is always checkpointed
    return training_loop(run, end, end, checkpoint_at=cfg.stage1_images)
