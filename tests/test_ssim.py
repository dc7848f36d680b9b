"""SSIM against scikit-image's implementation with the standard settings, and its closed-form special cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from automod_cli.errors import AutomodError
from automod_cli.features.ssim import gaussian_window, ssim
from data_prep.builtin import generate


def _skimage(x: np.ndarray, y: np.ndarray) -> float:
    return structural_similarity(
        x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=0
    )


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 16, 24), (1, 11, 11), (3, 64, 64)])
def test_matches_skimage_on_noisy_and_shifted_images(shape):
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape))
    y = np.clip(x + rng.normal(0, 0.15, x.shape) + np.linspace(-0.2, 0.2, 4)[:, None, None, None], 0, 1)
    ours = ssim(torch.from_numpy(x), torch.from_numpy(y))
    reference = [_skimage(x[i], y[i]) for i in range(len(x))]
    np.testing.assert_allclose(ours.numpy(), reference, rtol=1e-10, atol=1e-12)


def test_matches_skimage_on_smooth_uint8_pictures():
    pictures, _ = generate(3, seed=5, size=32)
    x = pictures.astype(np.float64) / 255
    y = np.roll(x, 1, axis=-1)  # a one-pixel shift: high but imperfect similarity
    ours = ssim(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(ours.numpy(), [_skimage(x[i], y[i]) for i in range(3)], rtol=1e-10)
    assert (ours < 1).all() and (ours > 0.3).all()


def test_identical_images_score_one_and_the_window_is_wang_et_al():
    x = torch.rand(2, 3, 20, 20, dtype=torch.float64)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    window = gaussian_window()
    assert len(window) == 11 and window.sum().item() == pytest.approx(1.0)
    assert (window[5] / window[4]).item() == pytest.approx(np.exp(1 / (2 * 1.5**2)))  # σ = 1.5


def test_constant_images_follow_the_luminance_term():
    # flat images: variances and covariance are 0, so SSIM = (2 μx μy + C1) / (μx² + μy² + C1)
    x, y = (
        torch.full((1, 1, 16, 16), 0.3, dtype=torch.float64),
        torch.full((1, 1, 16, 16), 0.6, dtype=torch.float64),
    )
    c1 = (0.01 * 1.0) ** 2
    assert ssim(x, y).item() == pytest.approx((2 * 0.3 * 0.6 + c1) / (0.3**2 + 0.6**2 + c1), rel=1e-9)


def test_images_smaller_than_the_window_and_mismatched_batches_are_refused():
    with pytest.raises(AutomodError, match="11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(AutomodError):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(2, 3, 16, 16))
