"""Structural similarity (SSIM; Wang, Bovik, Sheikh & Simoncelli 2004) of image pairs, one value per pair.

The standard settings of that paper: an 11×11 Gaussian window with σ = 1.5, constants C₁ = (0.01·L)² and
C₂ = (0.03·L)² for the dynamic range L, and the local (co)variances weighted by the window with weights that sum
to 1 (no sample-size correction). The SSIM map is taken where the whole window lies inside the image and
averaged over pixels, then over colour channels — the same numbers as scikit-image's
`structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0)`.
"""

from __future__ import annotations

import torch

from automod_cli.errors import AutomodError

WINDOW = 11  # Wang et al. 2004, Sec. III-C
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian (size,), float64; the 2-D window is its outer product."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def _valid_filter_matrix(size: int, window: torch.Tensor) -> torch.Tensor:
    """(size − w + 1, size) matrix whose row i is the window placed at offset i: a valid 1-D convolution."""
    width = len(window)
    matrix = torch.zeros(size - width + 1, size, dtype=window.dtype, device=window.device)
    for row in range(size - width + 1):
        matrix[row, row : row + width] = window
    return matrix


def _local_mean(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Window-weighted mean of every channel over every fully covered position: the separable Gaussian as two
    matrix products (float64 BLAS, much faster on a CPU than a float64 grouped convolution)."""
    return rows @ x @ cols.T


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM of each pair of (N, C, H, W) images with values in a range of width `data_range`; (N,) float64.

    1 for identical images; it falls towards 0 (and can go below) as structure, contrast or brightness differ.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise AutomodError(
            f"SSIM compares two (N, C, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if min(x.shape[-2:]) < WINDOW:
        raise AutomodError(
            f"SSIM uses an {WINDOW}×{WINDOW} window: images of {x.shape[-1]}×{x.shape[-2]} pixels "
            "are too small (use a model trained to 16×16 or more)."
        )
    x, y = x.to(torch.float64), y.to(torch.float64)
    window = gaussian_window().to(x.device)
    rows, cols = _valid_filter_matrix(x.shape[-2], window), _valid_filter_matrix(x.shape[-1], window)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    mean_x, mean_y = _local_mean(x, rows, cols), _local_mean(y, rows, cols)
    var_x = _local_mean(x * x, rows, cols) - mean_x**2
    var_y = _local_mean(y * y, rows, cols) - mean_y**2
    cov_xy = _local_mean(x * y, rows, cols) - mean_x * mean_y
    # Wang et al. 2004, Eq. 13
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(dim=(-2, -1)).mean(dim=1)
