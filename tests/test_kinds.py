"""The model kinds' registry (automod_cli/kinds.py): each entry's settings give a run of that kind whose network
has the entry's latent space and decoder; checkpoints are recognised by the kind they record, else by their
network; `automod train --model` offers exactly the registry's kinds."""

import pytest

from automod_cli import kinds
from automod_cli.checkpoint import NETWORKS, model_kind, model_meta
from automod_cli.cli import main
from automod_cli.config import MODELS
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.presets import resolve_train_config


@pytest.mark.parametrize("name", kinds.CONFIG_KINDS)
def test_each_kind_trains_with_its_entrys_latent_space_and_decoder(name):
    entry = kinds.get(name)
    config = resolve_train_config("builtin", {"kind": name})
    assert config.kind == name and config.model.decoder == entry.decoder
    assert (config.model.latent, config.model.variational) == (entry.latent, entry.variational)
    mixes = (
        config.recipe.mixed_fraction_encoder > 0
        or config.recipe.mixed_fraction_decoder > 0
        or config.layer_loss
    )
    assert mixes == (name == "automod")  # only the automodulator's own game mixes latents and has L_j


def test_the_config_kinds_are_the_registrys_except_those_with_their_own_run():
    assert MODELS == tuple(name for name, kind in kinds.KINDS.items() if kind.step != kinds.STAGES)
    assert kinds.get("lia").step == kinds.STAGES and kinds.get("lia").config_key == "lia_config"


def test_a_checkpoint_says_its_kind_and_older_files_are_recognised_by_their_network():
    assert model_kind({"kind": "lia", "lia_config": {}}) == "lia"
    assert model_kind({"train_config": {"kind": "wae"}, "model_config": {"latent": "sphere"}}) == "wae"
    assert model_kind({"model_config": {"latent": "gaussian", "variational": True}}) == "vae"
    assert model_kind({"model_config": {"latent": "gaussian", "variational": False}}) == "wae"
    assert model_kind({"model_config": {"latent": "sphere", "decoder": "classic"}}) == "pioneer"
    assert model_kind({"model_config": {"latent": "sphere", "decoder": "adain"}}) == "automod"


def test_an_unknown_kind_is_one_line_naming_the_kinds():
    with pytest.raises(
        AutomodError, match="unknown model 'gan': choose one of automod, pioneer, vae, wae, lia"
    ):
        kinds.get("gan")


def test_train_offers_the_registrys_kinds(capsys):
    assert main(["train", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in kinds.KINDS)
    assert main(["train", "--model", "gan"]) == 2
    assert "automod, pioneer, vae, wae, lia" in capsys.readouterr().err


def test_every_kinds_checkpoint_config_names_a_network_that_rebuilds_it(tiny_config):
    assert {kind.config_key for kind in kinds.KINDS.values()} <= set(NETWORKS)
    model = Automodulator(tiny_config, level=1, alpha=0.5)
    rebuilt = NETWORKS["model_config"].from_checkpoint_meta(model_meta(model))
    assert (
        rebuilt.config == tiny_config and (rebuilt.level, rebuilt.alpha) == (1, 0.5) and rebuilt.has_encoder
    )
