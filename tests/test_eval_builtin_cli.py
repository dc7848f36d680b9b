"""`automod eval mix-truth | recon-truth | fd-builtin` end to end on tiny checkpoints: JSON fields and sane values,
tables, and one-line errors for models the ground truth does not apply to."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess

import pytest
from PIL import Image
from tiny_models import tiny_model

from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.metrics.builtin.factor_net import TrainingPlan


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    """A tiny AdaIN model recorded as trained on the built-in data, one trained on a file, a classic one; a tiny
    factor-network recipe and an empty cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        "automod_cli.metrics.builtin.factor_net.TrainingPlan",
        functools.partial(TrainingPlan, images=128, steps=5, batch_size=32),
    )
    paths = {name: tmp_path / f"{name}.safetensors" for name in ("builtin", "file", "classic")}
    save_model(paths["builtin"], tiny_model(), {"train_config": {"data": None}})
    save_model(paths["file"], tiny_model(), {"train_config": {"data": str(tmp_path / "faces.h5")}})
    save_model(paths["classic"], tiny_model("classic"), {"train_config": {"data": None}})
    return paths


def _run_json(argv: list[str], capsys) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _sane(scores: dict) -> bool:
    return (
        0 <= scores["mse"] <= 1
        and scores["mse_std"] >= 0
        and -1 <= scores["ssim"] <= 1
        and scores["ssim_std"] >= 0
    )


