"""LIA through the command line: `automod train --model lia` in two stages, then the image operations, metrics,
latent fine-tuning (LIA Eq. 13) and `automod info` on its checkpoint; and `automod eval compare` over a run of
every model kind. Small random networks stand in for VGG conv4_3, Inception and LPIPS (tests load no weights)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from test_lia import STAGE1, TINY, TOTAL, tiny_features
from tiny_models import TinyDistance, TinyFeatures, cli_settings, one_line_error, random_h5

from automod_cli import ops
from automod_cli.checkpoint import read_meta, run_checkpoints, save_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig
from automod_cli.images import to_uint8
from automod_cli.features import weights
from automod_cli.metrics.data import open_eval_data
from automod_cli.ops.projection import ProjectionSettings, project
from automod_cli.models import Automodulator
from automod_cli.models.latents import assign
from automod_cli.models.lia import LiaModel
from automod_cli.training.lia import run as lia_training
from data_prep.builtin import generate

SETTINGS = cli_settings(TINY)
RUN = Path("runs") / "builtin-lia"


@pytest.fixture(scope="module")
def lia_run(tmp_path_factory):
    """A LIA run trained by `automod train`: stage 1, then stage 2 with --resume and --weights (the VGG loader
    replaced by a tiny feature net that records the path it was given)."""
    folder = tmp_path_factory.mktemp("lia")
    asked = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(lia_training, "vgg_conv43", lambda path, device: asked.append(path) or tiny_features())
        first = main(["train", "--model", "lia", "--stage", "1", *SETTINGS, "--device", "cpu"])
        stage_one = run_checkpoints(RUN)[-1]
        second = main(
            ["train", "--stage", "2", "--resume", str(RUN), "--weights", "vgg16.pth", "--device", "cpu"]
        )
    return SimpleNamespace(run=folder / RUN, codes=(first, second), stage_one=folder / stage_one, asked=asked)


@pytest.fixture
def workdir(tmp_path, monkeypatch, lia_run):
    """A working folder with two built-in pictures, stand-in LPIPS/Inception networks and placeholder weight files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for weight in (weights.INCEPTION, weights.ALEXNET, weights.VGG16):
        monkeypatch.delenv(weight.env_var, raising=False)
        weights.cache_dir().mkdir(parents=True, exist_ok=True)
        (weights.cache_dir() / weight.name).write_bytes(b"placeholder")
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=0: False)
    torch.manual_seed(0)
    distance, features = TinyDistance(), TinyFeatures()
    monkeypatch.setattr("automod_cli.features.nets.lpips_distance", lambda net, path, device: distance)
    monkeypatch.setattr("automod_cli.features.nets.inception_features", lambda path, device: features)
    for i, picture in enumerate(generate(2, seed=5)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"{i}.png")
    return SimpleNamespace(folder=tmp_path, run=lia_run.run, distance=distance)


def test_train_runs_stage_one_then_stage_two_from_the_command_line(lia_run):
    assert lia_run.codes == (0, 0)
    assert lia_run.asked == [Path("vgg16.pth")]  # --weights reaches stage 2's perceptual loss, and only it
    first, last = read_meta(lia_run.stage_one), read_meta(run_checkpoints(lia_run.run)[-1])
    assert (first["kind"], first["stage"], first["images_seen"]) == ("lia", 1, STAGE1)
    assert (last["kind"], last["stage"], last["images_seen"]) == ("lia", 2, TOTAL)
    before, after = load_file(str(lia_run.stage_one)), load_file(str(run_checkpoints(lia_run.run)[-1]))
    assert not any(k.startswith("encoder.") for k in before) and any(k.startswith("encoder.") for k in after)
    assert all(
        torch.equal(v, after[k]) for k, v in before.items() if k.startswith("decoder")
    )  # g* frozen in stage 2
    saved = json.loads((lia_run.run / "config.json").read_text())
    assert (
        saved["coupling_hidden"] == 8
        and saved["encoder_images"] == 32
        and saved["train"]["model"]["max_resolution"] == 8
    )


