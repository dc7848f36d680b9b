"""The encoder–decoder baselines of NeurIPS Table 2a, trained by the same progressive loop as the automodulator.

- `pioneer` (Balanced PIONEER) plays the automodulator's own AGE game, so it trains with steps.encoder_step and
  steps.decoder_step; what makes it PIONEER are its settings (its entry in kinds.py: classic decoder, L1 image
  distance, no mixed samples, no L_j).
- `vae` and `wae` train encoder and decoder together on one loss: `vae_step` and `wae_step` below, one per
  iteration, called like steps.encoder_step (with the optimisers of every network that learns) and returning
  detached scalars. Their latents are Gaussian, with the prior N(0, I).
"""

from __future__ import annotations

from typing import Callable

import torch

from automod_cli import losses
from automod_cli.config import TrainConfig
from automod_cli.training.distributed import World
from automod_cli.training.schedule import PhaseState
from automod_cli.training.steps import Nets, optimize

# N(0, I) has unit variance per dimension: the IMQ kernel's width C = 2·D·σ² uses σ² = 1 (losses.mmd_imq).
PRIOR_VARIANCE = 1.0


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL[N(μ, diag σ²) ‖ N(0, I)] = ½·Σ_d (μ_d² + σ_d² − log σ_d² − 1) for each row of (N, D)
    tensors, summed over the latent dimensions and averaged over the batch (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(dim=1).mean()


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = μ + σ·ε with ε ~ N(0, I): a sample of q(z|x) through which gradients reach μ and σ."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


def vae_step(
    nets: Nets, x: torch.Tensor, phase: PhaseState, config: TrainConfig, optimizers, world: World
) -> dict:
    """L = d(x, θ(z)) + β·KL[q(z|x) ‖ N(0, I)] with z = μ + σ·ε, β = config.kl_weight (0.005, Supp. App. A);
    encoder, decoder (and d_ρ, if used) learn together."""
    level, alpha = phase.level, phase.alpha
    mean, log_var = nets.encoder.posterior(x, level, alpha)
    reconstruction = nets.decoder(reparameterize(mean, log_var), level, alpha, config.layer_noise)
    recon = nets.distance(reconstruction, x)
    kl = gaussian_kl(mean, log_var)
    loss = recon + config.kl_weight * kl
    optimize(optimizers, loss, world, [nets.encoder, nets.decoder, nets.robust])
    return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}


def wae_step(
    nets: Nets, x: torch.Tensor, phase: PhaseState, config: TrainConfig, optimizers, world: World
) -> dict:
    """WAE-MMD (Tolstikhin et al. 2018): L = d(x, θ(φ(x))) + λ·MMD(φ(x), z ~ N(0, I)) with the inverse
    multiquadratics kernel, λ = config.mmd_weight (4 with the AdaIN decoder, 2 with the classic; Supp. App. A);
    encoder, decoder (and d_ρ, if used) learn together."""
    level, alpha = phase.level, phase.alpha
    z = nets.encoder(x, level, alpha)
    reconstruction = nets.decoder(z, level, alpha, config.layer_noise)
    recon = nets.distance(reconstruction, x)
    mmd = losses.mmd_imq(z, torch.randn_like(z), prior_variance=PRIOR_VARIANCE)
    loss = recon + config.mmd_weight * mmd
    optimize(optimizers, loss, world, [nets.encoder, nets.decoder, nets.robust])
    return {"loss": loss.detach(), "recon": recon.detach(), "mmd": mmd.detach()}


JointStep = Callable[[Nets, torch.Tensor, PhaseState, TrainConfig, list, World], dict]

# The step of each kind whose registry entry trains one joint loss (kinds.JOINT); the kinds of the AGE game
# (kinds.GAME) play the encoder and decoder steps of steps.py.
JOINT_STEPS: dict[str, JointStep] = {"vae": vae_step, "wae": wae_step}
