"""The `automod` command itself: version, help, one-line errors, exit codes."""

import json

from automod_cli import __version__
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
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


def test_bad_model_path_is_one_red_line_with_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "does not exist" in err and len(err.splitlines()) == 1
