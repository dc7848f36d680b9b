"""Presets carry the paper's values; overrides and the JSON round trip work; bad settings are one-line errors."""

import json

import pytest

from automod_cli.config import TrainConfig, resolve_train_config, train_preset
from automod_cli.errors import AutomodError

M = 1_000_000


def test_paper_schedule_values():
    """The paper's text (--recipe paper); the dataset presets' default, the authors' recipe, is tests/test_recipes.py's."""
    paper = {"recipe": "paper"}
    ffhq = resolve_train_config("ffhq", paper)
    assert ffhq.resolutions == (4, 8, 16, 32, 64, 128, 256)
    # Supp. App. A: 2.4M per phase up to 32², 10.4M at 64² (20.0M total), FFHQ 10.6M at 128², 5.0M at 256²
    assert sum(ffhq.phase_images[r] for r in (4, 8, 16, 32, 64)) == 20 * M
    assert ffhq.phase_images[128] == 10.6 * M and ffhq.phase_images[256] == 5 * M
    assert ffhq.lr[32] == 5e-4 and ffhq.lr[64] == 1e-3
    assert ffhq.kl_margin[4] == ffhq.kl_margin[8] == 2.0 and ffhq.kl_margin[16] == 0.5
    assert ffhq.adam_betas == (0.0, 0.99) and ffhq.adam_eps == 1e-8
    # Supp. App. A's λ_X = 0.2 is relative to the authors' KL terms scaled by 0.1: 2.0 with the KL at weight 1
    assert ffhq.lambda_x == pytest.approx(0.2 / 0.1)
    assert ffhq.mirror and not resolve_train_config("lsun-car", paper).mirror
    celeba = resolve_train_config("celebahq", paper)
    assert celeba.kl_margin[128] == 0.2 and celeba.kl_margin[256] == 0.4 and celeba.phase_images[256] == 4.5 * M
    bedroom = resolve_train_config("lsun-bedroom", paper)
    assert bedroom.kl_margin[128] == bedroom.kl_margin[256] == 0.2 and bedroom.phase_images[128] == 4.8 * M
    assert resolve_train_config("lsun-car").phase_images[256] == 2 * M


def test_overrides_scalar_per_resolution_and_model():
    config = resolve_train_config("ffhq", {"recipe": "paper", "lr.64": "0.002", "kl_margin": 0.3, "model.max_resolution": "512", "lambda_x": "0.5"})
    assert config.lr[64] == 0.002 and config.lr[128] == 1e-3
    assert set(config.kl_margin.values()) == {0.3}
    assert config.resolutions[-1] == 512 and config.phase_images[512] == 6.7 * M  # FFHQ's 512² phase
    assert config.lambda_x == 0.5


def test_json_round_trip():
    config = resolve_train_config("builtin", {"seed": 3})
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nonsense": 1}, "unknown training setting"),
        ({"model.depth": 3}, "unknown model setting"),
        ({"lr.65": 0.1}, "resolution"),
        ({"reconstruction": "l3"}, "reconstruction"),
        ({"model.max_resolution": 512}, "no value for resolution"),  # CelebA-HQ has no 512² phase
        ({"batch_size": 0}, "positive"),
    ],
)
def test_bad_settings(overrides, message):
    with pytest.raises(AutomodError, match=message):
        resolve_train_config("celebahq", overrides)


def test_unknown_preset():
    with pytest.raises(AutomodError, match="choose one of"):
        train_preset("imagenet")
