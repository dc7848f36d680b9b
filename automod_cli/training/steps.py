"""One encoder step and one decoder step of the automodulator game (NeurIPS Eq. 1, 4, 6; Fig. 3).

Each step returns its scalars as detached tensors; they are turned into numbers only at log intervals so the
loop never waits on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from automod_cli import losses
from automod_cli.config import TrainConfig
from automod_cli.models.latents import per_block, split_at
from automod_cli.nn.modulation import AdaIN
from automod_cli.training import invariance
from automod_cli.training.distributed import World, average_gradients
from automod_cli.training.draws import RandomDraws
from automod_cli.training.pool import ImagePool
from automod_cli.training.schedule import PhaseState


RANDOM = RandomDraws()  # the run's own random numbers (a step's default draws)


@dataclass
class Nets:
    """The networks a step trains and the run's image distance d, built once (losses.reconstruction_distance)."""

    encoder: nn.Module
    decoder: nn.Module
    distance: nn.Module  # d(x, target): d_ρ (learnable α and scale) or the L1/L2 distance
    # the decoder's AdaIN maps when they learn in the encoder step too (Recipe.adain_cotrain; adain_maps), else None
    adain: nn.Module | None = None

    @property
    def robust(self) -> losses.AdaptiveRobustLoss | None:
        """d_ρ when the run learns its distance (it then has an optimiser, grows and is checkpointed), else None."""
        return self.distance if isinstance(self.distance, losses.AdaptiveRobustLoss) else None


def adain_maps(decoder: nn.Module) -> nn.ModuleList:
    """The decoder's AdaIN affine maps (z → per-channel std and mean), gathered so that the encoder step can train
    them (Recipe.adain_cotrain); the decoder still owns them (its state dict is unchanged)."""
    return nn.ModuleList(m.affine for m in decoder.modules() if isinstance(m, AdaIN))


def flip_runs(phase: PhaseState, config: TrainConfig) -> bool:
    """Whether flip invariance acts in this phase: once its support block J runs (before, training is as usual)."""
    return 0 < config.flip_invariance_layer < phase.blocks


def cotrain_planned(config: TrainConfig) -> bool:
    """Whether a run's AdaIN maps ever learn in the encoder step (Recipe.adain_cotrain "on", or "flip" in a run with
    flip invariance): the run then gathers them into `Nets.adain`, with an optimiser of their own."""
    mode = config.recipe.adain_cotrain
    return mode == "on" or (mode == "flip" and config.flip_invariance_layer > 0)


def cotrains(nets: Nets, phase: PhaseState, config: TrainConfig) -> bool:
    """Whether the AdaIN maps learn in this encoder step: always with "on", while flip invariance acts with "flip";
    the maps' optimiser must then be among the step's optimisers."""
    return nets.adain is not None and (config.recipe.adain_cotrain == "on" or flip_runs(phase, config))


@dataclass
class FakeLatents:
    assignment: torch.Tensor  # (N, B, D): which latent drives which block
    mixed: int  # the first `mixed` rows are mixtures (the authors' order); the rest use one latent everywhere
    z: torch.Tensor  # (N, D): the latent of each row (z_A for mixed rows)
    split: int | None  # j: mixed rows take z_A on blocks < j and z_B on the rest; None when no row is mixed

    @property
    def regular(self) -> int:
        return self.z.shape[0] - self.mixed


def fake_latents(
    n: int,
    mixed_fraction: float,
    phase: PhaseState,
    config: TrainConfig,
    device: torch.device,
    draws: RandomDraws = RANDOM,
    step: str = "E",
) -> FakeLatents:
    """Random latents for generated images; the first ⌊n·mixed_fraction⌋ of them are two-latent mixtures with the
    split j drawn uniformly from 1..(active blocks) (NeurIPS Eq. 6: j ~ U{1, N}), or from 1..(active blocks − 1)
    without `recipe.split_all_blocks` (the authors'). Below `recipe.mix_start_level` no row is mixed. `step` ("E"
    or "D") names the draws (training/draws.py)."""
    recipe, blocks, dim = config.recipe, phase.blocks, config.model.latent_dim
    top = blocks if recipe.split_all_blocks else blocks - 1
    mixed = int(n * mixed_fraction) if phase.level >= recipe.mix_start_level and top >= 1 else 0
    z = draws.latents(f"{step}.z", n, dim, device)
    assignment = per_block(z, blocks)
    if not mixed:
        return FakeLatents(assignment, 0, z, None)
    z_b = draws.latents(f"{step}.z_mix", mixed, dim, device)
    split = draws.split(f"{step}.split", top)
    assignment = torch.cat([split_at(z[:mixed], z_b, split, blocks), assignment[mixed:]])
    return FakeLatents(assignment, mixed, z, split)


