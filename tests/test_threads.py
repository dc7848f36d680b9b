"""`automod train --threads N`: torch's thread count for the run, a nonsense count refused in one line."""

from __future__ import annotations

import torch
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli.cli import main


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
