"""log Z(α) of Barron's robust distribution, Z(α) = ∫ exp(−ρ(x, α, 1)) dx, for 0 ≤ α ≤ 2.

Z has no closed form for general α, so it is integrated numerically once (scipy's quad) at the knots of a table
that ships with the package (`robust_log_partition.json`), and interpolated at run time by a cubic spline that
torch can differentiate. Near α = 2 log Z behaves like (2−α)·log(2−α), which a spline in α fits badly, so the
spline runs in the coordinate s(α) = α + λ·log((α + δ) / (2 − α + δ)) whose knots crowd towards both ends; the
knots are equally spaced in s. With 129 knots the spline is within 1e-6 of the integral everywhere in the
robust loss's α range (0.001, 1.999) (tests/test_robust_partition.py). Regenerate the table with
`python -c "from automod_cli.robust_partition import write_table; write_table()"`.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch

TABLE_NAME = "robust_log_partition.json"
# the spline coordinate s(α) = α + λ·log((α + δ) / (2 − α + δ)) and the number of knots, equally spaced in s
COORDINATE_LAMBDA = 0.1
COORDINATE_DELTA = 1e-3
KNOTS = 129


def rho_numpy(x: np.ndarray | float, alpha: float) -> np.ndarray | float:
    """ρ(x, α, 1) in float64, with its limits at α = 0 (log(x²/2 + 1)) and α = 2 (x²/2)."""
    if alpha == 0:
        return np.log1p(0.5 * np.square(x))
    if alpha == 2:
        return 0.5 * np.square(x)
    b = abs(alpha - 2)
    return b / alpha * np.expm1(0.5 * alpha * np.log1p(np.square(x) / b))


def log_partition_by_quadrature(alpha: float) -> float:
    """log Z(α) by adaptive quadrature of the even density over [0, 1] and [1, ∞)."""
    from scipy import integrate  # noqa: PLC0415 -- scipy's 0.6 s of import only where a partition is computed

    def density(x: float) -> float:
        return float(np.exp(-rho_numpy(x, alpha)))

    near, _ = integrate.quad(density, 0.0, 1.0, epsabs=1e-13, epsrel=1e-13, limit=200)
    tail, _ = integrate.quad(density, 1.0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    return float(np.log(2.0 * (near + tail)))


def spline_coordinate(alpha: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """s(α), the coordinate in which the knots are equally spaced; works on numpy arrays and torch tensors."""
    log = torch.log if isinstance(alpha, torch.Tensor) else np.log
    return alpha + COORDINATE_LAMBDA * log((alpha + COORDINATE_DELTA) / (2 - alpha + COORDINATE_DELTA))


def knot_alphas() -> np.ndarray:
    """The α of each knot: s(α) on an even grid from s(0) to s(2), inverted by root finding."""
    from scipy import optimize  # noqa: PLC0415 -- as integrate above

    targets = np.linspace(spline_coordinate(0.0), spline_coordinate(2.0), KNOTS)
    inner = [
        optimize.brentq(lambda a, s=s: spline_coordinate(a) - s, 0.0, 2.0, xtol=1e-15) for s in targets[1:-1]
    ]
    return np.array([0.0, *inner, 2.0])


def compute_table() -> dict:
    """The table's content: the knots' α and log Z(α) at each of them."""
    alphas = knot_alphas()
    return {
        "description": "log Z(alpha) of Barron's robust distribution, Z = integral of exp(-rho(x, alpha, 1)) dx, "
        "by scipy.integrate.quad; regenerate with automod_cli.robust_partition.write_table()",
        "coordinate_lambda": COORDINATE_LAMBDA,
        "coordinate_delta": COORDINATE_DELTA,
        "alpha": alphas.tolist(),
        "log_partition": [log_partition_by_quadrature(a) for a in alphas],
    }


def write_table(path: Path | None = None) -> Path:
    """Recompute the table (about a second) and write it, by default over the packaged copy."""
    path = path or Path(__file__).with_name(TABLE_NAME)
    path.write_text(json.dumps(compute_table(), indent=1) + "\n")
    return path


def load_table() -> dict:
    """The packaged table, read through importlib.resources so it works from a wheel too."""
    return json.loads(resources.files("automod_cli").joinpath(TABLE_NAME).read_text())


@functools.lru_cache(maxsize=None)
def _spline_numpy() -> tuple[np.ndarray, np.ndarray]:
    """Knots in s (n,) and the cubic spline's coefficients (4, n − 1), highest power first, in float64."""
    from scipy.interpolate import CubicSpline  # noqa: PLC0415 -- as integrate above

    table = load_table()
    if (table["coordinate_lambda"], table["coordinate_delta"]) != (COORDINATE_LAMBDA, COORDINATE_DELTA):
        raise RuntimeError(f"{TABLE_NAME} was written for another spline coordinate; run write_table()")
    knots = spline_coordinate(np.asarray(table["alpha"], dtype=np.float64))
    spline = CubicSpline(knots, np.asarray(table["log_partition"], dtype=np.float64))
    return knots, spline.c


@functools.lru_cache(maxsize=None)
def _spline_tensors(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline on one device in one dtype, copied there once."""
    knots, coefficients = _spline_numpy()
    return torch.as_tensor(knots, device=device, dtype=dtype), torch.as_tensor(
        coefficients, device=device, dtype=dtype
    )


def log_partition(alpha: torch.Tensor) -> torch.Tensor:
    """log Z(α) for α in [0, 2], any shape, differentiable in α (a cubic spline through the packaged table)."""
    knots, coefficients = _spline_tensors(alpha.device, alpha.dtype)
    s = spline_coordinate(alpha)
    index = (torch.searchsorted(knots, s.detach().contiguous(), right=True) - 1).clamp(0, knots.numel() - 2)
    t = s - knots[index]
    c = coefficients[:, index]
    return ((c[0] * t + c[1]) * t + c[2]) * t + c[3]
