"""The `automod` command itself: version, help, one-line errors, exit codes."""

import json

from automod_cli import __version__
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.commands.info import duration
from automod_cli.models import Automodulator


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"automod {__version__}"


def test_help_lists_working_commands(capsys):
    assert main(["--help"]) == 0
    assert "info" in capsys.readouterr().out


def test_info_reports_config_as_json(tmp_path, tiny_config, capsys):
    path = tmp_path / "m.safetensors"
    save_model(path, Automodulator(tiny_config, level=1), extra_meta={"images_seen": 77})
    assert main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resolution"] == 8 and report["images_seen"] == 77
    assert report["model_config"]["latent_dim"] == 16


def test_info_shows_the_training_time_for_people_and_keeps_the_seconds_in_json(tmp_path, tiny_config, capsys):
    path = tmp_path / "m.safetensors"
    save_model(path, Automodulator(tiny_config, level=1), extra_meta={"elapsed_s": 579.5795524730001})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "9 min 40 s" in out and "579.57" not in out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["elapsed_s"] == 579.5795524730001
    assert [duration(s) for s in (42.34, 59.96, 3599.6, 7500)] == [
        "42.3 s",
        "1 min 0 s",
        "1 h 00 min",
        "2 h 05 min",
    ]


def test_bad_model_path_is_one_red_line_with_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "does not exist" in err and len(err.splitlines()) == 1
