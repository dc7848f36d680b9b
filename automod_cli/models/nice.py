"""NICE: an invertible network of additive coupling layers (Dinh et al. 2015), LIA's latent map (LIA Sec. 3.1).

A coupling layer splits its input into a kept half and a changed half and adds a function of the kept half to
the changed one (LIA Eq. 5); subtracting the same function undoes it exactly (LIA Eq. 6). The function τ is a
free-form MLP with leaky ReLU, because it is never inverted itself. Successive layers swap the halves' roles,
so after two layers every coordinate has been changed. Each layer's Jacobian is triangular with a unit
diagonal, so the whole map preserves volume: log |det J| = 0.

Direction: `forward` takes a prior sample z to the intermediate latent y (LIA's φ⁻¹, the mapping network in
front of the generator) and `inverse` takes y back to z (LIA's φ).
"""

from __future__ import annotations

import torch
from torch import nn

from automod_cli.errors import AutomodError
from automod_cli.nn.activation import lrelu
from automod_cli.nn.equalized import EqualLinear

COUPLING_LAYERS = 8  # LIA Sec. 6: "the layer number of the invertible network is 8"
COUPLING_DEPTH = 2  # hidden layers of each τ (our choice: neither LIA nor its code is specific here)


class CouplingMLP(nn.Module):
    """τ: an MLP from the kept half to a shift of the changed half, leaky ReLU between layers (LIA Sec. 3.1).

    The output layer starts at zero, so each coupling layer (and the whole network) starts as the identity and
    the generator first sees y = z, a well-scaled Gaussian; it leaves the identity after the first update."""

    def __init__(self, in_features: int, out_features: int, hidden: int, depth: int):
        super().__init__()
        widths = [in_features] + [hidden] * depth
        self.hidden = nn.ModuleList(EqualLinear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = EqualLinear(widths[-1], out_features, gain=1.0)
        with torch.no_grad():
            self.out.weight.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = lrelu(layer(x))
        return self.out(x)


class AdditiveCoupling(nn.Module):
    """One coupling layer on (N, D) vectors. With `swap` False the second half changes by τ(first half), with
    `swap` True the first half changes by τ(second half). The first half has D // 2 entries."""

    def __init__(self, dim: int, hidden: int, depth: int, swap: bool):
        super().__init__()
        self.split = dim // 2
        self.swap = swap
        kept, changed = (dim - self.split, self.split) if swap else (self.split, dim - self.split)
        self.tau = CouplingMLP(kept, changed, hidden, depth)

    def _halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first, second = x[:, : self.split], x[:, self.split :]
        return (second, first) if self.swap else (first, second)

    def _join(self, kept: torch.Tensor, changed: torch.Tensor) -> torch.Tensor:
        return torch.cat([changed, kept] if self.swap else [kept, changed], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept, changed = self._halves(x)
        return self._join(kept, changed + self.tau(kept))  # LIA Eq. 5: z_b = x_b + τ(x_t)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        kept, changed = self._halves(y)
        return self._join(kept, changed - self.tau(kept))  # LIA Eq. 6: x_b = z_b − τ(z_t)


class NICE(nn.Module):
    """`layers` additive coupling layers with alternating halves on D-dimensional vectors (D ≥ 2)."""

    def __init__(
        self, dim: int, layers: int = COUPLING_LAYERS, hidden: int | None = None, depth: int = COUPLING_DEPTH
    ):
        super().__init__()
        if dim < 2 or layers < 1 or depth < 0 or (hidden is not None and hidden < 1):
            raise AutomodError(
                "a NICE network needs dim ≥ 2, at least one layer, depth ≥ 0 and a positive hidden width."
            )
        self.dim = dim
        width = dim if hidden is None else hidden  # τ as wide as the latent (our choice)
        self.layers = nn.ModuleList(
            AdditiveCoupling(dim, width, depth, swap=i % 2 == 1) for i in range(layers)
        )

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise AutomodError(f"the NICE network takes (N, {self.dim}) latents, got shape {tuple(x.shape)}.")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """y = φ⁻¹(z): prior sample to intermediate latent."""
        self._check(z)
        for layer in self.layers:
            z = layer(z)
        return z

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """z = φ(y): the exact inverse of `forward`, the layers undone in reverse order."""
        self._check(y)
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y

    def log_det_jacobian(self, z: torch.Tensor) -> torch.Tensor:
        """log |det ∂y/∂z| per sample: 0, since additive coupling preserves volume (NICE Sec. 3.3)."""
        self._check(z)
        return z.new_zeros(z.shape[0])
