"""A tiny automodulator for the image-operation tests (imported by them; pytest puts tests/ on sys.path)."""

import torch

from automod_cli.config import ModelConfig
from automod_cli.models import Automodulator

R = 32  # resolution of the tiny model: 4 blocks (4², 8², 16², 32²)


def tiny_model(decoder: str = "adain") -> Automodulator:
    """A 32² model whose AdaIN maps have random weights, so every block's latent changes the image."""
    torch.manual_seed(0)
    model = Automodulator(ModelConfig(max_resolution=R, latent_dim=16, channels=(16, 16, 8, 8), decoder=decoder))
    with torch.no_grad():
        for module in model.decoder.modules():
            if hasattr(module, "affine"):
                module.affine.weight.normal_()
    return model.eval()
