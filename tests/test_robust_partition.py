"""log Z(α) of the robust distribution: the packaged table against closed forms and fresh quadrature."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch
from scipy import integrate, special

from automod_cli import robust_partition
from automod_cli.robust_partition import log_partition


def reference_log_partition(alpha: float) -> float:
    """log ∫ exp(−ρ(x, α, 1)) dx with ρ written out plainly (not the package's expm1 form), α in (0, 2)."""

    def density(x: float) -> float:
        rho = abs(alpha - 2) / alpha * ((x * x / abs(alpha - 2) + 1) ** (alpha / 2) - 1)
        return np.exp(-rho)

    value, _ = integrate.quad(density, -np.inf, np.inf, epsabs=1e-12, epsrel=1e-12, limit=400)
    return float(np.log(value))


def at(alpha: float | list[float]) -> np.ndarray:
    return log_partition(torch.tensor(alpha, dtype=torch.float64)).numpy()


def test_closed_forms_at_zero_one_two() -> None:
    # α = 2: Gaussian, Z = √(2π). α = 0: ρ = log(x²/2 + 1), Z = √2·π. α = 1: ρ = √(x²+1) − 1, Z = 2e·K₁(1).
    np.testing.assert_allclose(at(2.0), np.log(np.sqrt(2 * np.pi)), atol=1e-12)
    np.testing.assert_allclose(at(0.0), np.log(np.sqrt(2) * np.pi), atol=1e-12)
    np.testing.assert_allclose(at(1.0), np.log(2 * np.e * special.k1(1.0)), atol=1e-9)


def test_spline_matches_fresh_quadrature_within_1e6() -> None:
    # The interpolation error over the loss's α range, ends included, is below 1e-6 (measured: 3.3e-7).
    rng = np.random.default_rng(0)
    alphas = np.concatenate([rng.uniform(0.001, 1.999, 12), [0.001, 0.0037, 1.9963, 1.999]])
    expected = [reference_log_partition(a) for a in alphas]
    np.testing.assert_allclose(at(alphas.tolist()), expected, rtol=0, atol=1e-6)


def test_float32_evaluation_is_close_to_float64() -> None:
    alphas = torch.linspace(0.001, 1.999, 101, dtype=torch.float64)
    single = log_partition(alphas.float()).double()
    assert torch.allclose(single, log_partition(alphas), atol=2e-6)


def test_derivative_matches_finite_difference_of_quadrature() -> None:
    alphas = torch.tensor([0.01, 0.3, 1.0, 1.7, 1.99], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(log_partition(alphas).sum(), alphas)
    h = 1e-4
    numeric = [
        (reference_log_partition(a + h) - reference_log_partition(a - h)) / (2 * h) for a in alphas.tolist()
    ]
    np.testing.assert_allclose(grad.numpy(), numeric, rtol=2e-3, atol=1e-4)


def test_regenerating_knots_reproduces_the_packaged_table() -> None:
    table = robust_partition.load_table()
    alphas = robust_partition.knot_alphas()
    np.testing.assert_allclose(alphas, table["alpha"], rtol=0, atol=1e-14)
    for i in (0, 1, 40, 64, 100, len(alphas) - 2, len(alphas) - 1):
        assert robust_partition.log_partition_by_quadrature(alphas[i]) == pytest.approx(
            table["log_partition"][i], abs=1e-12
        )


def test_table_is_small_and_ships_inside_the_package() -> None:
    text = resources.files("automod_cli").joinpath(robust_partition.TABLE_NAME).read_text()
    table = json.loads(text)
    assert len(table["alpha"]) == len(table["log_partition"]) == robust_partition.KNOTS < 300
    assert np.all(np.diff(table["alpha"]) > 0)


def test_write_table_writes_what_load_reads(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(robust_partition, "KNOTS", 5)
    path = robust_partition.write_table(tmp_path / "table.json")
    table = json.loads(path.read_text())
    assert table["alpha"][0] == 0.0 and table["alpha"][-1] == 2.0 and len(table["alpha"]) == 5
    assert table["log_partition"][0] == pytest.approx(np.log(np.sqrt(2) * np.pi), abs=1e-12)