def layer_noise(config: TrainConfig, draws: RandomDraws, call: str, split: int | None = None):
    """The decoder's `noise` argument for one generator call: off without layer noise, else the step's draws
    (`call` and the split name them)."""
    return draws.layer_noise(call, split) if config.layer_noise else False


def optimize(
    optimizers,
    loss: torch.Tensor,
    world: World,
    modules: list[nn.Module | None],
    keep_gradients: nn.Module | None = None,
) -> None:
    """One optimisation step: backpropagate `loss`, average the gradients of `modules` (None skipped) over the
    ranks, step every optimiser. The gradients of `modules` are cleared first, except `keep_gradients`'s, which
    add up over the steps (the authors' d_ρ, Recipe.robust_gradients)."""
    for module in modules:
        if module is not None and module is not keep_gradients:
            module.zero_grad(set_to_none=True)
    loss.backward()
    for module in modules:
        if module is not None:
            average_gradients(module, world)
    for opt in optimizers:
        opt.step()


def encoder_loss(
    kl_real: torch.Tensor, kl_fake: torch.Tensor, recon: torch.Tensor, phase: PhaseState, config: TrainConfig
) -> torch.Tensor:
    """L_φ in the run's form: Eq. 1's hinge or the authors' clamp, with the KL scale and λ_X·match_x once the phase
    has settled (docs/training.md)."""
    recipe = config.recipe
    lambda_x = recipe.lambda_x * (recipe.match_x if phase.settled else 1.0)
    if recipe.encoder_objective == "clamp":
        return losses.encoder_loss_clamped(
            kl_real, kl_fake, recon, phase.kl_margin, lambda_x, recipe.kl_scale
        )
    return losses.encoder_loss(
        kl_real, kl_fake, recon, margin=phase.kl_margin, lambda_x=lambda_x, kl_scale=recipe.kl_scale
    )


def encoder_step(
    nets: Nets,
    x: torch.Tensor,
    phase: PhaseState,
    config: TrainConfig,
    optimizers,
    world: World,
    pool: ImagePool | None = None,
    draws: RandomDraws = RANDOM,
) -> dict:
    """L_φ = max(−M_gap, KL(φ(x)) − KL(φ(x̂))) + λ_X·d(x, θ(φ(x))) (NeurIPS Eq. 1; `encoder_loss` for the
    authors' form); only φ (and d_ρ) learn. With a `pool`, once the phase has settled about half the generated
    images are exchanged for older ones from it (the authors' recipe). φ runs once on the real and generated
    images together, or, with `recipe.encoder_passes` "separate", as the authors' code runs it: φ(x), its
    reconstruction, then the generated images and φ of them (a spectral-norm power step per pass). With
    `cotrains` the decoder's AdaIN maps learn from the reconstruction term too (their optimiser is then among
    `optimizers`); the generated images never carry gradients."""
    recipe, level, alpha = config.recipe, phase.level, phase.alpha
    nets.decoder.requires_grad_(False)
    maps = nets.adain if cotrains(nets, phase, config) else None
    if maps is not None:
        maps.requires_grad_(True)

    def generated() -> torch.Tensor:
        with torch.no_grad():
            fake = fake_latents(
                x.shape[0], recipe.mixed_fraction_encoder, phase, config, x.device, draws, "E"
            )
            x_fake = nets.decoder(
                fake.assignment, level, alpha, layer_noise(config, draws, "E.fake", fake.split)
            )
            return pool.swap(x_fake, draws) if pool is not None and phase.settled else x_fake

    flip = flip_runs(phase, config)
    if flip:
        x_1, x_2 = invariance.flipped_pairs(x)
    else:
        x_1 = x_2 = x[:0]
    n, separate = x.shape[0], recipe.encoder_passes == "separate"
    if separate:
        z_real, z_2 = nets.encoder(torch.cat([x, x_2]), level, alpha).split([n, x_2.shape[0]])
    else:
        # One encoder pass for φ(x), φ(x̂) and the flipped images: φ has no batch statistics, so this is the same as
        # separate passes, one power iteration of each spectral norm instead of two or three (benchmarks/RESULTS.md).
        x_fake = generated()
        z_real, z_fake, z_2 = nets.encoder(torch.cat([x, x_fake, x_2]), level, alpha).split(
            [n, n, x_2.shape[0]]
        )
    if flip:  # NeurIPS Eq. 10-11 in place of the plain term; x_1 is the first half of x, so z_1 = φ(x) there
        recon = invariance.swapped_reconstruction_loss(
            nets, x_1, x_2, z_real[: x_1.shape[0]], z_2, phase, config
        )
    else:
        recon = nets.distance(nets.decoder(z_real, level, alpha, layer_noise(config, draws, "E.recon")), x)
    if separate:
        z_fake = nets.encoder(generated(), level, alpha)
    kl_real, kl_fake = losses.empirical_kl(z_real), losses.empirical_kl(z_fake)
    loss = encoder_loss(kl_real, kl_fake, recon, phase, config)
    keep = nets.robust if recipe.robust_gradients == "accumulated" else None
    optimize(optimizers, loss, world, [nets.encoder, nets.robust, maps], keep_gradients=keep)
    nets.decoder.requires_grad_(True)
    return {
        "enc_loss": loss.detach(),
        "kl_real": kl_real.detach(),
        "kl_fake_enc": kl_fake.detach(),
        "recon": recon.detach(),
    }


