"""VGG16 up to conv4_3 (ImageNet weights): the feature extractor ε of LIA's perceptual loss (LIA Eq. 7, Sec. 6).

The weights are torchvision's `vgg16-397923af.pth`, found like every pretrained file of the project
(`features/weights.py`): an explicit path, $AUTOMOD_VGG16_WEIGHTS, the torch hub cache, or torchvision's download
when the machine is online. Anything that maps images in [-1, 1] to a feature tensor can stand in for it
(`FeatureNet`), which is how the tests train stage 2 without the real weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from automod_cli.errors import AutomodError
from automod_cli.features import weights as weight_files

FeatureNet = Callable[[torch.Tensor], torch.Tensor]

# the same file LPIPS-VGG uses; only the purpose named in the "missing" message differs
VGG16_CONV43 = weight_files.WeightFile(
    weight_files.VGG16.name,
    weight_files.VGG16.env_var,
    "LIA's perceptual loss (VGG16 conv4_3)",
    weight_files.VGG16.url,
)
CONV43_END = 23  # torchvision's VGG16 `features[:23]` ends with conv4_3 and its ReLU
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's input normalisation for its ImageNet weights
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIDE = 32  # smaller images are upsampled first, so conv4_3 (after three 2× poolings) still sees 4×4


class VGGConv43(nn.Module):
    """Frozen VGG16 conv4_3 (after ReLU) features of images in [-1, 1], differentiable in the images."""

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers  # noqa: PLC0415 -- torchvision's second of import only when the network is built

        self.features = make_layers(cfgs["D"])[:CONV43_END]  # "D" is VGG16's layout in torchvision
        wanted = self.features.state_dict()
        missing = [f"features.{name}" for name in wanted if f"features.{name}" not in state_dict]
        if missing:
            raise AutomodError(f"the VGG16 weights lack '{missing[0]}'; is the file {VGG16_CONV43.name}?")
        try:
            self.features.load_state_dict({name: state_dict[f"features.{name}"] for name in wanted})
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise AutomodError(f"the VGG16 weights do not fit torchvision's VGG16 ({first}).") from None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if min(images.shape[-2:]) < MIN_SIDE:
            scale = -(-MIN_SIDE // min(images.shape[-2:]))
            images = F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
        x = ((images + 1) / 2 - self.mean) / self.std
        return self.features(x)


def vgg_conv43(weights: Path | None = None, device: str | torch.device = "cpu") -> VGGConv43:
    """LIA's ε with its weights from `weights`, the environment or the cache (downloaded only when online);
    an AutomodError naming the file and where to put it otherwise."""
    path = weight_files.resolve_weights(VGG16_CONV43, weights)
    return VGGConv43(weight_files.load_state_dict(path, VGG16_CONV43)).to(device)
