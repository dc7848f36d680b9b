"""Fréchet distance between two Gaussians, and the streaming mean/covariance of features it is computed from.

FID (Heusel et al. 2017) fits a Gaussian to the Inception features of each image set and reports
d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from automod_cli.outputs import atomic_write
from automod_cli.errors import AutomodError

# Imaginary parts this small in (Σ₁Σ₂)^½ are round-off (the exact root of a product of two PSD matrices has a
# real trace); the threshold is the one the standard FID implementations use.
IMAGINARY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Statistics:
    """Mean and covariance of a set of feature vectors, and how many vectors they summarise."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int

    def save(self, path: Path) -> None:
        """Write as .npz, atomically (a cache file is either complete or absent)."""

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, mean=self.mean, covariance=self.covariance, count=np.int64(self.count))

        atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: Path) -> "Statistics":
        with np.load(path) as data:
            return cls(data["mean"], data["covariance"], int(data["count"]))


class RunningMoments:
    """Mean and covariance accumulated batch by batch in float64 with bounded memory (D + D² numbers).

    Batches are merged with Chan et al.'s pairwise update of the centred second moment, which stays accurate
    where the textbook Σx xᵀ − n μμᵀ loses digits to cancellation.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None  # Σ (x − μ)(x − μ)ᵀ over everything seen

    def add(self, features: torch.Tensor | np.ndarray) -> None:
        """Fold in a batch of feature vectors, shape (N, D)."""
        if isinstance(features, torch.Tensor):
            features = features.detach().to("cpu", torch.float64).numpy()
        batch = np.asarray(features, dtype=np.float64)
        if batch.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {batch.shape}")
        n = batch.shape[0]
        if n == 0:
            return
        batch_mean = batch.mean(axis=0)
        centred = batch - batch_mean
        batch_scatter = centred.T @ centred
        if self.mean is None:
            self.count, self.mean, self.scatter = n, batch_mean, batch_scatter
            return
        total = self.count + n
        delta = batch_mean - self.mean
        self.scatter += batch_scatter + np.outer(delta, delta) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total

    def statistics(self) -> Statistics:
        """The sample mean and the unbiased covariance (divided by N − 1, as numpy.cov)."""
        if self.count < 2:
            raise AutomodError(f"a covariance needs at least 2 images, got {self.count}: raise --n.")
        return Statistics(self.mean.copy(), self.scatter / (self.count - 1), self.count)


def frechet_distance(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray, eps: float = 1e-6
) -> float:
    """d² between N(mean1, cov1) and N(mean2, cov2).

    The same computation as pytorch-fid's calculate_frechet_distance (tests/test_frechet.py holds them equal), kept
    here because that function prints to stdout when it regularises (which would corrupt `--json` output) and
    fails with bare assertion and value errors instead of one line that says what to do.

    When the product of the covariances is singular (fewer samples than dimensions), its square root is taken
    after adding `eps`·I to both covariances, as the standard implementations do.
    """
    mean1, mean2 = np.atleast_1d(mean1).astype(np.float64), np.atleast_1d(mean2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != (mean1.size, mean1.size):
        raise AutomodError(
            f"feature statistics do not match: {mean1.shape}/{cov1.shape} vs {mean2.shape}/{cov2.shape}."
        )
    root = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(root).all():
        offset = np.eye(mean1.size) * eps
        root = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=IMAGINARY_TOLERANCE):
            largest = np.max(np.abs(root.imag))
            raise AutomodError(
                f"the covariance square root has an imaginary part of {largest:.3g}: use more images (--n)."
            )
        root = root.real
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root))


def statistics_distance(a: Statistics, b: Statistics) -> float:
    """Fréchet distance between two feature sets' statistics (FID when the features are Inception's)."""
    return frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
