"""The console script's entry point: Ctrl-C while the modules are still being imported exits quietly (issue 18)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

# Ctrl-C arrives while torch is being imported (it takes seconds): a finder raises it there, as the signal would.
INTERRUPTED_IMPORT = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["automod", "--help"]
"""


def test_ctrl_c_during_start_up_imports_exits_130_without_a_traceback():
    for start in ("from automod_cli.entry import main; sys.exit(main())", "import runpy; runpy.run_module('automod_cli', run_name='__main__')"):
        done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT + start], capture_output=True, text=True, timeout=120)
        assert done.returncode == 130, done.stderr
        assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_the_console_script_is_the_guarded_entry_point():
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["automod"] == "automod_cli.entry:main"
    done = subprocess.run([sys.executable, "-m", "automod_cli", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("automod ")


def test_version_answers_without_importing_the_commands():
    probe = ("import sys; from automod_cli.entry import main; sys.argv = ['automod', '--version']; code = main(); "
             "print('torch' in sys.modules, 'automod_cli.cli' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    from automod_cli import __version__

    assert done.stdout.splitlines() == [f"automod {__version__}", "False False 0"], done.stdout + done.stderr
