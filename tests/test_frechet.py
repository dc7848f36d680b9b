"""Fréchet distance and streaming moments against numpy/scipy computations and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy import linalg

from automod_cli.errors import AutomodError
from automod_cli.metrics.frechet import RunningMoments, Statistics, frechet_distance, statistics_distance


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def _reference_distance(m1, c1, m2, c2) -> float:
    """d² with Tr((Σ₁Σ₂)^½) from the eigenvalues of the symmetric Σ₁^½ Σ₂ Σ₁^½ (same spectrum as Σ₁Σ₂)."""
    root1 = linalg.sqrtm(c1).real
    eigenvalues = np.linalg.eigvalsh(root1 @ c2 @ root1)
    return float(
        np.sum((m1 - m2) ** 2)
        + np.trace(c1)
        + np.trace(c2)
        - 2 * np.sum(np.sqrt(np.clip(eigenvalues, 0, None)))
    )


def test_matches_eigenvalue_computation_on_random_gaussians():
    rng = np.random.default_rng(0)
    for dim in (1, 3, 16):
        m1, m2 = rng.normal(size=dim), rng.normal(size=dim)
        c1, c2 = _random_covariance(rng, dim), _random_covariance(rng, dim)
        assert frechet_distance(m1, c1, m2, c2) == pytest.approx(
            _reference_distance(m1, c1, m2, c2), rel=1e-8, abs=1e-10
        )


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(1)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)  # variances
    expected = np.sum((m1 - m2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_identical_gaussians_are_at_zero_and_distance_is_symmetric():
    rng = np.random.default_rng(2)
    m, c = rng.normal(size=5), _random_covariance(rng, 5)
    m2, c2 = rng.normal(size=5), _random_covariance(rng, 5)
    assert frechet_distance(m, c, m, c) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(m, c, m2, c2) == pytest.approx(frechet_distance(m2, c2, m, c), rel=1e-9)


def test_singular_covariances_fall_back_to_the_regularised_root():
    # rank-1 covariances from fewer samples than dimensions: the distance is still finite and non-negative
    rng = np.random.default_rng(3)
    u, w = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
    value = frechet_distance(np.zeros(4), u @ u.T, np.ones(4), w @ w.T)
    assert np.isfinite(value) and value > 0


def test_mismatched_shapes_are_refused():
    with pytest.raises(AutomodError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_running_moments_match_numpy_over_uneven_batches():
    rng = np.random.default_rng(4)
    data = rng.normal(loc=1000.0, scale=0.5, size=(257, 6))  # a large offset exposes naive Σxxᵀ − nμμᵀ
    moments = RunningMoments()
    for chunk in np.array_split(data, [1, 50, 51, 200]):
        moments.add(chunk)
    stats = moments.statistics()
    assert stats.count == 257
    np.testing.assert_allclose(stats.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(data, rowvar=False), rtol=1e-9, atol=1e-12)


def test_two_halves_of_one_large_sample_are_close():
    rng = np.random.default_rng(5)
    cov = _random_covariance(rng, 4)
    data = rng.multivariate_normal(np.arange(4.0), cov, size=40_000)
    halves = []
    for half in (data[::2], data[1::2]):
        moments = RunningMoments()
        moments.add(half)
        halves.append(moments.statistics())
    far = Statistics(halves[1].mean + 1.0, halves[1].covariance, halves[1].count)
    assert statistics_distance(*halves) < 0.01
    assert statistics_distance(halves[0], far) == pytest.approx(4.0, rel=0.02)  # ‖Δμ‖² = 4 dominates


def test_statistics_round_trip_through_a_file(tmp_path):
    stats = Statistics(np.arange(3.0), np.eye(3) * 2, 17)
    stats.save(tmp_path / "s.npz")
    loaded = Statistics.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.covariance, stats.covariance)
    assert loaded.count == 17


def test_a_single_image_has_no_covariance():
    moments = RunningMoments()
    moments.add(np.ones((1, 3)))
    with pytest.raises(AutomodError):
        moments.statistics()


# pytorch-fid, the reference here, still passes scipy's deprecated `disp` to sqrtm; ours does not
@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")
def test_the_distance_equals_pytorch_fids_calculation():
    """pytorch-fid's calculate_frechet_distance as the independent reference (frechet_distance says why automod
    keeps its own)."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(400, 6)), rng.normal(0.3, 1.4, size=(300, 6))
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_distance(*args) == pytest.approx(calculate_frechet_distance(*args), rel=1e-9)
