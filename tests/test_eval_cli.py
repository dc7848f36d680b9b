"""`automod eval ...` and `automod project` end to end on tiny checkpoints, with small random networks injected in
place of Inception and LPIPS (the real ones need pretrained weights, which tests never load)."""

from __future__ import annotations

import csv
import functools
import hashlib
import json

import numpy as np
import pytest
import torch
import typer.main
from PIL import Image
from tiny_models import TinyDistance, TinyFeatures, random_h5, tiny_model

from automod_cli import __version__
from automod_cli.checkpoint import save_model
from automod_cli.cli import main
from automod_cli.commands.eval import eval_app
from automod_cli.commands.options import REF_DATA, TEST_DATA
from automod_cli.config import ModelConfig
from automod_cli.features import weights
from automod_cli.features.nets import LPIPS_MIN_SIDE
from automod_cli.locate import load_model
from automod_cli.metrics.builtin.factor_net import TrainingPlan
from automod_cli.metrics.registry import COLUMNS, INCEPTION, LPIPS, METRICS, Metric
from automod_cli.models import Automodulator
from automod_cli.ops import load_images


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Two tiny checkpoints (AdaIN trained on ref.h5, classic), a test file, injected networks, empty caches."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for weight in (weights.INCEPTION, weights.ALEXNET, weights.VGG16):
        monkeypatch.delenv(weight.env_var, raising=False)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=0: False)
    ref, test = random_h5(tmp_path / "ref.h5", 24, "train", 0), random_h5(tmp_path / "test.h5", 6, "test", 1)
    shape = dict(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8))
    adain, classic = tmp_path / "adain.safetensors", tmp_path / "classic.safetensors"
    save_model(adain, Automodulator(ModelConfig(**shape)), {"train_config": {"data": str(ref)}})
    save_model(
        classic, Automodulator(ModelConfig(**shape, decoder="classic")), {"train_config": {"data": str(ref)}}
    )
    return tmp_path, adain, classic, test


@pytest.fixture
def injected(monkeypatch, setup):
    """Tiny networks instead of the pretrained ones, and placeholder weight files in the (test) torch cache."""
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    for weight in (weights.INCEPTION, weights.ALEXNET, weights.VGG16):
        (cache / weight.name).write_bytes(b"placeholder")
    torch.manual_seed(0)
    features, distance = TinyFeatures(), TinyDistance()
    monkeypatch.setattr("automod_cli.features.nets.inception_features", lambda path, device: features)
    monkeypatch.setattr("automod_cli.features.nets.lpips_distance", lambda net, path, device: distance)
    return setup


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_fid_runs_on_the_recorded_training_data_and_caches_it(injected, capsys):
    _, adain, _, _ = injected
    assert main(["eval", "fid", "--model", str(adain), "--n", "20", "--batch", "8", "--json"]) == 0
    first = _json(capsys)
    assert first["metric"] == "fid" and first["fid"] > 0 and first["samples"] == 20
    assert (
        first["reference_images"] == 24
        and first["reference"].endswith("ref.h5")
        and not first["reference_cached"]
    )
    assert main(["eval", "fid", "--model", str(adain), "--n", "20", "--batch", "8", "--json"]) == 0
    second = _json(capsys)
    assert second["reference_cached"] and second["fid"] == pytest.approx(first["fid"], rel=1e-9)  # same seed


