"""Shared fixtures: tiny model configs so every test runs in well under a second on a CPU."""

from __future__ import annotations

import pytest
import torch

from automod_cli.config import ModelConfig
from automod_cli.training import precision

torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> ModelConfig:
    """A 32² AdaIN model with 4 blocks, 16-d latent and a few channels."""
    return ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8))


@pytest.fixture
def tiny_classic_config(tiny_config: ModelConfig) -> ModelConfig:
    return ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8), decoder="classic")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_native_bf16(monkeypatch) -> None:
    """`--precision auto` (the builtin preset's) resolves to fp32 in every test, whatever CPU runs the suite, so
    that a test's arithmetic does not depend on the machine; tests of `auto` patch the CPU's flags themselves."""
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset())
