"""Weakly supervised flip invariance (NeurIPS Sec. 3.3 and Sec. 4, Eq. 9-11).

An image x_1 and its horizontal flip x_2 share everything but the pose (for aligned faces, the azimuth). With
J = `TrainConfig.flip_invariance_layer`, decoder blocks < J are to carry the pose alone and blocks ≥ J (from the
support block J on) everything the pair shares. So each image of a pair must be reconstructed from its own latent
on blocks < J and its partner's latent on the rest, with z_i = φ(x_i):

    L_inv  = d(x_2, θ_{J+1:N}(θ_{1:J}(ξ0, z_2), z_1))      NeurIPS Eq. 10 (the paper's J = 2: θ_{3:N}, θ_{1:2})
    L'_inv = d(x_1, θ_{J+1:N}(θ_{1:J}(ξ0, z_1), z_2))      NeurIPS Eq. 11

With z_1 = z_2 these are the plain reconstruction terms d(x_i, θ(φ(x_i))) (the paper's remark), and they take
their place in the encoder loss L_φ for the pairs, with the run's own distance d (`nets.distance`). `nets` is the
step's steps.Nets (encoder, decoder, distance).
"""

from __future__ import annotations

import torch

from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.models.latents import split_at
from automod_cli.training.schedule import PhaseState


def flipped_pairs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_1, x_2): the first half of the batch and its horizontal flips, so 50% of the images the loss sees are
    flipped (NeurIPS Sec. 4). An odd batch leaves its last image out."""
    half = x.shape[0] // 2
    if half == 0:
        raise AutomodError("flip invariance needs at least 2 images per batch: raise the batch size.")
    x_1 = x[:half]
    return x_1, x_1.flip(-1)


def swapped_reconstruction_loss(
    nets,
    x_1: torch.Tensor,
    x_2: torch.Tensor,
    z_1: torch.Tensor,
    z_2: torch.Tensor,
    phase: PhaseState,
    config: TrainConfig,
) -> torch.Tensor:
    """½(L_inv + L'_inv) from the pairs (x_1, x_2) and their codes z_i = φ(x_i): the mean distance over all
    2·⌊N/2⌋ swapped reconstructions, per image like the plain reconstruction term it replaces (the authors' code
    adds the two halves' means, twice this). Gradients reach φ and d_ρ; call it only once the support block J runs."""
    layer = config.flip_invariance_layer
    if not 0 < layer < phase.blocks:
        raise ValueError(
            f"flip invariance at layer {layer} needs its support block active; {phase.blocks} blocks run."
        )
    # rows 0..half-1: L_inv (pose z_2, the rest z_1, target x_2); rows half..: L'_inv (pose z_1, rest z_2, target x_1)
    assignment = split_at(torch.cat([z_2, z_1]), torch.cat([z_1, z_2]), layer, phase.blocks)
    swapped = nets.decoder(assignment, phase.level, phase.alpha, config.layer_noise)
    return nets.distance(swapped, torch.cat([x_2, x_1]))
