"""Presets carry the paper's values; overrides and the JSON round trip work; bad settings are one-line errors."""

import json

import pytest

from automod_cli.config import Recipe, TrainConfig
from automod_cli.presets import resolve_train_config, train_preset
from automod_cli.errors import AutomodError

M = 1_000_000


def test_paper_schedule_values():
    """The paper's text (--recipe paper); the dataset presets' default, the authors' recipe, is
    tests/test_recipes.py's."""
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
    assert ffhq.recipe.lambda_x == pytest.approx(0.2 / 0.1)
    assert ffhq.mirror and not resolve_train_config("lsun-car", paper).mirror
    celeba = resolve_train_config("celebahq", paper)
    assert (
        celeba.kl_margin[128] == 0.2 and celeba.kl_margin[256] == 0.4 and celeba.phase_images[256] == 4.5 * M
    )
    bedroom = resolve_train_config("lsun-bedroom", paper)
    assert bedroom.kl_margin[128] == bedroom.kl_margin[256] == 0.2 and bedroom.phase_images[128] == 4.8 * M
    assert resolve_train_config("lsun-car").phase_images[256] == 2 * M


def test_overrides_scalar_per_resolution_and_model():
    config = resolve_train_config(
        "ffhq",
        {
            "recipe": "paper",
            "lr.64": "0.002",
            "kl_margin": 0.3,
            "model.max_resolution": "512",
            "lambda_x": "0.5",
        },
    )
    assert config.lr[64] == 0.002 and config.lr[128] == 1e-3
    assert set(config.kl_margin.values()) == {0.3}
    assert config.resolutions[-1] == 512 and config.phase_images[512] == 6.7 * M  # FFHQ's 512² phase
    assert config.recipe.lambda_x == 0.5


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


def test_the_recipe_is_one_value_set_by_name_or_element():
    authors = resolve_train_config("builtin", {"recipe": "authors", "recipe.fake_pool": 8, "match_x": 2})
    assert isinstance(authors.recipe, Recipe) and authors.recipe.name == "authors"
    assert (authors.recipe.fake_pool, authors.recipe.match_x, authors.recipe.kl_scale) == (8, 2.0, 0.1)
    saved = authors.to_dict()
    assert saved["recipe"]["fake_pool"] == 8 and "fake_pool" not in saved  # a group in config.json
    assert TrainConfig.from_dict(json.loads(json.dumps(saved))) == authors
    # a saved config given back (e.g. to --config) keeps its recipe, whatever the preset's default
    assert resolve_train_config("ffhq", {"recipe": saved["recipe"]}).recipe == authors.recipe
    with pytest.raises(AutomodError, match="recipe.nonsense"):
        resolve_train_config("builtin", {"recipe.nonsense": 1})
    with pytest.raises(AutomodError, match="recipe.fake_pool"):
        resolve_train_config("builtin", {"fake_pool": "many"})


def test_a_config_written_before_the_recipe_was_a_group_reads_into_it():
    legacy = resolve_train_config("builtin", {"recipe": "authors"}).to_dict()
    flat = {k: v for k, v in legacy.items() if k != "recipe"}
    flat.update({k: v for k, v in legacy["recipe"].items() if k != "name"}, recipe="authors")
    restored = TrainConfig.from_dict(flat)
    assert restored.recipe == Recipe.from_dict(legacy["recipe"]) and restored.recipe.name == "authors"
