"""The console script's entry point: Ctrl-C while the modules are still being imported exits quietly (issue 18)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import tomllib

from automod_cli import __version__, defaults
from automod_cli.metrics import fid, inversion, ppl
from automod_cli.metrics.builtin import fd_builtin, ground_truth
from data_prep.builtin import SPLITS

# Ctrl-C arrives while torch is being imported (it takes seconds): a finder raises it there, as the signal would.
INTERRUPTED_IMPORT = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["automod", "info", "runs/x"]  # --help imports no torch; a command that runs does
"""


def test_ctrl_c_during_start_up_imports_exits_130_without_a_traceback():
    for start in (
        "from automod_cli.entry import main; sys.exit(main())",
        "import runpy; runpy.run_module('automod_cli', run_name='__main__')",
    ):
        done = subprocess.run(
            [sys.executable, "-c", INTERRUPTED_IMPORT + start], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 130, done.stderr
        assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_the_console_script_is_the_guarded_entry_point():
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["automod"] == "automod_cli.entry:main"
    done = subprocess.run(
        [sys.executable, "-m", "automod_cli", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("automod ")


def test_version_answers_without_importing_the_commands():
    probe = (
        "import sys; from automod_cli.entry import main; sys.argv = ['automod', '--version']; code = main(); "
        "print('torch' in sys.modules, 'automod_cli.cli' in sys.modules, code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)

    assert done.stdout.splitlines() == [f"automod {__version__}", "False False 0"], done.stdout + done.stderr


# Every command's --help, run in one fresh process, one after the other: after each, is torch imported yet?
HELP_PROBE = """
import sys
import typer

from automod_cli.cli import app, main

def paths(command, prefix):
    if hasattr(command, "commands"):  # a group (typer's own click)
        for name, sub in sorted(command.commands.items()):
            yield from paths(sub, prefix + [name])
    else:
        yield prefix

group = typer.main.get_command(app)
print("@@", "torch" in sys.modules, 0, "start", file=sys.stderr)
for path in paths(group, []):
    code = main([*path, "--help"])
    print("@@", "torch" in sys.modules, code, *path, file=sys.stderr)
"""


def test_every_command_answers_help_without_importing_torch():
    """`automod CMD --help` must not pay torch's seconds of import: each command imports what it needs when it runs
    (lazy imports in commands/, torch-free defaults in automod_cli/defaults.py)."""
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=300)
    rows = {
        " ".join(line.split()[3:]): line.split()[1:3]
        for line in done.stderr.splitlines()
        if line.startswith("@@")
    }
    assert {
        "start",
        "train",
        "mix",
        "sample",
        "eval fid",
        "eval compare",
        "eval weights",
        "prep ffhq",
        "project",
        "info",
        "import",
        "models",
        "encode",
    } <= set(rows), done.stderr
    assert all(row == ["False", "0"] for row in rows.values()), rows


def test_a_command_imports_torch_only_when_it_runs():
    probe = (
        "import sys; from automod_cli.cli import main; main(['info', 'no-such-model']); "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("True") and "no-such-model" in done.stderr, done.stdout + done.stderr


def test_the_numbers_help_shows_are_the_ones_the_code_uses():
    """automod_cli/defaults.py holds what --help shows; the modules that use a number take it from there, and the
    built-in test split's size there agrees with the dataset's own."""
    codes, projection, reconstruct = (
        importlib.import_module(f"automod_cli.ops.{name}")  # the modules, not the
        for name in ("codes", "projection", "reconstruct")
    )  # functions ops exports

    assert defaults.BUILTIN_TEST_COUNT == SPLITS["test"][1] == ground_truth.TEST_COUNT
    assert defaults.MIX_TRUTH_PAIRS == ground_truth.MAX_PAIRS
    assert (fid.DEFAULT_SAMPLES, ppl.DEFAULT_SAMPLES, fd_builtin.DEFAULT_SAMPLES) == (50_000, 100_000, 1024)
    assert (
        projection.DEFAULT_STEPS,
        inversion.DEFAULT_IMAGES,
        reconstruct.BATCH_SIZE,
        codes.ENCODE_BATCH,
    ) == (
        defaults.PROJECTION_STEPS,
        defaults.PROJECTION_IMAGES,
        defaults.RECONSTRUCT_BATCH,
        defaults.ENCODE_BATCH,
    )
