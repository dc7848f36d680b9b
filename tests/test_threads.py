"""How the CPU threads wait (automod_cli/threads.py) and `automod train --threads`: the console script shortens
OpenMP's spinning before torch is loaded unless the user chose a policy, and --threads sets torch's thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli.cli import main
from automod_cli.threads import SPIN_COUNT, WAIT_VARIABLES, configure_waiting, wait_environment


def test_a_short_spin_unless_the_user_chose_how_threads_wait():
    assert wait_environment({}) == {"GOMP_SPINCOUNT": str(SPIN_COUNT)} and 0 < SPIN_COUNT < 300_000
    assert wait_environment({"OMP_WAIT_POLICY": "ACTIVE"}) == {} and wait_environment({"GOMP_SPINCOUNT": "5"}) == {}
    environ = {"PATH": "/bin"}
    configure_waiting(environ)
    assert environ == {"PATH": "/bin", "GOMP_SPINCOUNT": str(SPIN_COUNT)}


@pytest.mark.parametrize("preset, expected", [({}, str(SPIN_COUNT)), ({"GOMP_SPINCOUNT": "7"}, "7"),
                                              ({"OMP_WAIT_POLICY": "PASSIVE"}, None)])
def test_the_console_script_sets_it_before_torch_is_loaded(preset, expected):
    """libgomp reads the variable when torch loads it: the entry point must set it before anything imports torch."""
    probe = ("import os, sys; from automod_cli.entry import main; sys.argv = ['automod', 'train', '--help']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded', os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES} | preset
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == f"torch not loaded {expected}"


def test_threads_sets_torch_threads_and_refuses_nonsense(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    one_line_error(main(["train", "--threads", "0"]), capsys.readouterr().err, "--threads")
    before = torch.get_num_threads()
    try:
        tiny = cli_settings({**TINY_RUN, "model.max_resolution": 4, "phase_images": 32, "workers": 0})
        assert main(["train", "--threads", "1", "--out", "run", "--device", "cpu", *tiny]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
