"""`--device NAME` (automod_cli.devices.pick_device): valid names give the device, anything else one line listing the
valid ones; CUDA is simulated (device counts patched) so every case runs on a CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from automod_cli import devices
from automod_cli.cli import main
from automod_cli.errors import AutomodError


def gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def refusal(name: str) -> str:
    with pytest.raises(AutomodError) as info:
        devices.pick_device(name)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_valid_names_give_their_device(monkeypatch):
    gpus(monkeypatch, 0)
    assert devices.pick_device("auto") == torch.device("cpu") == devices.pick_device("cpu")
    gpus(monkeypatch, 2)
    assert devices.pick_device("auto") == torch.device("cuda")
    assert devices.pick_device("cuda") == torch.device("cuda")
    assert devices.pick_device("cuda:1") == torch.device("cuda", 1)
    assert devices.pick_device("CUDA:0") == torch.device("cuda", 0)


@pytest.mark.parametrize(
    "name", ["tpu", "xla", "meta", "cuda:x", "cuda:-1", "cuda:", "cpu:1", "gpu", "", "cuda:1:2"]
)
def test_unknown_or_malformed_names_list_the_valid_ones(monkeypatch, name):
    gpus(monkeypatch, 2)
    text = refusal(name)
    assert f"'{name}'" in text and "auto, cpu, cuda, cuda:0 to cuda:1" in text
    gpus(monkeypatch, 0)
    assert "auto, cpu, cuda, cuda:N" in refusal(name)


def test_cuda_without_a_gpu_and_indices_past_the_last_gpu_are_refused(monkeypatch):
    gpus(monkeypatch, 0)
    for name in ("cuda", "cuda:0", "cuda:3", "CUDA:7"):
        assert refusal(name) == devices.NO_CUDA.format(name=name.lower())
    assert refusal("cuda:7").startswith("--device cuda:7 was asked for")
    gpus(monkeypatch, 2)
    text = refusal("cuda:2")
    assert "only 2 CUDA GPUs are visible" in text and "cuda:0 to cuda:1" in text
    gpus(monkeypatch, 1)
    assert "only 1 CUDA GPU is visible" in refusal("cuda:1")


def test_image_and_eval_commands_refuse_a_bad_device_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    gpus(monkeypatch, 0)
    for args in (["sample", "--n", "1"], ["reconstruct", "x.png"], ["eval", "fid"], ["project", "x.png"]):
        for name in ("tpu", "cuda:x"):
            assert main([*args, "--device", name]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "Traceback" not in err and "auto, cpu, cuda" in err, err
    assert list(tmp_path.iterdir()) == []  # refused before any output (or folder) was made