def decoder_step(
    nets: Nets,
    batch_size: int,
    phase: PhaseState,
    config: TrainConfig,
    optimizers,
    world: World,
    device,
    draws: RandomDraws = RANDOM,
) -> dict:
    """L_θ = KL(φ(x̂)) + λ_Z·d_cos(z, φ(θ(z))) + L_j (NeurIPS Eq. 6; with the run's KL scale and latent
    distance); only θ learns (during a fade-in not the previous level's toRGB with `freeze_previous_rgb`)."""
    recipe, level, alpha = config.recipe, phase.level, phase.alpha
    nets.encoder.requires_grad_(False)
    frozen = (
        nets.decoder.to_rgb[level - 1] if recipe.freeze_previous_rgb and level > 0 and alpha < 1.0 else None
    )
    if frozen is not None:
        frozen.requires_grad_(False)
    fake = fake_latents(batch_size, recipe.mixed_fraction_decoder, phase, config, device, draws, "D")
    mixed, regular = fake.mixed, fake.regular
    mixing = config.layer_loss and mixed > 0
    live = mixing and recipe.layer_target == "live"
    noise = layer_noise(config, draws, "D.fake", fake.split)
    if live:  # L_j's target is the canvas that made the mixed images, noise and gradients included (authors)
        x_fake, made = nets.decoder(fake.assignment, level, alpha, noise, canvas_at=fake.split)
        x_fake, target = x_fake.float(), made[:mixed].float()
    else:
        x_fake = nets.decoder(fake.assignment, level, alpha, noise)
    z_hat = nets.encoder(x_fake, level, alpha)
    kl_fake = losses.empirical_kl(z_hat)
    if not regular:
        latent_rec = latent_cos = kl_fake.new_zeros(())
    else:
        latent_cos = losses.cosine_distance(fake.z[mixed:], z_hat[mixed:])
        dot = recipe.latent_distance == "dot"
        latent_rec = losses.latent_dot_distance(fake.z[mixed:], z_hat[mixed:]) if dot else latent_cos
    layer = kl_fake.new_zeros(())
    if mixing:
        # NeurIPS Eq. 4: the re-encoded mixture must drive layers 1..j like z_A did. By default the target canvas
        # is detached and both canvases are computed without layer noise (the papers are silent on both; a noisy
        # or moving target would only add variance to L_j); the authors' live target keeps both, with noise.
        # Canvases are not the decoder's forward output, so bf16 autocast leaves them in bf16: the loss is taken
        # in fp32 like every other loss (training/precision.py).
        if not live:
            with torch.no_grad():
                target = nets.decoder.canvas(fake.z[:mixed], fake.split, noise=False).float()
        canvas_noise = layer_noise(config, draws, "D.canvas") if live else False
        canvas = nets.decoder.canvas(z_hat[:mixed], fake.split, noise=canvas_noise).float()
        layer = losses.layer_disentanglement_loss(canvas, target)
    loss = losses.decoder_loss(kl_fake, latent_rec, layer, lambda_z=recipe.lambda_z, kl_scale=recipe.kl_scale)
    optimize(optimizers, loss, world, [nets.decoder])
    nets.encoder.requires_grad_(True)
    if frozen is not None:
        frozen.requires_grad_(True)
    # latent_cos is 1 − cos(z, ẑ) under either recipe, so runs compare; latent_rec is the term as weighted
    return {
        "dec_loss": loss.detach(),
        "kl_fake": kl_fake.detach(),
        "latent_cos": latent_cos.detach(),
        "latent_rec": latent_rec.detach(),
        "layer_loss": layer.detach(),
    }
