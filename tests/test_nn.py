"""Layers of automod_cli.nn against independent references (formulas written out, scipy)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from automod_cli.nn.equalized import EqualConv2d, EqualLinear
from automod_cli.nn.modulation import AdaIN, adaptive_instance_norm
from automod_cli.nn.noise import LayerNoise
from automod_cli.nn.norm import PixelNorm
from automod_cli.nn.resample import BinomialBlur


def test_equal_conv_scales_weight_by_he_constant_at_run_time():
    conv = EqualConv2d(5, 7, 3)
    x = torch.randn(2, 5, 6, 6)
    he = math.sqrt(2.0) / math.sqrt(5 * 3 * 3)
    expected = F.conv2d(x, conv.weight * he, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected)
    # the stored weight is the unscaled N(0, 1) parameter: changing it changes the output by exactly he·Δw
    with torch.no_grad():
        conv.weight.add_(1.0)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    assert abs(conv.weight.std().item() - 1.0) < 0.15


def test_equal_linear_gain_and_bias_init():
    lin = EqualLinear(10, 4, gain=1.0, bias_init=0.5)
    x = torch.randn(3, 10)
    torch.testing.assert_close(lin(x), x @ (lin.weight / math.sqrt(10)).T + 0.5)


def test_adaptive_instance_norm_sets_exact_mean_and_std():
    x = torch.randn(3, 4, 8, 8) * 3 + 2
    scale = torch.rand(3, 4) + 0.5
    mean = torch.randn(3, 4)
    out = adaptive_instance_norm(x, scale, mean, eps=0.0).double().numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(2, 3)), scale.numpy(), rtol=1e-4)


def test_adain_module_uses_affine_map_of_z():
    adain = AdaIN(channels=6, latent_dim=5)
    with torch.no_grad():
        adain.affine.weight.normal_()
    x, z = torch.randn(2, 6, 4, 4), torch.randn(2, 5)
    # z is scaled by √D (unit-sphere latents to unit RMS), the weight by the He constant 1/√D
    params = (z * math.sqrt(5)) @ (adain.affine.weight / math.sqrt(5)).T + adain.affine.bias
    out = adain(x, z).detach().double().numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), params[:, 6:].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(2, 3)), params[:, :6].abs().detach().numpy(), rtol=1e-3)


def test_adain_starts_as_instance_norm():
    adain = AdaIN(channels=3, latent_dim=4)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        adain.affine.weight.zero_()
    torch.testing.assert_close(adain(x, torch.randn(2, 4)), F.instance_norm(x, eps=1e-8), atol=1e-5, rtol=1e-5)


def test_layer_noise_off_is_identity_and_strength_sets_std():
    noise = LayerNoise()
    x = torch.randn(4, 3, 16, 16)
    assert torch.equal(noise(x, enabled=True), x)  # strength starts at 0
    with torch.no_grad():
        noise.strength.fill_(0.7)
    assert torch.equal(noise(x, enabled=False), x)
    residual = noise(x, enabled=True) - x
    assert abs(residual.std().item() - 0.7) < 0.05
    assert noise.strength.numel() == 1  # one learned scale per layer (Supp. Fig. 6b)


def test_binomial_blur_matches_scipy_with_mirror_border():
    x = torch.randn(1, 2, 7, 9)
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    expected = np.stack([ndimage.convolve(x[0, c].numpy().astype(np.float64), kernel, mode="mirror") for c in range(2)])
    np.testing.assert_allclose(BinomialBlur()(x)[0].numpy(), expected, atol=1e-5)


def test_pixel_norm_gives_unit_rms_over_channels():
    out = PixelNorm()(torch.randn(2, 8, 3, 3) * 5)
    torch.testing.assert_close(out.pow(2).mean(dim=1), torch.ones(2, 3, 3), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("size", [1, 4])
def test_blur_keeps_constant_images(size):
    x = torch.full((1, 3, size, size), 0.25)
    torch.testing.assert_close(BinomialBlur()(x), x)
