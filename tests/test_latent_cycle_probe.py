"""scripts/latent_cycle_probe.py's two measures against cases whose answers are known by construction."""

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "latent_cycle_probe.py"
spec = importlib.util.spec_from_file_location("latent_cycle_probe", SCRIPT)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def test_importing_the_script_leaves_autograd_on_for_everything_else():
    assert torch.is_grad_enabled()


def test_linear_r2_is_one_for_an_exact_linear_map_and_near_zero_for_independent_codes():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    mixing = torch.randn(8, 4, generator=g, dtype=torch.float64)
    assert probe.linear_r2(source, source @ mixing + 3.0) > 0.999
    noise = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    assert abs(probe.linear_r2(source, noise)) < 0.02  # 9 fitted numbers per target over 1,000 rows


def test_spread_reads_the_mean_code_length_and_the_variance_shares():
    g = torch.Generator().manual_seed(1)
    # codes in a 3-d subspace of 16 dimensions around one direction: all variance in the top 3, mean length 1
    directions = torch.zeros(3, 16, dtype=torch.float64)
    directions[0, 1] = directions[1, 2] = directions[2, 3] = 1.0
    codes = torch.zeros(500, 16, dtype=torch.float64)
    codes[:, 0] = 1.0
    codes += 0.1 * torch.randn(500, 3, generator=g, dtype=torch.float64) @ directions
    measured = probe.spread(codes)
    assert abs(measured["mean_code_length"] - 1.0) < 0.01
    assert measured["var_top5"] == measured["var_top15"] == 1.0
