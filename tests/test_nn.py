"""Layers of automod_cli.nn against independent references (formulas written out, scipy)."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from automod_cli.nn.equalized import EqualConv2d, EqualLinear
from automod_cli.nn.modulation import AdaIN, adaptive_instance_norm
from automod_cli.nn.noise import LayerNoise
from automod_cli.nn.norm import PixelNorm
from automod_cli.nn.resample import BinomialBlur
from automod_cli.nn.spectral import SNConv2d


def test_equal_conv_scales_weight_by_he_constant_and_stored_gain_at_run_time():
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
    # the authors' weight_gain multiplies in, is saved, and is not trained
    conv.weight_gain.fill_(0.8)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he * 0.8, conv.bias, padding=1))
    assert "weight_gain" in conv.state_dict() and all(p is not conv.weight_gain for p in conv.parameters())


def test_equal_linear_gain_and_bias_init():
    lin = EqualLinear(10, 4, gain=1.0, bias_init=0.5)
    x = torch.randn(3, 10)
    torch.testing.assert_close(lin(x), x @ (lin.weight / math.sqrt(10)).T + 0.5)


def test_adaptive_instance_norm_sets_exact_mean_and_unbiased_std():
    x = torch.randn(3, 4, 8, 8) * 3 + 2
    scale = torch.rand(3, 4) + 0.5
    mean = torch.randn(3, 4)
    out = adaptive_instance_norm(x, scale, mean).double().numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), mean.numpy(), atol=1e-5)
    # the unbiased std (ddof=1), as the authors' AdaNorm: the biased one would be off by √(63/64) here
    np.testing.assert_allclose(out.reshape(3, 4, -1).std(axis=2, ddof=1), scale.numpy(), rtol=1e-5)


def test_adain_module_uses_plain_affine_map_of_z():
    adain = AdaIN(channels=6, latent_dim=5)
    x, z = torch.randn(2, 6, 4, 4), torch.randn(2, 5)
    params = z @ adain.affine.weight.T + adain.affine.bias
    out = adain(x, z).detach().double().numpy()
    np.testing.assert_allclose(out.mean(axis=(2, 3)), params[:, 6:].detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(
        out.reshape(2, 6, -1).std(axis=2, ddof=1), params[:, :6].abs().detach().numpy(), rtol=1e-4
    )
    assert isinstance(
        adain.affine, torch.nn.Linear
    )  # the authors' parameterisation: their weights load unchanged
    # Gaussian latents are scaled by the input scale first
    scaled = AdaIN(channels=6, latent_dim=5, input_scale=0.5)
    scaled.load_state_dict(adain.state_dict())
    torch.testing.assert_close(scaled(x, z), adain(x, z * 0.5))


def test_adain_starts_as_instance_norm_with_unbiased_std():
    adain = AdaIN(channels=3, latent_dim=4)
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        adain.affine.weight.zero_()
    expected = F.instance_norm(x, eps=0.0) * math.sqrt(24 / 25)  # biased → unbiased std over 25 pixels
    torch.testing.assert_close(adain(x, torch.randn(2, 4)), expected, atol=1e-5, rtol=1e-5)


def test_layer_noise_off_is_identity_and_strength_per_channel_sets_std():
    noise = LayerNoise(3)
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(noise(x, True), x)  # strengths start at 0
    with torch.no_grad():
        noise.strength.copy_(torch.tensor([0.7, 0.0, 2.0]))
    assert torch.equal(noise(x, False), x)
    residual = noise(x, True) - x
    assert abs(residual[:, 0].std().item() - 0.7) < 0.05 and abs(residual[:, 2].std().item() - 2.0) < 0.1
    assert torch.equal(residual[:, 1], torch.zeros_like(residual[:, 1]))
    assert noise.strength.shape == (3,)  # one learned scale per channel (the authors' code)
    given = torch.randn_like(x)  # noise served by a step's draws (training/draws.py) is added as drawn
    torch.testing.assert_close(noise(x, lambda like: given) - x, given * noise.strength.view(1, -1, 1, 1))


def test_binomial_blur_matches_scipy_with_zero_border():
    x = torch.randn(1, 2, 7, 9)
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    expected = np.stack(
        [
            ndimage.convolve(x[0, c].numpy().astype(np.float64), kernel, mode="constant", cval=0.0)
            for c in range(2)
        ]
    )
    np.testing.assert_allclose(BinomialBlur()(x)[0].numpy(), expected, atol=1e-5)


def test_pixel_norm_gives_unit_rms_over_channels():
    out = PixelNorm()(torch.randn(2, 8, 3, 3) * 5)
    torch.testing.assert_close(out.pow(2).mean(dim=1), torch.ones(2, 3, 3), atol=1e-4, rtol=1e-4)


def test_blur_keeps_the_inside_of_constant_images_and_darkens_the_border():
    x = torch.full((1, 3, 6, 6), 0.25)
    out = BinomialBlur()(x)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1])
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor(0.25 * 9 / 16))  # a corner keeps 3×3 of 4×4 taps


def test_spectral_norm_takes_one_power_step_and_keeps_u_in_eval_mode():
    conv = SNConv2d(4, 6, 3, 1)
    u0 = conv.u.clone()
    matrix = conv.weight.detach().flatten(1).double()
    v = matrix.T @ u0.double()
    v = v / v.norm()
    u = matrix @ v
    u = u / u.norm()
    sigma = (u.T @ matrix @ v).item()
    x = torch.randn(2, 4, 5, 5)
    conv.eval()
    torch.testing.assert_close(
        conv(x), F.conv2d(x, conv.weight / sigma, conv.bias, padding=1), atol=1e-5, rtol=1e-5
    )
    assert torch.equal(conv.u, u0)  # evaluation leaves u as stored
    conv.train()
    conv(x)
    torch.testing.assert_close(conv.u.double(), u, atol=1e-6, rtol=1e-6)  # training moves it one step
    # many training calls converge to the largest singular value
    for _ in range(50):
        conv(x)
    top = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    torch.testing.assert_close(
        torch.linalg.matrix_norm(conv.normalised_weight().detach().flatten(1), ord=2),
        torch.tensor(1.0),
        atol=1e-4,
        rtol=0,
    )
    assert top > 1.5  # the raw weight is not already normalised
