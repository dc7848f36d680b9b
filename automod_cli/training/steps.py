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
from automod_cli.models.latents import per_block, random_latents, split_at
from automod_cli.training import invariance
from automod_cli.training.distributed import World, average_gradients
from automod_cli.training.pool import ImagePool
from automod_cli.training.schedule import PhaseState


@dataclass
class Nets:
    """The networks a step trains and the run's image distance d, built once (losses.reconstruction_distance)."""

    encoder: nn.Module
    decoder: nn.Module
    distance: nn.Module  # d(x, target): d_ρ (learnable α and scale) or the L1/L2 distance

    @property
    def robust(self) -> losses.AdaptiveRobustLoss | None:
        """d_ρ when the run learns its distance (it then has an optimiser, grows and is checkpointed), else None."""
        return self.distance if isinstance(self.distance, losses.AdaptiveRobustLoss) else None


@dataclass
class FakeLatents:
    assignment: torch.Tensor  # (N, B, D): which latent drives which block
    regular: int  # the first `regular` rows use one latent everywhere
    z: torch.Tensor  # (N, D): the latent of each row (z_A for mixed rows)
    split: int  # j: mixed rows take z_A on blocks < j and z_B on the rest


def fake_latents(n: int, mixed_fraction: float, phase: PhaseState, config: TrainConfig,
                 device: torch.device) -> FakeLatents:
    """Random latents for generated images; the last `mixed_fraction` of them are two-latent mixtures with the
    split j drawn uniformly from 1..(active blocks) (NeurIPS Eq. 6: j ~ U{1, N}), or from 1..(active blocks − 1)
    without `config.recipe.split_all_blocks` (the authors'). Below `config.recipe.mix_start_level` no row is mixed."""
    blocks = phase.blocks
    top = blocks if config.recipe.split_all_blocks else blocks - 1
    mixed = int(round(n * mixed_fraction)) if phase.level >= config.recipe.mix_start_level and top >= 1 else 0
    z = random_latents(n, config.model.latent_dim, device=device)
    assignment = per_block(z, blocks)
    split = int(torch.randint(1, max(top, 1) + 1, ()).item())  # CPU RNG: no device sync
    if mixed:
        z_b = random_latents(mixed, config.model.latent_dim, device=device)
        assignment = torch.cat([assignment[: n - mixed], split_at(z[n - mixed :], z_b, split, blocks)])
    return FakeLatents(assignment, n - mixed, z, split)


