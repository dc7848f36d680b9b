"""Every loss of the project as a small function of tensors.

The automodulator game (NeurIPS Sec. 3, Eq. 1-6): the empirical KL of a batch of latents, the cosine latent
distance, the encoder and decoder objectives and the layer disentanglement loss L_j. The baselines: WAE-MMD with
the inverse multiquadratics kernel and the R1 gradient penalty of LIA's discriminator. The reconstruction
distance d_ρ, Barron's adaptive robust loss with one learned shape α and scale c per pixel, is the only loss with
state; its log-partition function comes from a table in `robust_log_partition.json` (see `robust_partition.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from automod_cli.config import LATENT_COSINE_WEIGHT, ROBUST_GROWTH
from automod_cli.errors import AutomodError
from automod_cli.nn.autocast import autocast_off
from automod_cli.robust_partition import log_partition


def empirical_kl(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KL[N(μ, σ²) ‖ N(0, 1)] per latent dimension from the batch's own mean and (biased) variance, averaged over
    dimensions (AGE; the direction of the authors' code, DESIGN §8). `z` is (N, D); returns a scalar."""
    mean = z.mean(dim=0)
    var = z.var(dim=0, unbiased=False)
    # eps only guards a collapsed dimension: added to every variance it would move the value of a narrow batch
    # (the authors' code has none)
    return ((var + mean.pow(2)) / 2 - 0.5 * torch.log(var.clamp_min(eps)) - 0.5).mean()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 − cos(a_i, b_i) for rows of (N, D) tensors: d_cos of NeurIPS Eq. 2."""
    return (1 - F.cosine_similarity(a, b, dim=1)).mean()


def encoder_loss(
    kl_real: torch.Tensor,
    kl_fake: torch.Tensor,
    reconstruction: torch.Tensor,
    margin: float,
    lambda_x: float = 2.0,
    kl_scale: float = 1.0,
) -> torch.Tensor:
    """L_φ = max(−M_gap, KL(φ(x)) − KL(φ(x̂))) + λ_X·d(x, θ(φ(x))) (NeurIPS Eq. 1). `margin` is M_gap in the
    paper's units (0.5; 2.0 early; Supp. App. A). λ_X = 2.0: Supp. App. A's 0.2 against the authors' KL scaled by 0.1.

    Written as KL(φ(x)) − min(KL(φ(x̂)), sg[KL(φ(x))] + M_gap), which has exactly the value of Eq. 1 but keeps the
    gradient of KL(real) once the gap is reached (sg = stop-gradient); with the literal max(·) the saturated hinge
    stops pulling the real codes towards N(0, I) (measurements: docs/architecture.md, "AGE margin")."""
    kl_real, kl_fake = kl_scale * kl_real, kl_scale * kl_fake  # with s ≠ 1 the margin is in the scaled units
    return kl_real - torch.minimum(kl_fake, kl_real.detach() + margin) + lambda_x * reconstruction


def encoder_loss_clamped(
    kl_real: torch.Tensor,
    kl_fake: torch.Tensor,
    reconstruction: torch.Tensor,
    margin: float,
    lambda_x: float,
    kl_scale: float,
) -> torch.Tensor:
    """The authors' encoder objective: s·KL(φ(x)) + clamp(s·(KL(φ(x)) − KL(φ(x̂))), −M, M/2) + λ_X·d, with s
    the KL scale (their 0.1) and M the margin in those units; M = 0 means no clamp at all. KL(real) enters twice: on its
    own and inside the clamped gap."""
    gap = kl_scale * (kl_real - kl_fake)
    if margin > 0:
        gap = gap.clamp(-margin, margin / 2)
    return kl_scale * kl_real + gap + lambda_x * reconstruction


def latent_dot_distance(z: torch.Tensor, z_hat: torch.Tensor) -> torch.Tensor:
    """The authors' latent reconstruction distance: mean over rows and dimensions of 2 − z_d·ẑ_d, i.e. 2 − cos/D
    for unit latents (its gradient is that of (1 − cos)/D)."""
    return (2 - z * z_hat).mean()


def decoder_loss(
    kl_fake: torch.Tensor,
    latent_reconstruction: torch.Tensor,
    layer_loss: torch.Tensor,
    lambda_z: float = LATENT_COSINE_WEIGHT,
    kl_scale: float = 1.0,
) -> torch.Tensor:
    """L_θ = s·KL(φ(x̂)) + λ_Z·d(z, φ(θ(z))) + L_j (NeurIPS Eq. 6 with s = 1); λ_Z as explained at
    config.LATENT_COSINE_WEIGHT, d the cosine distance or the authors' latent_dot_distance."""
    return kl_scale * kl_fake + lambda_z * latent_reconstruction + layer_loss