def test_mix_truth_reports_the_truth_and_the_three_wrong_answers(checkpoints, capsys):
    result = _run_json(
        ["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "6", "--batch", "4"], capsys
    )
    assert result["metric"] == "mix-truth" and result["pairs"] == 6 and result["resolution"] == 32
    assert result["b_blocks"] == [
        0,
        1,
    ]  # coarse: blocks 0 and 1 (4², 8²), from B as `automod mix A B --coarse`
    assert result["truth_is"] == "B's layout in A's colours" and result["exact_truth"]
    assert all(_sane(result[name]) for name in ("truth", "swapped", "a", "b"))
    mid = _run_json(
        ["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "6", "--scales", "2:4"], capsys
    )
    assert mid["b_blocks"] == [2, 3] and mid["truth"]["mse"] != result["truth"]["mse"]
    assert main(["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "3"]) == 0
    table = capsys.readouterr().out
    assert "B's layout in A's colours" in table and "blocks 0-1" in table and "SSIM" in table


def test_mix_truth_without_block_0_has_a_layout_in_b_colours(checkpoints, capsys):
    """B driving the colour blocks (16², 32²) leaves A the layout: the truth is A's layout in B's colours."""
    argv = ["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "4"]
    coarse, mid = _run_json(argv, capsys), _run_json([*argv, "--scales", "mid"], capsys)
    assert mid["b_blocks"] == [2, 3] and mid["layout_blocks"] == [0, 1] and mid["exact_truth"]
    assert mid["truth_is"] == "A's layout in B's colours" and mid["swapped_is"] == "B's layout in A's colours"
    mix_coarse = _run_json([*argv, "--scales", "2:4"], capsys)  # the same blocks by index
    assert mix_coarse["truth"] == mid["truth"] and mid["truth"] != coarse["truth"]
    split = _run_json([*argv, "--scales", "1:3"], capsys)  # 8² to B, 4² to A: no exact truth
    assert split["truth_is"] == "A's layout in B's colours" and not split["exact_truth"]
    assert main([*argv, "--scales", "1:3"]) == 0
    out = capsys.readouterr().out
    assert "truth: A's layout in B's colours" in out and "split the layout blocks" in out


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder that refuses new files: chmod for a normal user, a read-only tmpfs for root."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("running as root and cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
        folder.chmod(0o755)


def _no_work(monkeypatch):
    monkeypatch.setattr(
        "automod_cli.locate.model_from_checkpoint", lambda *a, **k: pytest.fail("the model was loaded")
    )


@pytest.mark.parametrize("name", ["g.png", "new/g.png"])
def test_a_grid_in_a_read_only_folder_is_refused_before_any_work(
    checkpoints, capsys, monkeypatch, read_only_folder, name
):
    _no_work(monkeypatch)
    grid = read_only_folder / name
    assert (
        main(["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "2", "--grid", str(grid)])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "not writable" in err and str(read_only_folder) in err and len(err.splitlines()) == 1
    assert "choose another --grid" in err
    assert main(["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--grid", "g.txt"]) == 2
    assert (
        "suffix '.txt'" in capsys.readouterr().err
    )  # an image type automod does not write: refused as early


def test_a_read_only_cache_named_by_xdg_cache_home_is_refused_before_any_work(
    checkpoints, capsys, monkeypatch, read_only_folder
):
    _no_work(monkeypatch)
    monkeypatch.setattr("automod_cli.metrics.compare.compare", lambda *a, **k: pytest.fail("compare ran"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(read_only_folder))
    for argv in (
        ["eval", "fd-builtin", "--model", str(checkpoints["builtin"]), "--n", "4"],
        ["eval", "compare", str(checkpoints["builtin"]), "--metrics", "fd-builtin", "--out", "t"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "XDG_CACHE_HOME" in err and "not a writable folder" in err and len(err.splitlines()) == 1


def test_mix_truth_grid_is_written_and_never_silently_replaced(checkpoints, capsys, tmp_path):
    grid = tmp_path / "mix-truth.png"
    argv = ["eval", "mix-truth", "--model", str(checkpoints["builtin"]), "--n", "3", "--grid", str(grid)]
    assert main(argv) == 0
    width, height = Image.open(grid).size
    assert (
        width > 5 * 32 and width > height > 3 * 32
    )  # 5 columns (A, B, mix, truth, swapped), 3 rows under a caption
    before = grid.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err and grid.read_bytes() == before
    assert main([*argv, "--force"]) == 0


def test_recon_truth_sets_reconstructions_beside_the_mean_image(checkpoints, capsys):
    result = _run_json(["eval", "recon-truth", "--model", str(checkpoints["builtin"]), "--n", "5"], capsys)
    assert result["metric"] == "recon-truth" and result["images"] == 5 and result["resolution"] == 32
    assert _sane(result["reconstruction"]) and _sane(result["mean_image"])
    assert (
        result["mean_image"]["mse"] < 0.1 and result["mean_image"]["ssim"] > 0
    )  # the baseline is a real image


def test_fd_builtin_trains_caches_and_reuses_the_factor_network(checkpoints, capsys):
    argv = ["eval", "fd-builtin", "--model", str(checkpoints["builtin"]), "--n", "24", "--batch", "12"]
    first = _run_json(argv, capsys)
    assert first["metric"] == "fd-builtin" and first["fd-builtin"] > 0 and first["samples"] == 24
    assert (
        first["reference_images"] == 1024 and not first["reference_cached"] and not first["extractor_cached"]
    )
    assert first["extractor"].startswith("factor-net-32px-v")
    network = first["protocol"]["feature_network"]  # the cached factor network, hashed
    assert network["name"] == first["extractor"] and network["file"].endswith(".safetensors")
    assert network["sha256"] == hashlib.sha256(open(network["file"], "rb").read()).hexdigest()
    assert first["protocol"]["reference"]["statistics"]["file"].endswith(f"{first['extractor']}.npz")
    second = _run_json(argv, capsys)
    assert (
        second["extractor_cached"]
        and second["reference_cached"]
        and second["fd-builtin"] == pytest.approx(first["fd-builtin"])
    )
    mixed = _run_json([*argv, "--mix"], capsys)
    assert mixed["metric"] == "fd-builtin-mix" and mixed["fd-builtin-mix"] > 0


@pytest.mark.parametrize("command", ["mix-truth", "recon-truth", "fd-builtin"])
def test_a_model_trained_on_a_file_is_a_one_line_error(checkpoints, capsys, command):
    assert main(["eval", command, "--model", str(checkpoints["file"]), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "built-in dataset" in err and len(err.splitlines()) == 1


def test_mixing_a_classic_decoder_is_a_one_line_error(checkpoints, capsys):
    assert main(["eval", "mix-truth", "--model", str(checkpoints["classic"]), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "AdaIN" in err and len(err.splitlines()) == 1
