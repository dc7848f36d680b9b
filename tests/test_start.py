"""Where a run starts (automod_cli/training/start.py): what `automod train` maps its options onto."""

import json

import pytest

from automod_cli.errors import AutomodError
from automod_cli.training.lia.config import LiaTrainConfig
from automod_cli.training.start import Request, new_run, plan, staged


def test_a_new_run_resolves_its_settings_in_order_and_names_its_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({"seed": 3, "kl_margin": 0.25, "preset": "ffhq"}))
    start = new_run(
        None,
        "vae",
        {"seed": 7, "mirror": None},
        config_file=tmp_path / "c.json",
        assignments=["kl_margin=0.5"],
    )
    config = start.config
    assert config.preset == "builtin" and config.kind == "vae"  # a config file's preset is not taken
    assert config.seed == 7 and set(config.kl_margin.values()) == {
        0.5
    }  # an option over --set over the config file
    assert start.run_dir.as_posix() == "runs/builtin-vae" and start.checkpoint is None and not start.staged
    (tmp_path / "runs" / "builtin-vae").mkdir(parents=True)
    (tmp_path / "runs" / "builtin-vae" / "config.json").write_text("{}")  # taken: the next number
    assert new_run(None, "vae", {}).run_dir.as_posix() == "runs/builtin-vae-2"


def test_lia_starts_with_its_own_config_and_bad_settings_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert staged("lia") and not staged(None) and not staged("wae")
    start = new_run(None, "lia", {})
    assert (
        isinstance(start.config, LiaTrainConfig)
        and start.staged
        and start.run_dir.as_posix() == "runs/builtin-lia"
    )
    with pytest.raises(AutomodError, match="--set takes NAME=VALUE"):
        new_run(None, None, {}, assignments=["seed"])
    with pytest.raises(AutomodError, match="does not exist: make one with `automod prep`"):
        new_run(None, None, {}, data=tmp_path / "missing.h5")


def test_plan_checks_what_goes_together_before_anything_is_made(tmp_path, monkeypatch):
    """`plan` (what `automod train` hands its options to) refuses, in one line naming the flag, what does not go
    together; a new run's length and `--no-compile` are fine for LIA."""
    monkeypatch.chdir(tmp_path)
    refused = [
        (Request(model="gan"), "unknown model 'gan'"),
        (Request(model="lia", init="ffhq256"), "--init starts a new run"),
        (Request(resume=tmp_path / "run", init="ffhq256"), "--init starts a new run"),
        (Request(stage=1), "--stage and --weights belong to LIA"),
        (Request(vgg_weights=tmp_path / "vgg.pth", model="wae"), "--stage and --weights belong to LIA"),
        (
            Request({"reconstruction": "l1", "layer_loss": False}, model="lia"),
            "--reconstruction does not apply",
        ),
        (Request({"layer_loss": False}, model="lia"), "--layer-loss does not apply"),
        (Request({"compile": True}, model="lia"), "--compile does not apply"),
    ]
    for request, message in refused:
        with pytest.raises(AutomodError, match=message):
            plan(request)
    start = plan(Request({"total_kimg": 1.0, "compile": False}, model="lia", stage=1))
    assert start.staged and start.stage == 1 and start.config.train.total_kimg == 1.0 and start.origin is None
    assert not (tmp_path / "runs").exists()
