"""The pretrained networks behind the metrics, and the two interfaces every metric takes instead of them.

- A *feature extractor* maps uint8 images (N, 3, H, W) to feature vectors (N, D). FID uses pytorch-fid's
  `InceptionV3` (the port of the TensorFlow FID network, weights `pt_inception-2015-12-05-6726825d.pth`) at
  its pool3 layer (2048-d), with pytorch-fid's own preprocessing: the uint8 pixels scaled to [0, 1], resized
  bilinearly to 299×299 (no antialiasing) and mapped to [-1, 1]. Generated images are quantised to uint8
  before this, exactly as if they had been saved as PNG files, so samples and data pass the same path.
- A *distance network* maps two float image batches in [-1, 1] to one distance per pair (N,) and is
  differentiable in its inputs. LPIPS is the `lpips` package (v0.1 linear layers shipped in its wheel) on an
  AlexNet (default) or VGG16 trunk whose ImageNet weights are torchvision's `alexnet-owt-7be5be79.pth` /
  `vgg16-397923af.pth`.

Both real networks load their weights through `weights.py`, never from the network behind the user's back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable
from unittest import mock

import torch
from torch import nn

from automod_cli.errors import AutomodError
from automod_cli.features import weights as weight_files

FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]
DistanceNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

LPIPS_NETS: dict[str, weight_files.WeightFile] = {"alex": weight_files.ALEXNET, "vgg": weight_files.VGG16}
# Smallest image side each LPIPS trunk accepts (AlexNet's pooling runs out of pixels below 32).
LPIPS_MIN_SIDE = {"alex": 32, "vgg": 16}


class InceptionPool3(nn.Module):
    """FID's Inception-v3 (pytorch-fid) returning the 2048-d pool3 features of uint8 images."""

    name = "inception-v3-pool3"  # names the features in cached reference statistics

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        super().__init__()
        from pytorch_fid import inception  # noqa: PLC0415 -- torchvision's second of import only when the network is built

        # pytorch-fid fetches its weights by URL inside the constructor; hand it the tensors we loaded instead.
        with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
            try:
                self.net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0]
                raise AutomodError(
                    f"the Inception weights do not fit pytorch-fid's FID network ({first})."
                ) from None
        self.eval()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError("InceptionPool3 takes uint8 images; quantise generated images first")
        return self.net(images.float() / 255.0)[0].flatten(1)


def inception_features(weights: Path | None = None, device: str | torch.device = "cpu") -> InceptionPool3:
    """FID's feature extractor with its weights from `--weights`, the environment or the cache."""
    path = weight_files.resolve_weights(weight_files.INCEPTION, weights)
    return InceptionPool3(weight_files.load_state_dict(path, weight_files.INCEPTION)).to(device)


class LPIPSDistance(nn.Module):
    """LPIPS v0.1 between image pairs in [-1, 1], one value per pair; frozen, differentiable in its inputs."""

    def __init__(self, net: str, backbone: dict[str, torch.Tensor]):
        super().__init__()
        import lpips  # noqa: PLC0415 -- torchvision's second of import only when the network is built

        if net not in LPIPS_NETS:
            raise AutomodError(f"unknown LPIPS network '{net}': choose one of {', '.join(LPIPS_NETS)}.")
        self.net_name = net
        self.min_side = LPIPS_MIN_SIDE[net]  # smallest image side the trunk takes
        with warnings.catch_warnings():  # lpips builds its trunk with torchvision's deprecated `pretrained=`
            warnings.simplefilter("ignore")
            self.lpips = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        self._load_trunk(backbone)
        self.requires_grad_(False)
        self.eval()

    def _load_trunk(self, backbone: dict[str, torch.Tensor]) -> None:
        """Copy torchvision's `features.<i>.*` tensors into lpips' slices, whose children keep the index i."""
        trunk = {}
        for name in self.lpips.net.state_dict():
            _, index, kind = name.split(".")
            source = f"features.{index}.{kind}"
            if source not in backbone:
                weight = LPIPS_NETS[self.net_name].name
                raise AutomodError(
                    f"the {self.net_name} backbone weights lack '{source}'; is the file {weight}?"
                )
            trunk[name] = backbone[source]
        try:
            self.lpips.net.load_state_dict(trunk)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise AutomodError(f"the {self.net_name} backbone weights do not fit LPIPS ({first}).") from None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        side = min(x.shape[-2:])
        if side < LPIPS_MIN_SIDE[self.net_name]:
            raise AutomodError(
                f"LPIPS-{self.net_name} needs images of at least {self.min_side} pixels, got {side}: compare a wider "
                "window of the images (--crop), another LPIPS trunk (--net) or a higher-resolution model."
            )
        return self.lpips(x, y).flatten()


def pixel_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean squared pixel difference of each image pair, (N,): a DistanceNet that needs no downloaded weights
    (`automod project --distance mse`). Images come in [-1, 1] like every DistanceNet's; the error is measured on
    [0, 1] intensities, the scale of every other MSE automod reports (`reconstruct`, `eval recon-truth`, `eval
    mix-truth`), i.e. a quarter of the squared difference of the [-1, 1] values. Not quantised to 8 bits, so it
    stays differentiable."""
    return ((x - y) / 2).pow(2).flatten(1).mean(1)


def lpips_distance(
    net: str = "alex", weights: Path | None = None, device: str | torch.device = "cpu"
) -> LPIPSDistance:
    """LPIPS on the AlexNet ('alex', the lpips default) or VGG16 ('vgg') trunk, weights found offline first."""
    if net not in LPIPS_NETS:
        raise AutomodError(f"unknown LPIPS network '{net}': choose one of {', '.join(LPIPS_NETS)}.")
    weight = LPIPS_NETS[net]
    path = weight_files.resolve_weights(weight, weights)
    return LPIPSDistance(net, weight_files.load_state_dict(path, weight)).to(device)
