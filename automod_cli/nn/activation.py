"""The nonlinearity of every network in automod: leaky ReLU with slope 0.2 (PGGAN, PIONEER and the authors' code)."""

import torch
import torch.nn.functional as F

SLOPE = 0.2


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)