def test_train_refuses_what_lia_cannot_use_in_one_line(workdir, capsys):
    (weights.cache_dir() / weights.VGG16.name).unlink()
    one_line_error(
        main(["train", "--model", "lia", *SETTINGS, "--out", "fresh"]),
        capsys.readouterr().err,
        "vgg16-397923af.pth",
    )
    assert not run_checkpoints(Path("fresh"))  # the weights are looked up before any training
    one_line_error(
        main(["train", "--model", "lia", "--decoder", "classic"]), capsys.readouterr().err, "AdaIN"
    )
    one_line_error(
        main(["train", "--model", "lia", "--reconstruction", "l1"]),
        capsys.readouterr().err,
        "--reconstruction",
    )
    one_line_error(main(["train", "--model", "lia", "--compile"]), capsys.readouterr().err, "--compile")
    one_line_error(main(["train", "--stage", "1"]), capsys.readouterr().err, "LIA")
    one_line_error(
        main(["train", "--resume", str(workdir.run), "--kimg", "1"]), capsys.readouterr().err, "--kimg"
    )


def test_info_shows_the_lia_kind_and_config_of_each_stage(workdir, lia_run, capsys):
    assert main(["info", str(workdir.run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    meta = read_meta(run_checkpoints(workdir.run)[-1])
    assert shown["kind"] == "lia" and shown["stage"] == 2 and shown["resolution"] == 8
    assert (
        shown["model_config"] == meta["lia_config"]["model"] and shown["model_config"]["latent"] == "gaussian"
    )
    assert shown["lia_config"] == {
        "coupling_layers": 8,
        "coupling_hidden": 8,
        "coupling_depth": meta["lia_config"]["coupling_depth"],
    }
    assert "train_config" not in shown and shown["lia_train_config"]["r1_gamma"] == 10.0
    assert shown["parameters"]["encoder"] > 0
    assert main(["info", str(lia_run.stage_one), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stage"] == 1 and first["parameters"]["encoder"] == 0  # no encoder before stage 2


def test_reconstruct_mix_interpolate_and_sample_use_y_space(workdir):
    run = str(workdir.run)
    assert main(["reconstruct", "0.png", "1.png", "--model", run, "--out", "recon.png"]) == 0
    assert main(["mix", "0.png", "1.png", "--model", run, "--layers", "1:2", "--out", "mix.png"]) == 0
    assert main(["interpolate", "0.png", "1.png", "--model", run, "--steps", "3", "--out", "path.png"]) == 0
    assert main(["sample", "--model", run, "--n", "2", "--out", "samples"]) == 0
    model = ops.load_model(workdir.run)
    assert isinstance(model, LiaModel) and Path("recon.png").exists() and Path("samples/grid.png").exists()
    x = ops.load_images([Path("0.png"), Path("1.png")], model.resolution)
    with torch.no_grad():
        y = model.encode(x)
        mixed = model.decode(assign(y[:1], y[1:], range(1, 2), 2))[0]  # B's 8² block on A
        middle = model.decode((y[:1] + y[1:]) / 2)[0]  # LIA interpolates on straight lines in y-space
    written = np.asarray(Image.open("mix.png"))
    assert np.array_equal(written, to_uint8(mixed))
    assert not np.array_equal(written, to_uint8(model.decode(y[:1])[0]))
    strip = ops.interpolate(model, y[0], y[1], 3)
    torch.testing.assert_close(strip[1], middle, atol=1e-5, rtol=1e-5)


def test_eval_lpips_measures_the_lia_reconstructions(workdir, capsys):
    assert main(["eval", "lpips", "--model", str(workdir.run), "--n", "8", "--crop", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = ops.load_model(workdir.run)
    x = torch.stack([open_eval_data(None, 8, "test").dataset[i] for i in range(8)])
    with torch.no_grad():
        expected = workdir.distance(x, model.decode(model.encode(x)).clamp(-1, 1)).mean()
    assert result["images"] == 8 and result["lpips"] == pytest.approx(expected.item(), rel=1e-5)


def test_project_fine_tunes_y_from_the_encoder(workdir, capsys):
    """LIA Eq. 13: y starts at f(x) and moves freely (no projection onto a sphere), lowering the distance."""
    argv = [
        "project",
        "0.png",
        "--model",
        str(workdir.run),
        "--steps",
        "10",
        "--lr",
        "0.05",
        "--crop",
        "none",
        "--json",
    ]
    assert main([*argv, "--out", "fit.png"]) == 0
    curve = json.loads(capsys.readouterr().out)["curve"]
    encoder, first, last = curve[0], curve[1], curve[-1]
    assert first["step"] == 0 and first["lpips"] == pytest.approx(encoder["lpips"], rel=1e-5)
    assert last["step"] == 10 and last["lpips"] < first["lpips"]
    model = ops.load_model(workdir.run)
    x = ops.load_images([Path("0.png")], model.resolution)
    fit = project(
        model, x, workdir.distance, workdir.distance, ProjectionSettings(steps=3, lr=0.05), crop_mode="none"
    )
    with torch.no_grad():
        y = model.encode(x).clone().requires_grad_(True)
    adam = torch.optim.Adam([y], lr=0.05)  # the reference: plain Adam on y, nothing projected after a step
    for _ in range(3):
        adam.zero_grad()
        fitted = model.decode(y)
        (workdir.distance(x, fitted) + (x - fitted).pow(2).flatten(1).mean(1)).sum().backward()
        adam.step()
    torch.testing.assert_close(fit.latents, y.detach())
    assert abs(y.norm().item() - 1) > 0.05  # a projection onto the unit sphere would have shown
    generator = torch.Generator().manual_seed(4)
    random = project(
        model,
        x,
        workdir.distance,
        workdir.distance,
        ProjectionSettings(steps=0, start="random"),
        crop_mode="none",
        generator=generator,
    )
    torch.testing.assert_close(random.latents, model.sample_latents(1, torch.Generator().manual_seed(4)))


def _fake_run(folder: Path, kind: str, **shape) -> Path:
    """A run directory whose one checkpoint holds an untrained model of `kind`."""
    model = Automodulator(ModelConfig(max_resolution=8, latent_dim=16, channels=(16, 16), **shape))
    save_model(
        folder / kind / "checkpoints" / "ckpt-0000000000.safetensors",
        model,
        {"train_config": {"kind": kind, "data": None}},
    )
    return folder / kind


def test_compare_gives_one_row_per_run_of_every_kind(workdir, capsys):
    ref, test = random_h5(Path("ref.h5"), 16, "train", 0), random_h5(Path("test.h5"), 8, "test", 1)
    runs = [
        _fake_run(Path("runs"), "automod"),
        _fake_run(Path("runs"), "pioneer", decoder="classic"),
        _fake_run(Path("runs"), "vae", latent="gaussian", variational=True),
        _fake_run(Path("runs"), "wae", latent="gaussian"),
        workdir.run,
    ]
    argv = [
        "eval",
        "compare",
        *map(str, runs),
        "--n",
        "8",
        "--batch",
        "4",
        "--data",
        str(ref),
        "--test-data",
        str(test),
        "--crop",
        "none",
        "--out",
        "table",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("automod", "pioneer", "vae", "wae", "builtin-lia", "FID-MIX"))
    with open("table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == list(map(str, runs))
    assert [r["kind"] for r in rows] == ["automod", "pioneer", "vae", "wae", "lia"]
    for row in rows:
        assert float(row["lpips"]) > 0 and float(row["fid"]) > 0 and math.isfinite(float(row["ppl"]))
        assert (row["fid-mix"] == "") == (row["kind"] == "pioneer")  # only the classic decoder cannot mix
