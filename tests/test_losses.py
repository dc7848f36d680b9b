"""The losses against closed forms, scipy and plain second implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate

from automod_cli import losses
from automod_cli.errors import AutomodError
from automod_cli.losses import AdaptiveRobustLoss


# --- KL, cosine, the encoder and decoder objectives -------------------------------------------------------------


def gaussian_kl_numpy(z: np.ndarray) -> float:
    """KL[N(μ_d, σ_d²) ‖ N(0, 1)] = log(1/σ) + (σ² + μ²)/2 − 1/2, averaged over dimensions."""
    mu, var = z.mean(0), z.var(0)
    return float(np.mean(-0.5 * np.log(var) + (var + mu**2) / 2 - 0.5))


def test_empirical_kl_equals_gaussian_kl_of_batch_statistics() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal([0.3, -1.0, 2.0], [0.5, 1.5, 0.2], size=(64, 3))
    assert losses.empirical_kl(torch.from_numpy(z), eps=0).item() == pytest.approx(
        gaussian_kl_numpy(z), rel=1e-12
    )
    # one dimension once more, by integrating p·log(p/q) with scipy
    mu, sd = z[:, 0].mean(), z[:, 0].std()

    def integrand(x: float) -> float:
        log_p = -0.5 * ((x - mu) / sd) ** 2 - np.log(sd * np.sqrt(2 * np.pi))
        log_q = -0.5 * x**2 - np.log(np.sqrt(2 * np.pi))
        return np.exp(log_p) * (log_p - log_q)

    kl_dim0, _ = integrate.quad(integrand, mu - 20 * sd, mu + 20 * sd)
    assert losses.empirical_kl(torch.from_numpy(z[:, :1]), eps=0).item() == pytest.approx(kl_dim0, rel=1e-8)


def test_empirical_kl_is_near_zero_for_standard_normal_and_grows_with_shift() -> None:
    z = torch.randn(20_000, 8, dtype=torch.float64)
    base = losses.empirical_kl(z).item()
    assert abs(base) < 1e-3
    shifted = [losses.empirical_kl(z + shift).item() for shift in (0.5, 1.0, 2.0)]
    assert shifted[0] > base + 0.1 and shifted[0] < shifted[1] < shifted[2]
    # shifting by t moves every batch mean μ_d to μ_d + t, adding t·mean(μ_d) + t²/2 to the KL
    assert shifted[2] == pytest.approx(base + 2.0 * z.mean().item() + 2.0**2 / 2, abs=1e-9)


def test_cosine_distance_matches_numpy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    expected = np.mean(1 - np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    assert losses.cosine_distance(torch.from_numpy(a), torch.from_numpy(b)).item() == pytest.approx(
        expected, rel=1e-12
    )
    assert losses.cosine_distance(torch.from_numpy(a), torch.from_numpy(3 * a)).item() == pytest.approx(
        0, abs=1e-12
    )
    assert losses.cosine_distance(torch.from_numpy(a), torch.from_numpy(-a)).item() == pytest.approx(
        2, abs=1e-12
    )


def test_encoder_loss_hinges_at_minus_margin() -> None:
    recon = torch.tensor(0.7)
    t = torch.tensor
    # KL(real) − KL(fake) = −2 is below −M_gap = −0.5: the KL term is clamped, only λ_X·d remains besides it
    assert losses.encoder_loss(t(1.0), t(3.0), recon, margin=0.5, lambda_x=0.2).item() == pytest.approx(
        -0.5 + 0.2 * 0.7
    )
    assert losses.encoder_loss(t(1.0), t(1.2), recon, margin=0.5, lambda_x=0.2).item() == pytest.approx(
        -0.2 + 0.2 * 0.7
    )
    assert losses.encoder_loss(t(2.0), t(1.0), recon, margin=0.5, lambda_x=1.0).item() == pytest.approx(
        1.0 + 0.7
    )
    # beyond the margin KL(fake) gets no push, but KL(real) is still pulled down (the value is Eq. 1's)
    kl_real, kl_fake = t(1.0, requires_grad=True), t(3.0, requires_grad=True)
    losses.encoder_loss(kl_real, kl_fake, recon, margin=0.5).backward()
    assert kl_real.grad.item() == 1 and kl_fake.grad.item() == 0
    # inside the margin both terms are pushed, as by Eq. 1
    kl_real, kl_fake = t(1.0, requires_grad=True), t(1.2, requires_grad=True)
    losses.encoder_loss(kl_real, kl_fake, recon, margin=0.5).backward()
    assert kl_real.grad.item() == 1 and kl_fake.grad.item() == -1


def test_encoder_loss_value_is_eq1_everywhere() -> None:
    rng = np.random.default_rng(0)
    for kl_real, kl_fake, margin in rng.uniform(0, 5, size=(200, 3)):
        expected = max(-margin, kl_real - kl_fake) + 0.2 * 0.3  # NeurIPS Eq. 1 written out
        got = losses.encoder_loss(
            torch.tensor(kl_real), torch.tensor(kl_fake), torch.tensor(0.3), margin=margin, lambda_x=0.2
        )
        assert got.item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_decoder_loss_is_the_weighted_sum_of_eq6() -> None:
    t = torch.tensor
    assert losses.decoder_loss(t(2.0), t(0.1), t(0.3), lambda_z=4.0).item() == pytest.approx(2.0 + 0.4 + 0.3)
    assert losses.decoder_loss(t(2.0), t(0.1), t(0.0)).item() == pytest.approx(2.0 + 0.1 * 1000 / 512)


def test_layer_and_image_distances() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 4, 8, 8)), rng.normal(size=(2, 4, 8, 8))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert losses.layer_disentanglement_loss(ta, tb).item() == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
    assert losses.l2_loss(ta, tb).item() == pytest.approx(np.mean((a - b) ** 2), rel=1e-12)
    assert losses.l1_loss(ta, tb).item() == pytest.approx(np.mean(np.abs(a - b)), rel=1e-12)


def test_the_reconstruction_distance_is_built_from_its_name() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(2, 3, 8, 8))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert losses.reconstruction_distance("l1", 8)(ta, tb).item() == pytest.approx(
        np.mean(np.abs(a - b)), rel=1e-12
    )
    assert losses.reconstruction_distance("l2", 8)(ta, tb).item() == pytest.approx(
        np.mean((a - b) ** 2), rel=1e-12
    )
    assert not list(losses.reconstruction_distance("l2", 8).parameters())  # nothing to optimise or checkpoint
    robust = losses.reconstruction_distance("robust", 8)
    assert isinstance(robust, AdaptiveRobustLoss) and robust.resolution == 8
    with pytest.raises(AutomodError, match="l1"):
        losses.reconstruction_distance("huber", 8)


# --- WAE-MMD and R1 -----------------------------------------------------------------------------------------------


def mmd_imq_loops(x: np.ndarray, y: np.ndarray, scales, variance: float) -> float:
    n, m, d = len(x), len(y), x.shape[1]
    total = 0.0
    for s in scales:
        c = 2 * d * variance * s
        k = lambda u, v: c / (c + np.sum((u - v) ** 2))  # noqa: E731
        xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
        total += xx + yy - 2 * xy
    return total


def test_mmd_equals_double_loop_reference() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 3)), rng.normal(0.5, 1.0, size=(6, 3))
    scales = (0.1, 1.0, 10.0)
    got = losses.mmd_imq(torch.from_numpy(x), torch.from_numpy(y), scales=scales, prior_variance=0.7).item()
    assert got == pytest.approx(mmd_imq_loops(x, y, scales, 0.7), rel=1e-10)
    got = losses.mmd_imq(torch.from_numpy(x), torch.from_numpy(y)).item()
    assert got == pytest.approx(mmd_imq_loops(x, y, (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0), 1.0), rel=1e-10)


def test_mmd_separates_shifted_samples() -> None:
    same = [losses.mmd_imq(torch.randn(200, 8), torch.randn(200, 8)).item() for _ in range(3)]
    shifted = losses.mmd_imq(torch.randn(200, 8) + 1.0, torch.randn(200, 8)).item()
    assert max(abs(v) for v in same) < 0.05
    assert shifted > 10 * max(abs(v) for v in same) and shifted > 0.5


def test_mmd_rejects_single_samples() -> None:
    with pytest.raises(ValueError):
        losses.mmd_imq(torch.randn(1, 4), torch.randn(5, 4))


def test_r1_penalty_against_analytic_gradients() -> None:
    w = torch.randn(3, 4, 4, dtype=torch.float64)
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    linear = (x * w).flatten(1).sum(1)  # ∇_x = w for every sample
    assert losses.r1_penalty(linear, x).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-12)
    quadratic = x.pow(2).flatten(1).sum(1)  # ∇_x = 2x
    expected = (2 * x.detach()).pow(2).flatten(1).sum(1).mean().item()
    penalty = losses.r1_penalty(quadratic, x)
    assert penalty.item() == pytest.approx(expected, rel=1e-12)
    (second,) = torch.autograd.grad(penalty, x)  # the graph is kept: d/dx mean ‖2x‖² = 8x / N
    torch.testing.assert_close(second, 8 * x.detach() / 5)


# --- the adaptive robust loss -------------------------------------------------------------------------------------


def nll_one_pixel(loss: AdaptiveRobustLoss, x: float) -> float:
    return loss(
        torch.tensor([[[[x]]]], dtype=torch.float64), torch.zeros(1, 1, 1, 1, dtype=torch.float64)
    ).item()


@pytest.mark.parametrize("alpha,scale", [(0.0011, 1.0), (0.3, 0.5), (1.0, 2.0), (1.5, 0.1), (1.9989, 3.0)])
def test_robust_density_integrates_to_one(alpha: float, scale: float) -> None:
    loss = AdaptiveRobustLoss(1, 1, alpha_init=alpha, scale_init=scale).double()
    mass, _ = integrate.quad(
        lambda x: np.exp(-nll_one_pixel(loss, x)), -np.inf, np.inf, epsabs=1e-10, limit=400
    )
    assert mass == pytest.approx(1.0, abs=1e-5)


def test_robust_nll_reduces_to_gaussian_at_alpha_two() -> None:
    r = torch.linspace(-4, 4, 17, dtype=torch.float64)
    for c in (0.3, 1.0, 2.5):
        scale = torch.tensor(c, dtype=torch.float64)
        gaussian = r.pow(2) / (2 * c**2) + np.log(c) + 0.5 * np.log(2 * np.pi)
        nll = losses.robust_negative_log_likelihood(r, torch.tensor(2.0, dtype=torch.float64), scale)
        torch.testing.assert_close(nll, gaussian, rtol=1e-6, atol=1e-6)
    # the module's α stops at 1.999, where it is still within a few thousandths of the Gaussian
    loss = AdaptiveRobustLoss(1, 1, alpha_init=1.999 - 1e-9, scale_init=0.5).double()
    assert nll_one_pixel(loss, 0.7) == pytest.approx(
        0.7**2 / 0.5 + np.log(0.5) + 0.5 * np.log(2 * np.pi), abs=3e-3
    )


def test_robust_rho_special_cases() -> None:
    x = torch.linspace(-5, 5, 11, dtype=torch.float64)
    torch.testing.assert_close(
        losses.robust_rho(x, torch.tensor(1.0, dtype=torch.float64)), torch.sqrt(x**2 + 1) - 1
    )
    torch.testing.assert_close(
        losses.robust_rho(x, torch.tensor(0.0, dtype=torch.float64)), torch.log(x**2 / 2 + 1)
    )


def test_robust_alpha_and_scale_start_where_asked_and_stay_in_range() -> None:
    loss = AdaptiveRobustLoss(3, 4, alpha_init=0.4, scale_init=0.2)
    assert loss.alpha().shape == loss.scale().shape == (3, 4, 4) and loss.resolution == 4
    torch.testing.assert_close(loss.alpha(), torch.full((3, 4, 4), 0.4))
    torch.testing.assert_close(loss.scale(), torch.full((3, 4, 4), 0.2))
    with torch.no_grad():
        loss.latent_alpha.fill_(50.0)
        loss.latent_scale.fill_(-50.0)
    assert loss.alpha().max().item() <= 1.999 + 1e-6 and loss.scale().min().item() >= 1e-5 * (
        1 - 1e-6
    )  # float32
    for bad in ({"alpha_init": 2.0}, {"alpha_init": 0.0}, {"scale_init": 0.0}):
        with pytest.raises(AutomodError):
            AdaptiveRobustLoss(3, 4, **bad)


def test_robust_gradient_in_alpha_is_finite_and_nonzero() -> None:
    loss = AdaptiveRobustLoss(3, 4)
    x, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    loss(x, target).backward()
    for grad in (loss.latent_alpha.grad, loss.latent_scale.grad):
        assert torch.isfinite(grad).all() and (grad.abs() > 0).all()


def test_robust_loss_is_mean_of_per_pixel_nll() -> None:
    loss = AdaptiveRobustLoss(2, 2)
    with torch.no_grad():
        loss.latent_alpha.copy_(torch.randn(2, 2, 2))
        loss.latent_scale.copy_(torch.randn(2, 2, 2))
    x, target = torch.randn(3, 2, 2, 2, dtype=torch.float64), torch.zeros(3, 2, 2, 2, dtype=torch.float64)
    loss = loss.double()
    expected = np.mean(
        [
            losses.robust_negative_log_likelihood(
                x[n, c, i, j], loss.alpha()[c, i, j], loss.scale()[c, i, j]
            ).item()
            for n in range(3)
            for c in range(2)
            for i in range(2)
            for j in range(2)
        ]
    )
    assert loss(x, target).item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError):
        loss(torch.zeros(1, 2, 4, 4, dtype=torch.float64), torch.zeros(1, 2, 4, 4, dtype=torch.float64))


def test_grow_replicates_into_blocks_and_keeps_upsampled_loss() -> None:
    loss = AdaptiveRobustLoss(3, 4)
    with torch.no_grad():
        loss.latent_alpha.copy_(torch.randn(3, 4, 4))
        loss.latent_scale.copy_(torch.randn(3, 4, 4))
    latent_alpha, latent_scale = loss.latent_alpha.detach().clone(), loss.latent_scale.detach().clone()
    alpha, scale = loss.alpha().detach(), loss.scale().detach()
    residual = torch.randn(2, 3, 4, 4)
    before = loss(residual, torch.zeros_like(residual)).item()
    loss.grow()
    assert loss.resolution == 8 and loss.alpha().shape == (3, 8, 8)
    for dy in (0, 1):
        for dx in (0, 1):
            assert torch.equal(loss.latent_alpha[:, dy::2, dx::2], latent_alpha)
            assert torch.equal(loss.latent_scale[:, dy::2, dx::2], latent_scale)
            torch.testing.assert_close(
                loss.alpha()[:, dy::2, dx::2], alpha
            )  # sigmoid may differ in the last bit
            torch.testing.assert_close(loss.scale()[:, dy::2, dx::2], scale)
    upsampled = F.interpolate(residual, scale_factor=2, mode="nearest")
    assert loss(upsampled, torch.zeros_like(upsampled)).item() == pytest.approx(before, rel=1e-6)
    assert all(p.shape == (3, 8, 8) for p in loss.parameters())


def test_mmd_under_bf16_autocast_matches_fp32() -> None:
    # the squared distances must not run in bf16 under autocast (--precision bf16): compare with autocast off
    gen = torch.Generator().manual_seed(5)
    z, prior = 3 + torch.randn(32, 16, generator=gen), torch.randn(32, 16, generator=gen)
    reference = losses.mmd_imq(z, prior).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = losses.mmd_imq(z, prior)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference, rel=1e-5)


def test_the_robust_scale_is_barrons_map_and_older_checkpoints_keep_their_scale() -> None:
    """c = (1 − 1e-5)·softplus(b + ln(e − 1)) + 1e-5, written out in float64 (Barron's reference code; the
    authors' checkpoints store b in this form, so b = 0 is the scale 1)."""
    loss = AdaptiveRobustLoss(3, 2).double()
    assert torch.equal(loss.latent_scale, torch.zeros(3, 2, 2, dtype=torch.float64))
    b = np.random.default_rng(0).normal(-1.0, 0.8, (3, 2, 2))
    with torch.no_grad():
        loss.latent_scale.copy_(torch.from_numpy(b))
    expected = (1 - 1e-5) * np.log1p(np.exp(b + np.log(np.e - 1))) + 1e-5
    np.testing.assert_allclose(loss.scale().detach().numpy(), expected, rtol=1e-12)
    # format-2 checkpoints held c = softplus(b_old) + 1e-5: the same c after reading them into Barron's form
    old = torch.from_numpy(b)
    new = losses.legacy_scale_parameter(old)
    with torch.no_grad():
        loss.latent_scale.copy_(new)
    np.testing.assert_allclose(loss.scale().detach().numpy(), np.log1p(np.exp(b)) + 1e-5, rtol=1e-10)


def test_the_authors_flat_growth_order() -> None:
    """Their d_ρ maps are flat C·H·W vectors, and a new resolution's entries 4k..4k+3 take the old entry k (their
    prepareAdaptiveLossForNewPhase, written out as a loop)."""
    loss = AdaptiveRobustLoss(3, 2)
    with torch.no_grad():
        loss.latent_alpha.copy_(torch.randn(3, 2, 2))
        loss.latent_scale.copy_(torch.randn(3, 2, 2))
    old = {name: getattr(loss, name).detach().flatten().clone() for name in ("latent_alpha", "latent_scale")}
    loss.grow("flat")
    assert loss.resolution == 4
    for name, flat in old.items():
        expected = torch.empty(4 * flat.numel())
        for offset in range(4):
            expected[offset::4] = flat
        assert torch.equal(getattr(loss, name).detach().flatten(), expected)
    with pytest.raises(AutomodError, match="growth order"):
        loss.grow("sideways")
