"""scripts/shape_probe.py's two readings against cases whose answers are known by construction."""

import importlib.util
from pathlib import Path

import torch
from torch import nn

from automod_cli.metrics.builtin.factor_targets import NUM_CONTINUOUS, NUM_OUTPUTS

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "shape_probe.py"
spec = importlib.util.spec_from_file_location("shape_probe", SCRIPT)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


class KindInPixel(nn.Module):
    """A stand-in factor network whose outputs put the largest shape-kind logit at the kind written into the red
    channel of pixel (0, 0) (as k / 4 on [-1, 1]), and larger values on every other output, so that reading the
    wrong slice of its outputs gives a wrong kind."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        kind = ((images[:, 0, 0, 0] + 1.0) * 2.0).round().long()
        outputs = torch.full((len(images), NUM_OUTPUTS), 10.0)
        outputs[:, NUM_CONTINUOUS : NUM_CONTINUOUS + 5] = 0.0
        outputs[torch.arange(len(images)), NUM_CONTINUOUS + kind] = 1.0
        return outputs


def test_read_kinds_reads_the_shape_kind_outputs():
    kinds = torch.tensor([0, 1, 2, 3, 4, 2])
    images = torch.zeros(6, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = (kinds.float() / 4 * 255).round().to(torch.uint8)  # k / 4 on [0, 1]
    assert probe.read_kinds(KindInPixel(), images).tolist() == kinds.tolist()


def test_the_linear_probe_reads_a_kind_written_into_the_codes_and_not_one_that_is_absent():
    g = torch.Generator().manual_seed(0)
    kinds, held_kinds = torch.randint(0, 5, (2000,), generator=g), torch.randint(0, 5, (1000,), generator=g)
    directions = torch.randn(5, 32, generator=g)  # each kind moves the code along its own direction

    def codes(k: torch.Tensor) -> torch.Tensor:
        return directions[k] + 0.3 * torch.randn(len(k), 32, generator=g)

    assert probe.probe_accuracy(codes(kinds), kinds, codes(held_kinds), held_kinds) > 0.99
    noise = torch.randn(2000, 32, generator=g)
    chance = probe.probe_accuracy(noise, kinds, torch.randn(1000, 32, generator=g), held_kinds)
    assert abs(chance - 0.2) < 0.05  # 1,000 held-out codes: the standard error of a 1/5 share is 0.013
