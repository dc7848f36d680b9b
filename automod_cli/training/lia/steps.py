"""LIA's training steps (LIA Sec. 4): the GAN of stage 1 and the encoder of stage 2, with their losses.

Both stages use the non-saturating logistic GAN loss with the R1 penalty on real images (γ = 10), the loss of
StyleGAN, which LIA's generator is (LIA Sec. 6; Eq. 8 writes the critic in Wasserstein form, but with R1 and
StyleGAN's training the logistic form is the one in use). Each iteration first updates the generator (stage
1) or the encoder (stage 2), then the discriminator on the fakes (reconstructions) of that same forward pass,
so the expensive synthesis network runs once per iteration.

Stage 2's encoder objective weights its terms as the authors' code does:
    mean((x − x̃)²) + β1 · mean((ε(x) − ε(x̃))²) + β2 · softplus(−c(x̃)),   x̃ = g(f(x))
(LIA Eq. 7 and 12 with β1 = 5e-5, β2 = 0.1; Eq. 12 as printed puts β2 on the reconstruction term instead).
Every step returns its scalars as detached tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from automod_cli.losses import r1_penalty
from automod_cli.models.encoder import Encoder
from automod_cli.models.lia import LiaDiscriminator, LiaGenerator
from automod_cli.features.vgg import FeatureNet
from automod_cli.training.schedule import PhaseState


def generator_gan_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: mean softplus(−c(x̃)) = −log sigmoid(c(x̃)) (Goodfellow et al. 2014)."""
    return F.softplus(-fake_scores).mean()


def discriminator_gan_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, r1: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Logistic discriminator loss plus the R1 penalty: mean softplus(c(x̃)) + mean softplus(−c(x)) + γ/2 · R1
    (LIA Eq. 8's regulariser; Mescheder et al. 2018)."""
    return F.softplus(fake_scores).mean() + F.softplus(-real_scores).mean() + 0.5 * gamma * r1


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def discriminator_step(
    discriminator: LiaDiscriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    phase: PhaseState,
    gamma: float,
    optimizer: torch.optim.Optimizer,
) -> dict[str, torch.Tensor]:
    """One update of c on real images and (detached) fakes."""
    real = real.detach().requires_grad_(True)
    real_scores = discriminator(real, phase.level, phase.alpha)
    fake_scores = discriminator(fake.detach(), phase.level, phase.alpha)
    r1 = r1_penalty(real_scores, real)
    loss = discriminator_gan_loss(real_scores, fake_scores, r1, gamma)
    _update(optimizer, loss)
    return {
        "d_loss": loss.detach(),
        "r1": r1.detach(),
        "real_score": real_scores.detach().mean(),
        "fake_score": fake_scores.detach().mean(),
    }


def _frozen_scores(discriminator: nn.Module, images: torch.Tensor, phase: PhaseState) -> torch.Tensor:
    """c(images) with gradients for the images only."""
    discriminator.requires_grad_(False)
    try:
        return discriminator(images, phase.level, phase.alpha)
    finally:
        discriminator.requires_grad_(True)


def gan_step(
    generator: LiaGenerator,
    discriminator: LiaDiscriminator,
    real: torch.Tensor,
    phase: PhaseState,
    gamma: float,
    noise: bool,
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, torch.Tensor]:
    """Stage 1 (LIA Eq. 9-10): z ~ N(0, I) → x̃ = g(φ⁻¹(z)); update g∘φ⁻¹, then c."""
    z = torch.randn(real.shape[0], generator.latent_dim, device=real.device)
    fake = generator(z, phase.level, phase.alpha, noise)
    g_loss = generator_gan_loss(_frozen_scores(discriminator, fake, phase))
    _update(optimizers["generator"], g_loss)
    scalars = discriminator_step(discriminator, real, fake, phase, gamma, optimizers["discriminator"])
    return {"g_loss": g_loss.detach(), **scalars}


def encoder_step(
    encoder: Encoder,
    generator: LiaGenerator,
    discriminator: LiaDiscriminator,
    features: FeatureNet,
    real: torch.Tensor,
    phase: PhaseState,
    weights: tuple[float, float, float],
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, torch.Tensor]:
    """Stage 2 (LIA Eq. 11-12): x̃ = g*(f(x)) with the frozen (EMA) generator, layer noise off; update f, then
    fine-tune c. `weights` is (γ, β1, β2)."""
    gamma, beta_perceptual, beta_adversarial = weights
    y = encoder(real, phase.level, phase.alpha)
    reconstruction = generator.synthesize(y, phase.level, phase.alpha, noise=False)
    pixel = (reconstruction - real).pow(2).mean()
    with torch.no_grad():
        target_features = features(real).float()
    perceptual = (
        (features(reconstruction).float() - target_features).pow(2).mean()
    )  # fp32 under bf16 autocast
    adversarial = generator_gan_loss(_frozen_scores(discriminator, reconstruction, phase))
    loss = pixel + beta_perceptual * perceptual + beta_adversarial * adversarial
    _update(optimizers["encoder"], loss)
    scalars = discriminator_step(
        discriminator, real, reconstruction, phase, gamma, optimizers["discriminator"]
    )
    return {
        "enc_loss": loss.detach(),
        "recon": pixel.detach(),
        "perceptual": perceptual.detach(),
        "adversarial": adversarial.detach(),
        **scalars,
    }
