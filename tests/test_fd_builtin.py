"""FD_builtin: near zero between two halves of the same held-out images, growing with a known brightness shift,
and a model's samples scored against the cached statistics of the test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from automod_cli.metrics.builtin.factor_net import TrainingPlan, factor_features
from automod_cli.metrics.builtin.fd_builtin import fd_builtin, image_set_distance, image_statistics
from automod_cli.metrics.frechet import frechet_distance
from data_prep.builtin import SPLITS, downscale, generate


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    features, _ = factor_features(
        TrainingPlan(32, images=256, steps=20, batch_size=32), cache_dir=tmp_path_factory.mktemp("fn")
    )
    return features


@pytest.fixture(scope="module")
def held_out() -> np.ndarray:
    pictures, _ = generate(SPLITS["test"][1], seed=SPLITS["test"][0])
    return downscale(pictures, 32)


def _brighter(images: np.ndarray, levels: int) -> np.ndarray:
    return np.clip(images.astype(int) + levels, 0, 255).astype(np.uint8)


def test_statistics_are_those_of_the_features(extractor, held_out):
    stats = image_statistics(held_out[:100], extractor, batch_size=7)
    features = extractor(torch.from_numpy(held_out[:100])).double().numpy()
    np.testing.assert_allclose(stats.mean, features.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-5, atol=1e-6)


def test_two_halves_of_the_same_data_are_near_zero_and_a_brightness_shift_grows_the_distance(
    extractor, held_out
):
    first, second = held_out[0::2], held_out[1::2]
    assert image_set_distance(first, first, extractor) == pytest.approx(0.0, abs=1e-6)
    halves = image_set_distance(first, second, extractor)
    spread = np.trace(image_statistics(first, extractor).covariance)
    assert 0 <= halves < 0.05 * spread  # only the sampling error of 512 against 512 images
    shifted = [image_set_distance(first, _brighter(second, levels), extractor) for levels in (10, 20, 40)]
    assert halves < shifted[0] < shifted[1] < shifted[2]
    assert shifted[2] > 5 * halves


def test_a_model_is_scored_against_the_cached_test_split(extractor, tmp_path):
    model = tiny_model()
    first = fd_builtin(model, extractor, n=40, batch_size=16, seed=0, cache_dir=tmp_path)
    assert np.isfinite(first.fid) and first.fid > 0 and first.samples == 40 and not first.reference_cached
    assert first.reference_count == SPLITS["test"][1] and "test" in first.reference
    again = fd_builtin(model, extractor, n=40, batch_size=16, seed=0, cache_dir=tmp_path)
    assert again.reference_cached and again.fid == pytest.approx(first.fid, rel=1e-9)
    mixed = fd_builtin(model, extractor, n=40, batch_size=16, seed=0, mix=True, cache_dir=tmp_path)
    assert mixed.mixed and np.isfinite(mixed.fid) and mixed.fid != pytest.approx(first.fid)
    cached_stats = next(tmp_path.iterdir())
    assert extractor.name in cached_stats.name and "32px" in cached_stats.name


def test_the_distance_is_the_closed_form_of_the_fitted_gaussians(extractor, held_out):
    a, b = image_statistics(held_out[:200], extractor), image_statistics(held_out[200:400], extractor)
    expected = frechet_distance(a.mean, a.covariance, b.mean, b.covariance)
    assert image_set_distance(held_out[:200], held_out[200:400], extractor) == pytest.approx(
        expected, rel=1e-9
    )