def optimize(optimizers, loss: torch.Tensor, world: World, modules: list[nn.Module | None]) -> None:
    """One optimisation step: backpropagate `loss`, average the gradients of `modules` (None skipped) over the
    ranks, step every optimiser."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for module in modules:
        if module is not None:
            average_gradients(module, world)
    for opt in optimizers:
        opt.step()


def encoder_loss(kl_real: torch.Tensor, kl_fake: torch.Tensor, recon: torch.Tensor, phase: PhaseState,
                 config: TrainConfig) -> torch.Tensor:
    """L_φ in the run's form: Eq. 1's hinge or the authors' clamp, with the KL scale and λ_X·match_x once the phase
    has settled (docs/training.md)."""
    lambda_x = config.recipe.lambda_x * (config.recipe.match_x if phase.settled else 1.0)
    if config.recipe.encoder_objective == "clamp":
        return losses.encoder_loss_clamped(kl_real, kl_fake, recon, phase.kl_margin, lambda_x, config.recipe.kl_scale)
    return losses.encoder_loss(kl_real, kl_fake, recon, margin=phase.kl_margin, lambda_x=lambda_x,
                               kl_scale=config.recipe.kl_scale)


def encoder_step(nets: Nets, x: torch.Tensor, phase: PhaseState, config: TrainConfig, optimizers, world: World,
                 pool: ImagePool | None = None) -> dict:
    """L_φ = max(−M_gap, KL(φ(x)) − KL(φ(x̂))) + λ_X·d(x, θ(φ(x))) (NeurIPS Eq. 1; `encoder_loss` for the
    authors' form); only φ (and d_ρ) learn. With a `pool`, once the phase has settled about half the generated
    images are exchanged for older ones from it (the authors' recipe)."""
    level, alpha, noise = phase.level, phase.alpha, config.layer_noise
    nets.decoder.requires_grad_(False)
    with torch.no_grad():
        fake = fake_latents(x.shape[0], config.recipe.mixed_fraction_encoder, phase, config, x.device)
        x_fake = nets.decoder(fake.assignment, level, alpha, noise)
        if pool is not None and phase.settled:
            x_fake = pool.swap(x_fake)
    flip = 0 < config.flip_invariance_layer < phase.blocks  # once the support block J runs (before: train as usual)
    if flip:
        x_1, x_2 = invariance.flipped_pairs(x)
    else:
        x_1 = x_2 = x[:0]
    # One encoder pass for φ(x), φ(x̂) and the flipped images: φ has no batch statistics, so this is the same as
    # separate passes, one power iteration of each spectral norm instead of two or three (benchmarks/RESULTS.md).
    n = x.shape[0]
    z_real, z_fake, z_2 = nets.encoder(torch.cat([x, x_fake, x_2]), level, alpha).split([n, n, x_2.shape[0]])
    kl_real, kl_fake = losses.empirical_kl(z_real), losses.empirical_kl(z_fake)
    if flip:  # NeurIPS Eq. 10-11 in place of the plain term; x_1 is the first half of x, so z_1 = φ(x) there
        recon = invariance.swapped_reconstruction_loss(nets, x_1, x_2, z_real[: x_1.shape[0]], z_2, phase, config)
    else:
        recon = nets.distance(nets.decoder(z_real, level, alpha, noise), x)
    loss = encoder_loss(kl_real, kl_fake, recon, phase, config)
    optimize(optimizers, loss, world, [nets.encoder, nets.robust])
    nets.decoder.requires_grad_(True)
    return {"enc_loss": loss.detach(), "kl_real": kl_real.detach(), "kl_fake_enc": kl_fake.detach(),
            "recon": recon.detach()}


def decoder_step(nets: Nets, batch_size: int, phase: PhaseState, config: TrainConfig, optimizers, world: World,
                 device) -> dict:
    """L_θ = KL(φ(x̂)) + λ_Z·d_cos(z, φ(θ(z))) + L_j (NeurIPS Eq. 6; with the run's KL scale and latent
    distance); only θ learns (during a fade-in not the previous level's toRGB with `freeze_previous_rgb`)."""
    level, alpha, noise = phase.level, phase.alpha, config.layer_noise
    nets.encoder.requires_grad_(False)
    frozen = nets.decoder.to_rgb[level - 1] if config.recipe.freeze_previous_rgb and level > 0 and alpha < 1.0 else None
    if frozen is not None:
        frozen.requires_grad_(False)
    fake = fake_latents(batch_size, config.recipe.mixed_fraction_decoder, phase, config, device)
    regular = fake.regular
    mixing = config.layer_loss and regular < batch_size
    live = mixing and config.recipe.layer_target == "live"
    if live:  # L_j's target is the canvas that made the mixed images, noise and gradients included (authors)
        x_fake, made = nets.decoder(fake.assignment, level, alpha, noise, canvas_at=fake.split)
        x_fake, target = x_fake.float(), made[regular:].float()
    else:
        x_fake = nets.decoder(fake.assignment, level, alpha, noise)
    z_hat = nets.encoder(x_fake, level, alpha)
    kl_fake = losses.empirical_kl(z_hat)
    if not regular:
        latent_rec = latent_cos = kl_fake.new_zeros(())
    else:
        latent_cos = losses.cosine_distance(fake.z[:regular], z_hat[:regular])
        dot = config.recipe.latent_distance == "dot"
        latent_rec = losses.latent_dot_distance(fake.z[:regular], z_hat[:regular]) if dot else latent_cos
    layer = kl_fake.new_zeros(())
    if mixing:
        # NeurIPS Eq. 4: the re-encoded mixture must drive layers 1..j like z_A did. By default the target canvas
        # is detached and both canvases are computed without layer noise (the papers are silent on both; a noisy
        # or moving target would only add variance to L_j); the authors' live target keeps both, with noise.
        # Canvases are not the decoder's forward output, so bf16 autocast leaves them in bf16: the loss is taken
        # in fp32 like every other loss (training/precision.py).
        if not live:
            with torch.no_grad():
                target = nets.decoder.canvas(fake.z[regular:], fake.split, noise=False).float()
        canvas = nets.decoder.canvas(z_hat[regular:], fake.split, noise=noise and live).float()
        layer = losses.layer_disentanglement_loss(canvas, target)
    loss = losses.decoder_loss(kl_fake, latent_rec, layer, lambda_z=config.recipe.lambda_z, kl_scale=config.recipe.kl_scale)
    optimize(optimizers, loss, world, [nets.decoder])
    nets.encoder.requires_grad_(True)
    if frozen is not None:
        frozen.requires_grad_(True)
    # latent_cos is 1 − cos(z, ẑ) under either recipe, so runs compare; latent_rec is the term as weighted
    return {"dec_loss": loss.detach(), "kl_fake": kl_fake.detach(), "latent_cos": latent_cos.detach(),
            "latent_rec": latent_rec.detach(), "layer_loss": layer.detach()}
