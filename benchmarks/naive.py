"""The reference point of issue 8's CPU target: the automodulator iteration written the straightforward way.

Every loss term gets its own forward passes, as a first re-implementation from the paper's equations would do:

    encoder step   KL(φ(x))            φ(x)
                   KL(φ(x̂))            θ(z) without gradients, then φ(x̂)
                   d(x, θ(φ(x)))       φ(x) again, then θ
    decoder step   KL(φ(θ(z)))         θ(z) for the whole batch, then φ
                   d_cos(z, φ(θ(z)))   θ and φ again for the regular rows
                   L_j                 θ and φ again for the mixed rows, then both canvases

against the loop's steps (training/steps.py), which encode real and generated images in one pass and take every
decoder-step term from a single θ(z) and φ(θ(z)). The losses, optimisers and gradients are the same: with layer
noise off and the spectral-norm power iteration frozen (eval mode) both give the same values
(tests/test_bench_naive.py); in training each pass draws its own layer noise, as separate passes would.

`two_pass_encoder_step` is the loop's encoder step as it was before it shared the encoder pass (φ(x) and φ(x̂)
encoded separately), and `plain_adam` and `plain_ema_update` undo the two other loop optimisations measured by
`bench.py train --variants`: Adam's per-tensor loop instead of `foreach`, and an EMA updated parameter by parameter.
"""

from __future__ import annotations

import torch
from torch import nn

from automod_cli import losses
from automod_cli.training.steps import Nets, fake_latents, optimize
from automod_cli.training.steps import encoder_loss as objective


def encoder_step(nets: Nets, x, phase, config, optimizers, world, reuse_real_code: bool = False) -> dict:
    """L_φ with φ(x) and φ(x̂) in separate passes, and φ(x) encoded once more for the reconstruction term unless
    `reuse_real_code` (which makes it the loop's encoder step before it shared the encoder pass)."""
    level, alpha, noise = phase.level, phase.alpha, config.layer_noise
    if 0 < config.flip_invariance_layer < phase.blocks or config.recipe.name != "paper":
        raise ValueError(
            "the naive reference follows the paper's recipe without flip invariance: benchmark such a run."
        )
    nets.decoder.requires_grad_(False)
    with torch.no_grad():
        fake = fake_latents(x.shape[0], config.recipe.mixed_fraction_encoder, phase, config, x.device)
        x_fake = nets.decoder(fake.assignment, level, alpha, noise)
    z_real = nets.encoder(x, level, alpha)
    kl_real, kl_fake = losses.empirical_kl(z_real), losses.empirical_kl(nets.encoder(x_fake, level, alpha))
    z_recon = z_real if reuse_real_code else nets.encoder(x, level, alpha)
    recon = nets.distance(nets.decoder(z_recon, level, alpha, noise), x)
    loss = objective(kl_real, kl_fake, recon, phase, config)
    optimize(optimizers, loss, world, [nets.encoder, nets.robust])
    nets.decoder.requires_grad_(True)
    return {
        "enc_loss": loss.detach(),
        "kl_real": kl_real.detach(),
        "kl_fake_enc": kl_fake.detach(),
        "recon": recon.detach(),
    }


def two_pass_encoder_step(nets: Nets, x, phase, config, optimizers, world) -> dict:
    return encoder_step(nets, x, phase, config, optimizers, world, reuse_real_code=True)


def decoder_step(nets: Nets, batch_size: int, phase, config, optimizers, world, device) -> dict:
    level, alpha, noise = phase.level, phase.alpha, config.layer_noise
    nets.encoder.requires_grad_(False)
    fake = fake_latents(batch_size, config.recipe.mixed_fraction_decoder, phase, config, device)
    mixed = fake.mixed  # the first rows are the mixtures

    def reencode(rows: slice) -> torch.Tensor:
        return nets.encoder(nets.decoder(fake.assignment[rows], level, alpha, noise), level, alpha)

    kl_fake = losses.empirical_kl(reencode(slice(None)))
    regular = batch_size - mixed
    latent_rec = (
        losses.cosine_distance(fake.z[mixed:], reencode(slice(mixed, None)))
        if regular
        else kl_fake.new_zeros(())
    )
    layer = kl_fake.new_zeros(())
    if config.layer_loss and mixed:
        with torch.no_grad():
            target = nets.decoder.canvas(fake.z[:mixed], fake.split, noise=False).float()
        canvas = nets.decoder.canvas(reencode(slice(0, mixed)), fake.split, noise=False).float()
        layer = losses.layer_disentanglement_loss(canvas, target)
    recipe = config.recipe
    loss = losses.decoder_loss(kl_fake, latent_rec, layer, lambda_z=recipe.lambda_z, kl_scale=recipe.kl_scale)
    optimize(optimizers, loss, world, [nets.decoder])
    nets.encoder.requires_grad_(True)
    return {
        "dec_loss": loss.detach(),
        "kl_fake": kl_fake.detach(),
        "latent_cos": latent_rec.detach(),
        "latent_rec": latent_rec.detach(),
        "layer_loss": layer.detach(),
    }


def plain_adam(module: nn.Module, **kwargs) -> torch.optim.Adam:
    """Adam stepping one tensor at a time (the loop uses `foreach=True`)."""
    return torch.optim.Adam(module.parameters(), foreach=False, **kwargs)


@torch.no_grad()
def plain_ema_update(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema ← β·ema + (1 − β)·model one parameter at a time (the loop's `update_ema` is one foreach call)."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.copy_(beta * e + (1 - beta) * p)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)