def test_fid_mix_of_a_classic_model_is_a_one_line_error(injected, capsys):
    _, _, classic, _ = injected
    assert main(["eval", "fid-mix", "--model", str(classic), "--n", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mix" in err and len(err.splitlines()) == 1


def test_ppl_and_lpips_report_json(injected, capsys):
    _, adain, _, test = injected
    assert main(["eval", "ppl", "--model", str(adain), "--n", "12", "--batch", "6", "--json"]) == 0
    result = _json(capsys)
    assert (
        result["ppl"] > 0 and result["pairs"] == 12 and result["epsilon"] == 1e-4 and result["crop"] == "face"
    )
    assert main(["eval", "lpips", "--model", str(adain), "--data", str(test), "--json"]) == 0
    result = _json(capsys)
    assert result["images"] == 6 and result["lpips"] > 0


def test_lpips_needs_test_data_for_a_model_trained_on_a_file(injected, capsys):
    _, adain, _, _ = injected
    assert main(["eval", "lpips", "--model", str(adain)]) == 2
    assert "--data" in capsys.readouterr().err


def test_compare_prints_one_table_for_two_checkpoints(injected, capsys):
    tmp, adain, classic, test = injected
    argv = [
        "eval",
        "compare",
        str(adain),
        str(classic),
        "--n",
        "8",
        "--batch",
        "4",
        "--test-data",
        str(test),
        "--out",
        str(tmp / "table"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "adain.safetensors" in out and "classic.safetensors" in out and "FID-MIX" in out
    with open(tmp / "table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == [str(adain), str(classic)]
    assert rows[1]["fid-mix"] == "" and float(rows[0]["fid-mix"]) > 0  # a classic decoder cannot mix
    assert float(rows[0]["lpips"]) > 0 and float(rows[1]["ppl"]) >= 0
    assert json.loads((tmp / "table.json").read_text())[1]["fid-mix"] is None
    assert main(argv) == 2  # outputs are never silently replaced
    assert "--force" in capsys.readouterr().err


def test_eval_project_writes_a_csv_and_a_plot(injected, capsys):
    tmp, adain, _, test = injected
    assert (
        main(
            [
                "eval",
                "project",
                "--model",
                str(adain),
                "--data",
                str(test),
                "--n",
                "3",
                "--steps",
                "5",
                "--out",
                str(tmp / "proj"),
            ]
        )
        == 0
    )
    with open(tmp / "proj.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["method"] for r in rows] == ["encoder"] + ["projection"] * 4 and rows[-1]["step"] == "5"
    with Image.open(tmp / "proj.png") as plot:
        assert plot.size[0] > 300
    out = capsys.readouterr().out
    assert (
        "wrote" in out and "--start mean or random" in out
    )  # from the encoder's output there is no race to report
    argv = [
        "eval",
        "project",
        "--model",
        str(adain),
        "--data",
        str(test),
        "--n",
        "3",
        "--steps",
        "5",
        "--start",
        "random",
        "--out",
        str(tmp / "race"),
        "--json",
    ]
    assert main(argv) == 0
    result = _json(capsys)
    encoder, points = result["curve"][0], {p["step"]: p for p in result["curve"][1:]}
    speedup = result["encoder_speedup"]
    assert speedup["step"] in points and speedup["seconds"] == points[speedup["step"]]["seconds"]
    assert speedup["ratio"] == pytest.approx(speedup["seconds"] / encoder["seconds"])
    assert speedup["reached"] == (points[speedup["step"]]["lpips"] <= encoder["lpips"])


def test_project_one_image_writes_the_reconstruction(injected, capsys):
    tmp, adain, _, _ = injected
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (50, 70, 4), dtype=np.uint8), "RGBA").save(
        tmp / "photo.png"
    )
    assert (
        main(["project", "photo.png", "--model", str(adain), "--steps", "4", "--start", "random", "--json"])
        == 0
    )
    result = _json(capsys)
    assert result["output"] == "photo-projected.png" and [p["step"] for p in result["curve"]] == [
        0,
        0,
        1,
        2,
        4,
    ]
    with Image.open(tmp / "photo-projected.png") as written:
        assert written.size == (32, 32)
    assert main(["project", "photo.png", "--model", str(adain), "--steps", "1"]) == 2
    (tmp / "broken.png").write_bytes(b"not an image")
    assert main(["project", "broken.png", "--model", str(adain), "--steps", "1"]) == 2


def test_missing_weights_stop_with_one_line_naming_the_file(setup, capsys):
    _, adain, _, _ = setup
    assert main(["eval", "fid", "--model", str(adain), "--n", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert weights.INCEPTION.name in err and len(err.splitlines()) == 1
    assert main(["eval", "ppl", "--model", str(adain), "--n", "4", "--net", "vgg"]) == 2
    assert weights.VGG16.name in capsys.readouterr().err


def test_project_with_the_pixel_distance_needs_no_weight_files(setup, capsys):
    """`--distance mse`: no LPIPS files anywhere (setup's caches are empty, the network unreachable), and the
    encoder's point of the curve is the mean squared error of its reconstruction, computed here independently."""
    tmp, adain, _, _ = setup
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
        tmp / "photo.png"
    )
    args = [
        "project",
        "photo.png",
        "--model",
        str(adain),
        "--steps",
        "4",
        "--crop",
        "none",
        "--device",
        "cpu",
        "--json",
    ]
    assert main([*args, "--distance", "mse"]) == 0
    curve = _json(capsys)["curve"]
    model = load_model(adain)
    x = load_images([tmp / "photo.png"], 32)
    with torch.no_grad():
        fitted = (
            model.decode(model.encode(x)).clamp(-1, 1) + 1
        ) / 2  # images are compared in range, on [0, 1]
        expected = (fitted - (x + 1) / 2).pow(2).mean().item()
    assert curve[0]["method"] == "encoder" and curve[0]["mse"] == pytest.approx(expected, rel=1e-4)
    assert curve[-1]["mse"] < curve[1]["mse"]  # the projection lowers the pixel error over its steps
    assert main([*args[:-1], "--force"]) == 2  # LPIPS, the default, still needs its file
    assert "alexnet" in capsys.readouterr().err.lower()


def _sized_distance(net, path, device):
    """A stand-in for LPIPS that, like the real one, says the smallest image side its trunk takes."""
    distance = TinyDistance()
    distance.min_side = LPIPS_MIN_SIDE[net]
    return distance


@pytest.mark.parametrize(
    "resolution, flags, advice, not_advised",
    [
        (
            16,
            ["--crop", "none"],
            "use --net vgg",
            "--crop none",
        ),  # the whole 16² image is too small for AlexNet only
        (32, ["--crop", "face"], "use --net vgg or --crop none", "--crop face"),
        (8, ["--crop", "none", "--net", "vgg"], "at least 16²", "--crop none"),  # nothing fits an 8² model
    ],
)
def test_a_too_small_lpips_window_is_refused_with_advice_the_user_did_not_already_take(
    injected, capsys, monkeypatch, resolution, flags, advice, not_advised
):
    tmp, _, _, test = injected
    monkeypatch.setattr("automod_cli.features.nets.lpips_distance", _sized_distance)
    channels = {8: (8, 8), 16: (8, 8, 8), 32: (8, 8, 8, 8)}[resolution]
    small = tmp / f"model{resolution}.safetensors"
    save_model(
        small,
        Automodulator(ModelConfig(max_resolution=resolution, latent_dim=8, channels=channels)),
        {"train_config": {"data": None}},
    )
    for command in (["lpips", "--data", str(test)], ["ppl", "--n", "4"]):
        assert main(["eval", *command, "--model", str(small), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert advice in err and not_advised not in err.split("needs")[1].split(":", 1)[1], err
        assert len(err.splitlines()) == 1


def test_the_weights_are_checked_before_the_data_and_both_before_the_model_is_loaded(
    setup, capsys, monkeypatch
):
    tmp, adain, _, _ = setup
    loads = []
    monkeypatch.setattr(
        "automod_cli.locate.model_from_checkpoint", lambda *args, **kwargs: loads.append(args)
    )
    missing = str(tmp / "missing.h5")
    for command, weight in ((["fid", "--n", "4"], weights.INCEPTION), (["lpips"], weights.ALEXNET)):
        assert main(["eval", *command, "--model", str(adain), "--data", missing]) == 2
        err = capsys.readouterr().err
        assert weight.name in err and "missing.h5" not in err
    assert loads == []  # nothing heavy before the checks


def test_a_missing_data_file_stops_before_any_network_is_built(injected, capsys, monkeypatch):
    _, adain, _, _ = injected
    built = []
    monkeypatch.setattr(
        "automod_cli.features.nets.inception_features", lambda path, device: built.append(path)
    )
    monkeypatch.setattr(
        "automod_cli.features.nets.lpips_distance", lambda net, path, device: built.append(path)
    )
    for command in (["fid", "--n", "4"], ["lpips"]):
        assert main(["eval", *command, "--model", str(adain), "--data", "missing.h5"]) == 2
        assert "missing.h5" in capsys.readouterr().err
    assert built == []


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_every_score_carries_its_protocol(injected, capsys):
    """--json's protocol: count, resolution, crop, resizing, the feature network's file with its SHA-256, the
    reference (and its cached statistics with their SHA-256), seed, batch and automod's version."""
    tmp, adain, _, test = injected
    assert (
        main(["eval", "fid", "--model", str(adain), "--n", "10", "--batch", "5", "--seed", "4", "--json"])
        == 0
    )
    protocol = _json(capsys)["protocol"]
    inception = weights.cache_dir() / weights.INCEPTION.name
    assert protocol["images"] == 10 and protocol["unit"] == "samples" and protocol["resolution"] == 32
    assert protocol["crop"] is None and "bilinear to 299×299" in protocol["resize"]
    assert protocol["feature_network"] == {
        "name": "tiny-features",
        "file": str(inception),
        "sha256": _sha(inception),
    }
    statistics = protocol["reference"]["statistics"]
    assert statistics["file"].startswith(str(tmp / "cache")) and statistics["sha256"] == _sha(
        statistics["file"]
    )
    assert protocol["reference"]["data"].endswith("ref.h5") and protocol["reference"]["images"] == 24
    assert protocol["model"] == {"file": str(adain), "sha256": _sha(adain)}
    assert (protocol["seed"], protocol["batch"], protocol["automod_version"]) == (4, 5, __version__)
    assert (
        main(["eval", "lpips", "--model", str(adain), "--data", str(test), "--crop", "center", "--json"]) == 0
    )
    protocol = _json(capsys)["protocol"]
    alexnet = weights.cache_dir() / weights.ALEXNET.name
    assert protocol["images"] == 6 and protocol["crop"] == "center" and protocol["resize"] == "none"
    assert protocol["feature_network"] == {
        "name": "lpips-v0.1-alex",
        "file": str(alexnet),
        "sha256": _sha(alexnet),
    }
    assert main(["eval", "ppl", "--model", str(adain), "--n", "4"]) == 0  # printed too
    out = capsys.readouterr().out
    assert "protocol" in out and _sha(alexnet) in out and __version__ in out


def test_compare_stores_each_runs_protocol(injected, capsys):
    tmp, adain, _, test = injected
    argv = [
        "eval",
        "compare",
        str(adain),
        "--metrics",
        "fid,lpips",
        "--n",
        "8",
        "--batch",
        "4",
        "--test-data",
        str(test),
        "--out",
        str(tmp / "table"),
        "--json",
    ]
    assert main(argv) == 0
    [row] = _json(capsys)
    assert set(row["protocol"]) == {"fid", "lpips"} and row["protocol"]["fid"]["images"] == 8
    assert row["protocol"]["lpips"]["feature_network"]["name"] == "lpips-v0.1-alex"
    assert json.loads((tmp / "table.json").read_text())[0]["protocol"] == row["protocol"]


def _options_of(metric: Metric) -> list[str]:
    """The options `automod eval NAME` takes, in help order, from what its record says the metric reads."""
    options = ["--model", *(["--data"] if metric.data else []), "--n"]
    options += ["--scales"] if metric.scales else []
    options += ["--mix"] if metric.mix_variant else []
    options += ["--crop", "--net"] if metric.crops else []
    options += ["--batch", *(["--grid", "--force"] if metric.scales else [])]
    options += ["--weights"] if {INCEPTION, LPIPS} & set(metric.networks) else []
    return options + ["--device", *(["--seed"] if metric.seeded else []), "--json"]


def test_every_metric_record_is_a_command_and_every_column_a_compare_metric(capsys):
    """Each record has its `automod eval NAME`, written out in commands/eval.py, taking the options its record
    names (in the same order in every command), its help, count and batch size; `eval compare --metrics` accepts
    every column of the records."""
    group = typer.main.get_command(eval_app)
    assert set(group.commands) - {"compare", "weights", "project"} == {metric.name for metric in METRICS}
    for metric in METRICS:
        command = group.commands[metric.name]
        options = {param.opts[0]: param for param in command.params}
        assert list(options) == _options_of(metric), metric.name
        assert command.help == f"{metric.help}\n\nExample: {metric.example}"
        count = options["--n"]
        assert (count.default, count.help) == (metric.count, metric.count_help)
        assert options["--batch"].default == metric.batch
        if metric.data:
            assert options["--data"].help == (REF_DATA if metric.data == "reference" else TEST_DATA).help
        assert main(["eval", metric.name, "--help"]) == 0
        text = capsys.readouterr().out
        assert all(option in text for option in options)
    assert main(["eval", "compare", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(column in text for column in COLUMNS)


def test_fd_builtin_mix_is_fd_builtin_with_mix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        "automod_cli.metrics.builtin.factor_net.TrainingPlan",
        functools.partial(TrainingPlan, images=64, steps=2, batch_size=32),
    )
    save_model(tmp_path / "m.safetensors", tiny_model(), {"train_config": {"data": None}})
    argv = ["--model", "m.safetensors", "--n", "8", "--batch", "8", "--json"]
    assert main(["eval", "fd-builtin", *argv, "--mix"]) == 0
    flag = _json(capsys)
    assert main(["eval", "fd-builtin-mix", *argv]) == 0
    alias = _json(capsys)
    assert (
        flag["metric"] == alias["metric"] == "fd-builtin-mix"
        and flag["fd-builtin-mix"] == alias["fd-builtin-mix"]
    )


def test_asking_lpips_for_more_test_images_than_there_are_is_a_one_line_error(injected, capsys):
    _, adain, _, test = injected  # test.h5 holds 6 images
    assert main(["eval", "lpips", "--model", str(adain), "--data", str(test), "--n", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "6 images" in err and "lower --n" in err and len(err.splitlines()) == 1
