"""A small CNN that automod trains itself to predict the built-in dataset's factors, and its features.

FID needs a network that knows the domain; on small datasets the usual substitute for Inception is a classifier
trained on the data itself. The built-in dataset comes with its factors of variation, so this network learns to
read them back from an image (`factor_targets.py`), and the activations of its penultimate layer (64 numbers)
are the feature space of FD_builtin (`fd_builtin.py`).

Training is deterministic: a fixed plan (`TrainingPlan`: resolution, number of training images, steps, batch size,
learning rate, seed) on the first images of the built-in train split, initialised and shuffled from the plan's
seed without touching torch's global generator, always on one CPU thread. The same plan on the same machine
gives bit-identical weights; another CPU may train a different network (its rounding differs), so the features'
name, which every FD_builtin result carries, ends with a digest of the weights (`weights_digest`). At the default plan
it takes about 22 s at 32² and 28 s at 64² on this project's 2-core machine, and is done once:
the weights are cached as `factor-net-<R>px-v<VERSION>-<plan digest>.safetensors` in
`$XDG_CACHE_HOME/automod/factor-net/` (default `~/.cache/automod/factor-net/`), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from automod_cli.checkpoint import state_sha256
from automod_cli.errors import AutomodError
from automod_cli.metrics.builtin.factor_targets import (
    NUM_OUTPUTS,
    encode_targets,
    factor_loss,
    standardisation,
)
from automod_cli.ops.reconstruct import ProgressCallback
from automod_cli.outputs import atomic_write
from data_prep.builtin import SPLITS, Factors, downscale, generate

VERSION = (
    1  # bump when the network, the targets or the training change; cached files of other versions are unused
)
FEATURES = 64  # width of the penultimate layer: the dimension of FD_builtin's feature space
CHANNELS = {32: 8, 16: 16, 8: 32, 4: 64}  # feature channels of the maps at each resolution
RESOLUTIONS = (4, 8, 16, 32, 64)  # the built-in dataset's levels


@dataclass(frozen=True)
class TrainingPlan:
    """Everything that determines the trained weights. Defaults: our choice, sized to train in about half a
    minute on one CPU thread at 64² (about 6 passes over the whole train split)."""

    resolution: int
    images: int = 8192  # the first images of the built-in train split (all of it)
    steps: int = 800
    batch_size: int = 64
    learning_rate: float = 2e-3  # Adam
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise AutomodError(
                f"the factor network works at {', '.join(map(str, RESOLUTIONS))} pixels, got "
                f"{self.resolution}."
            )
        if min(self.images, self.steps, self.batch_size) < 1 or self.images > SPLITS["train"][1]:
            raise AutomodError(
                f"the factor network's plan needs 1 to {SPLITS['train'][1]} training images, at least "
                "one step and a batch of at least one."
            )

    def digest(self) -> str:
        """A short hash of the plan and VERSION: part of the cache file's name and of the feature space's name."""
        text = json.dumps({"version": VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        return f"factor-net-{self.resolution}px-v{VERSION}-{self.digest()}"


class FactorNet(nn.Module):
    """Strided 3×3 convolutions halve the image down to 4×4, each followed at 16² and below by a second 3×3
    convolution (batch norm and leaky ReLU after every convolution); then a linear layer to FEATURES and one to
    the factor outputs. Channels are set by the resolution they work at (CHANNELS), so the costly large maps
    stay narrow."""

    def __init__(self, resolution: int):
        super().__init__()
        layers: list[nn.Module] = []
        width, size = 3, resolution
        while size > 4:
            size //= 2
            out = CHANNELS[size]
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            if size <= 16:
                layers += [nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            width = out
        self.resolution = resolution
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Linear(width * 4 * 4, FEATURES)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(FEATURES, NUM_OUTPUTS))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (before its activation), (N, FEATURES), of float images in [-1, 1]."""
        return self.embed(self.trunk(images).flatten(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def training_images(plan: TrainingPlan) -> tuple[torch.Tensor, Factors]:
    """The plan's training images as float tensors in [-1, 1] at its resolution, and their factors."""
    pictures, factors = generate(plan.images, SPLITS["train"][0])
    pictures = downscale(pictures, plan.resolution)
    return torch.from_numpy(pictures).to(torch.float32) / 127.5 - 1.0, factors


def train_factor_net(plan: TrainingPlan, progress: ProgressCallback | None = None) -> FactorNet:
    """Train a FactorNet from scratch on the CPU, deterministically from `plan`."""
    images, factors = training_images(plan)
    mean, std = standardisation(factors)
    targets = encode_targets(factors, mean, std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(plan.seed)
        net = FactorNet(plan.resolution)
    order = torch.Generator().manual_seed(plan.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=plan.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, plan.steps)
    net.train()
    with _one_thread():
        for step in range(plan.steps):
            rows = torch.randint(0, len(images), (plan.batch_size,), generator=order)
            loss = factor_loss(net(images[rows]), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if progress is not None:
                progress("training the factor network", step + 1, plan.steps)
    return net.eval().requires_grad_(False)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread: the result cannot depend on the machine's core count, and convolutions this
    small run faster on one thread than on cores shared with other work (measured: 0.02 s against 1.1 s a step
    at 32² on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def default_cache_dir() -> Path:
    """~/.cache/automod/factor-net (or under $XDG_CACHE_HOME)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "automod" / "factor-net"


def _load(path: Path, plan: TrainingPlan) -> FactorNet | None:
    """The cached network of `plan`, or None when the file is unreadable or was written for another plan."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            # the metadata key keeps its first name, "recipe", so that cached networks stay valid
            if json.loads((handle.metadata() or {}).get("recipe", "null")) != asdict(plan):
                return None
            state = {key: handle.get_tensor(key) for key in handle.keys()}
        net = FactorNet(plan.resolution)
        net.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError, ValueError):
        return None
    return net.eval().requires_grad_(False)


def cache_file(plan: TrainingPlan, cache_dir: Path | None = None) -> Path:
    """Where the network of `plan` is cached."""
    return (default_cache_dir() if cache_dir is None else Path(cache_dir)) / f"{plan.name}.safetensors"


def load_or_train(
    plan: TrainingPlan, cache_dir: Path | None = None, progress: ProgressCallback | None = None
) -> tuple[FactorNet, bool]:
    """The network of `plan` from the cache, else trained now and cached; (network, was cached)."""
    path = cache_file(plan, cache_dir)
    if path.is_file():
        cached = _load(path, plan)
        if cached is not None:
            return cached, True
    net = train_factor_net(plan, progress)
    tensors = {key: value.contiguous() for key, value in net.state_dict().items()}
    metadata = {"recipe": json.dumps(asdict(plan)), "version": str(VERSION)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return net, False


def weights_digest(net: nn.Module) -> str:
    """8 hex digits of SHA-256 over the network's tensors (name, shape and bytes, in state-dict order). One plan
    trains bit-identical weights on one machine, but CPUs with other kernels (AVX-512 vs AMX, say) round
    differently and the training drifts to another network, with other features: the digest tells them apart."""
    return state_sha256(net)[:8]


class FactorFeatures(nn.Module):
    """FD_builtin's feature extractor: uint8 images (N, 3, R, R) → the factor network's features (N, FEATURES)."""

    def __init__(self, net: FactorNet, plan: TrainingPlan, file: Path | None = None, cached: bool = False):
        super().__init__()
        self.net = net
        self.file, self.cached = file, cached  # the cache file of its weights, and whether they came from it
        # names the features in results and in cached reference statistics: plan and the trained weights
        self.name = f"{plan.name}-w{weights_digest(net)}"
        self.eval()

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError("FactorFeatures takes uint8 images; quantise generated images first")
        if images.shape[-1] != self.net.resolution or images.shape[-2] != self.net.resolution:
            raise AutomodError(
                f"this factor network reads {self.net.resolution}² images, got "
                f"{images.shape[-2]}×{images.shape[-1]}."
            )
        return self.net.features(images.float() / 127.5 - 1.0)


def factor_features(
    plan: TrainingPlan,
    device: str | torch.device = "cpu",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[FactorFeatures, bool]:
    """The extractor of `plan` on `device` (trained on the CPU first if not cached); (extractor, was cached)."""
    net, cached = load_or_train(plan, cache_dir, progress)
    return FactorFeatures(net, plan, cache_file(plan, cache_dir), cached).to(device), cached