def layer_disentanglement_loss(
    canvas_from_reencoded: torch.Tensor, canvas_from_a: torch.Tensor
) -> torch.Tensor:
    """L_j = d(θ_1:j(ξ⁽⁰⁾, ẑ_AB), θ_1:j(ξ⁽⁰⁾, z_A)) with d the (mean) squared L2 distance (NeurIPS
    Eq. 4)."""
    return (canvas_from_reencoded - canvas_from_a).pow(2).mean()


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference: the L1 image distance of NeurIPS Eq. 1 (the ablation of Table 1)."""
    return (x - y).abs().mean()


def l2_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared difference: the L2 image distance of NeurIPS Eq. 1."""
    return (x - y).pow(2).mean()


class L1Distance(nn.Module):
    """`l1_loss` as a module without parameters, called like d_ρ (`reconstruction_distance`)."""

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l1_loss(x, target)


class L2Distance(nn.Module):
    """`l2_loss` as a module without parameters, called like d_ρ (`reconstruction_distance`)."""

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l2_loss(x, target)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a_i − b_j‖² for all pairs of rows, (N, M); clamped at 0 against rounding. Always fp32: under bf16
    autocast the matrix product would otherwise run in bf16, and the expansion cancels large terms."""
    with autocast_off(a.device.type):
        wide = torch.promote_types(a.dtype, torch.float32)
        a, b = a.to(wide), b.to(wide)
        sq = a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T
    return sq.clamp_min(0)


def mmd_imq(
    z: torch.Tensor,
    z_prior: torch.Tensor,
    scales: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
    prior_variance: float = 1.0,
) -> torch.Tensor:
    """Unbiased (U-statistic) MMD² between encoded latents `z` (N, D) and prior samples `z_prior` (M, D) with the
    inverse multiquadratics kernel k(x, y) = C / (C + ‖x − y‖²), C = 2·D·σ²·s, summed over the scales s
    (WAE-MMD, Tolstikhin et al. 2018, whose experiments use these scales). σ² is the prior's per-dimension variance: 1
    for N(0, I), 1/D for latents normalised onto the unit sphere."""
    n, dim = z.shape
    m = z_prior.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd_imq needs at least two latents on each side, got {n} and {m}")
    dist_zz = _squared_distances(z, z)
    dist_pp = _squared_distances(z_prior, z_prior)
    dist_zp = _squared_distances(z, z_prior)
    total = z.new_zeros(())
    for s in scales:
        c = 2.0 * dim * prior_variance * s
        k_zz, k_pp, k_zp = c / (c + dist_zz), c / (c + dist_pp), c / (c + dist_zp)
        within_z = (k_zz.sum() - k_zz.diagonal().sum()) / (n * (n - 1))
        within_p = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
        total = total + within_z + within_p - 2 * k_zp.mean()
    return total


def r1_penalty(real_scores: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ‖∇_x D(x)‖² at real images (Mescheder et al. 2018; LIA's discriminator). The caller
    multiplies by γ/2 (γ = 10). `real_images` must require grad and `real_scores` be computed from them; the graph
    is kept so the penalty can be backpropagated."""
    (grad,) = torch.autograd.grad(real_scores.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


# Barron's defaults (CVPR 2019, adaptive.py of his reference code): α ∈ (0.001, 1.999), c ≥ 1e-5.
ALPHA_RANGE = (0.001, 1.999)
SCALE_MIN = 1e-5


def robust_rho(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Barron's ρ(x, α, 1) = |α−2|/α · ((x²/|α−2| + 1)^(α/2) − 1), written with expm1/log1p for accuracy.
    α and |α−2| are kept above the dtype's epsilon, so the ends give their limits: log(x²/2 + 1) at α = 0, x²/2
    at α = 2."""
    tiny = torch.finfo(alpha.dtype).eps
    a = alpha.clamp_min(tiny)
    b = (alpha - 2).abs().clamp_min(tiny)
    return b / a * torch.expm1(0.5 * a * torch.log1p(x.pow(2) / b))


def robust_negative_log_likelihood(
    residual: torch.Tensor, alpha: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """−log p(residual) of Barron's distribution, elementwise: ρ(r/c, α) + log c + log Z(α) (CVPR 2019 Eq. 16).
    With log Z the loss cannot lower itself by driving α towards 0, so α can be learned."""
    return robust_rho(residual / scale, alpha) + torch.log(scale) + log_partition(alpha)


def softplus_inverse(y: float | torch.Tensor) -> float | torch.Tensor:
    """x with softplus(x) = y (y > 0)."""
    if isinstance(y, torch.Tensor):
        return y + torch.log(-torch.expm1(-y))
    return y + math.log(-math.expm1(-y))


# Barron's scale map: c = (1 − c_min)·softplus(b + ln(e − 1)) + c_min, so that b = 0 is the scale 1 (his reference
# code and the authors', whose checkpoints store b in this form)
SCALE_SHIFT = softplus_inverse(1.0)


def legacy_scale_parameter(b: torch.Tensor) -> torch.Tensor:
    """d_ρ's scale parameter as checkpoints before Barron's map stored it (c = softplus(b) + c_min), in Barron's
    form (same scale c)."""
    return softplus_inverse(F.softplus(b) / (1 - SCALE_MIN)) - SCALE_SHIFT


class AdaptiveRobustLoss(nn.Module):
    """d_ρ (NeurIPS Sec. 3.2): Barron's adaptive robust loss with a learned shape α and scale c for every pixel and
    colour channel. α = lo + (hi − lo)·sigmoid(a) stays inside ALPHA_RANGE and c = (1 − c_min)·softplus(b +
    ln(e − 1)) + c_min stays above SCALE_MIN (Barron's maps: a = b = 0 is α = 1, c = 1), for free parameters a, b
    of shape (C, H, W). The forward pass is the mean negative log-likelihood of the residual; `grow()` follows the
    resolution as it doubles (progressively grown α, NeurIPS Sec. 3.2)."""

    def __init__(self, channels: int, resolution: int, alpha_init: float = 1.0, scale_init: float = 1.0):
        super().__init__()
        lo, hi = ALPHA_RANGE
        if not lo < alpha_init < hi:
            raise AutomodError(
                f"The robust loss's initial shape alpha must lie in ({lo}, {hi}), got {alpha_init}."
            )
        if scale_init <= SCALE_MIN:
            raise AutomodError(
                f"The robust loss's initial scale must be above {SCALE_MIN}, got {scale_init}."
            )
        unit = (alpha_init - lo) / (hi - lo)
        latent_alpha = math.log(unit / (1 - unit))  # inverse sigmoid
        latent_scale = softplus_inverse((scale_init - SCALE_MIN) / (1 - SCALE_MIN)) - SCALE_SHIFT
        shape = (channels, resolution, resolution)
        self.latent_alpha = nn.Parameter(torch.full(shape, latent_alpha))
        self.latent_scale = nn.Parameter(torch.full(shape, latent_scale))

    @property
    def resolution(self) -> int:
        return self.latent_alpha.shape[-1]

    def alpha(self) -> torch.Tensor:
        """The shape α of every pixel, (C, H, W)."""
        lo, hi = ALPHA_RANGE
        return lo + (hi - lo) * torch.sigmoid(self.latent_alpha)

    def scale(self) -> torch.Tensor:
        """The scale c of every pixel, (C, H, W)."""
        return (1 - SCALE_MIN) * F.softplus(self.latent_scale + SCALE_SHIFT) + SCALE_MIN

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over batch and pixels of −log p(x − target) for images (N, C, H, W), computed in the parameters'
        precision whatever the images' dtype."""
        residual = (x - target).to(self.latent_alpha.dtype)
        if residual.shape[1:] != self.latent_alpha.shape:
            raise ValueError(
                f"images of shape {tuple(residual.shape[1:])} do not match the robust loss's "
                f"{tuple(self.latent_alpha.shape)}; call grow() whenever the training resolution doubles"
            )
        return robust_negative_log_likelihood(residual, self.alpha(), self.scale()).mean()

    def grow(self, order: str = "blocks") -> None:
        """Double the resolution. "blocks": each pixel's α and c initialise the 2×2 block that covers it at the
        new resolution (NeurIPS Sec. 3.2); "flat": the authors' order, in which entry k of the flattened C·H·W maps
        initialises entries 4k..4k+3 of the new ones (four neighbours along a row, so the old maps land scrambled
        in space). The parameters are new tensors, so build a new optimiser for them afterwards."""
        if order not in ROBUST_GROWTH:
            raise AutomodError(f"unknown d_ρ growth order '{order}': choose {' or '.join(ROBUST_GROWTH)}.")
        c, r, _ = self.latent_alpha.shape

        def grown(t: torch.Tensor) -> torch.Tensor:
            if order == "flat":
                return t.flatten().repeat_interleave(4).reshape(c, 2 * r, 2 * r)
            return t.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)

        with torch.no_grad():
            alpha, scale = grown(self.latent_alpha), grown(self.latent_scale)
        self.latent_alpha = nn.Parameter(alpha)
        self.latent_scale = nn.Parameter(scale)


def reconstruction_distance(name: str, resolution: int) -> nn.Module:
    """The image distance d(x, target) of a run (`TrainConfig.reconstruction`): d_ρ with its α and scale maps at
    `resolution` ("robust", NeurIPS Sec. 3.2), or the plain L1 or L2 distance of the ablation (Table 1)."""
    if name == "robust":
        return AdaptiveRobustLoss(3, resolution)
    distances = {"l1": L1Distance, "l2": L2Distance}
    if name not in distances:
        raise AutomodError(f"unknown reconstruction loss '{name}': choose robust, {', '.join(distances)}.")
    return distances[name]()
