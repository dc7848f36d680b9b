"""FD_builtin: the Fréchet distance of FID computed in the feature space of automod's own factor network.

Like FID (`fid.py`) but with the 64-d penultimate features of the network trained to read the built-in
dataset's factors (`factor_net.py`) in place of Inception's, which needs downloaded weights and knows nothing
of this domain. The reference is the built-in test split (1,024 held-out images, never seen in training) at
the model's resolution; samples (or, with `mix`, samples decoded from two random latents split at a random
block, as FID-mix) are decoded with layer noise on and quantised to uint8 like the data. Reference statistics
are cached beside FID's, keyed by the factor network's plan digest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from automod_cli.defaults import FD_BUILTIN_BATCH, FD_BUILTIN_SAMPLES
from automod_cli.metrics.data import open_eval_data
from automod_cli.features.nets import FeatureExtractor
from automod_cli.metrics.fid import FIDResult, feature_statistics, fid
from automod_cli.metrics.frechet import Statistics, statistics_distance
from automod_cli.models import Automodulator
from automod_cli.ops.reconstruct import ProgressCallback

DEFAULT_SAMPLES = FD_BUILTIN_SAMPLES  # as many as the reference images (the built-in test split)
DEFAULT_BATCH = FD_BUILTIN_BATCH


def image_statistics(
    images: np.ndarray | torch.Tensor, extractor: FeatureExtractor, batch_size: int = DEFAULT_BATCH
) -> Statistics:
    """Mean and covariance of the features of uint8 images (N, 3, R, R)."""
    images = torch.as_tensor(images)
    parameter = next(extractor.parameters(), None) if isinstance(extractor, torch.nn.Module) else None
    device = parameter.device if parameter is not None else torch.device("cpu")
    batches = (batch.to(device) for batch in images.split(batch_size))
    return feature_statistics(batches, extractor, "features", len(images))


def image_set_distance(
    images_a: np.ndarray | torch.Tensor,
    images_b: np.ndarray | torch.Tensor,
    extractor: FeatureExtractor,
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """The Fréchet distance between two sets of uint8 images in `extractor`'s feature space."""
    return statistics_distance(
        image_statistics(images_a, extractor, batch_size), image_statistics(images_b, extractor, batch_size)
    )


def fd_builtin(
    model: Automodulator,
    extractor: FeatureExtractor,
    n: int = DEFAULT_SAMPLES,
    batch_size: int = DEFAULT_BATCH,
    seed: int = 0,
    mix: bool = False,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> FIDResult:
    """FD_builtin of `n` samples (or mixtures) of `model` against the built-in test split at its resolution."""
    reference = open_eval_data(None, model.resolution, "test")
    return fid(model, reference, extractor, n, batch_size, seed, mix, cache_dir, progress)
