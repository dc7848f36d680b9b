"""The authors' initial weights (Recipe.initialisation = "authors"), for a freshly built automodulator.

automod builds its layers with its own starting values (nn/modulation.py, models/decoder.py, models/encoder.py say
which and why). The authors' code starts three kinds of layer differently, and this puts a new network into their
state (read from their code, pioneer/model.py; the numbers are theirs, the code automod's):
- every AdaIN style map g_i: z → (s_i, m_i): Xavier-normal weights, std √(2 / (D + 2C)), and a bias of 1 in both
  halves, so each layer starts with a mean shift of 1 as well as a scale of 1;
- every toRGB and fromRGB 1×1 convolution: PyTorch's default initialisation, biases included (uniform in
  ±1/√fan_in; automod's toRGB starts at gain 0.2 with zero bias, its fromRGB with zero bias).
The encoder's spectrally normalised convolutions and the decoder's equalised ones start alike in both.
"""

from __future__ import annotations

import torch
from torch import nn

from automod_cli.models.automodulator import Automodulator
from automod_cli.nn.modulation import AdaIN


@torch.no_grad()
def authors_initialisation(model: Automodulator) -> None:
    """Re-initialise `model`'s style maps, toRGB and fromRGB layers as the authors' code does (module docstring),
    drawing from torch's global generator."""
    for module in model.decoder.modules():
        if isinstance(module, AdaIN):
            nn.init.xavier_normal_(module.affine.weight)
            module.affine.bias.fill_(1.0)
    for conv in (*model.decoder.to_rgb, *model.encoder.from_rgb):
        conv.reset_parameters()
