"""Per-phase pictures of a run: random samples, reconstructions of held-out images, and a style-mix grid."""

from __future__ import annotations

from pathlib import Path

import torch

from automod_cli.config import level_resolution
from automod_cli.images import make_grid, save_image
from automod_cli.models.latents import prior_latents, split_at


@torch.no_grad()
def write_phase_grids(
    folder: Path, encoder, decoder, real: torch.Tensor, level: int, latent_dim: int, seed: int
) -> dict[str, Path]:
    """Write <res>-samples.png, <res>-reconstructions.png and (for a decoder that can mix) <res>-mix.png for the
    given level into `folder`.

    `real` are held-out images at this level's resolution; samples use latents of the decoder's prior fixed by
    `seed` so grids of successive phases are comparable. The mix grid's first row holds the B images and its first
    column the A images (as reconstructions); each cell takes A's coarse blocks (4²–8², or block 0 at 8²) and B's
    others.
    """
    res = level_resolution(level)
    was_training = encoder.training
    encoder.eval()
    generator = torch.Generator().manual_seed(seed)
    z = prior_latents(32, latent_dim, decoder.config.latent, generator=generator).to(real.device)
    samples = decoder(z, level, 1.0, False)
    z_real = encoder(real, level, 1.0)
    recon = decoder(z_real, level, 1.0, False)
    pairs = torch.stack([real, recon], dim=1).flatten(0, 1)
    folder = Path(folder)
    paths = {
        "samples": save_image(folder / f"{res}-samples.png", make_grid(samples, 8), overwrite=True),
        "reconstructions": save_image(
            folder / f"{res}-reconstructions.png", make_grid(pairs, 8), overwrite=True
        ),
    }
    if decoder.supports_mixing:
        paths["mix"] = save_image(
            folder / f"{res}-mix.png", _mix_grid(decoder, recon, z_real, level), overwrite=True
        )
    encoder.train(was_training)
    return paths


def _mix_grid(decoder, recon: torch.Tensor, z_real: torch.Tensor, level: int) -> torch.Tensor:
    """The style-mix grid of write_phase_grids from the reconstructions and latents of the held-out images."""
    blocks = decoder.active_blocks(level)  # level + 1, and one more with an active support block
    k = min(4, recon.shape[0] // 2)
    z_a, z_b = z_real[:k], z_real[k : 2 * k]
    split = max(1, min(2, blocks - 1))
    cells = [torch.ones_like(recon[:1])] + list(recon[k : 2 * k].split(1))
    for i in range(k):
        mixed = decoder(split_at(z_a[i : i + 1].expand(k, -1), z_b, split, blocks), level, 1.0, False)
        cells += [recon[i : i + 1]] + list(mixed.split(1))
    return make_grid(torch.cat(cells), k + 1)
