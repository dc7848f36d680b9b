"""`automod eval compare` with the built-in metrics on runs trained for a few steps on the built-in data: each cell
equals the single command's value for the same model and seed, a group's mean and std equal numpy's over its runs,
cells a model cannot fill stay empty with the reason, and models or groups the table cannot hold are refused."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli.checkpoint import save_model
from automod_cli.locate import load_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig
from automod_cli.metrics.registry import BUILTIN_COLUMNS as BUILTIN_METRICS
from automod_cli.metrics.registry import REGISTRY, missing_reason
from automod_cli.metrics.builtin.factor_net import TrainingPlan
from automod_cli.models import Automodulator
from automod_cli.models.lia import LiaConfig, LiaModel
from data_prep.builtin import BuiltinDataset

R, N, BATCH, SEED = 16, 24, 12, 3  # 16²: the smallest resolution SSIM's 11×11 window fits
TRAIN = cli_settings({**TINY_RUN, "phase_images": 32})  # two steps per phase: 4², 8², 16²


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two AdaIN runs (training seeds 1 and 2) and a PIONEER run, each trained for six steps on the built-in data."""
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        for name, extra in (
            ("am-s1", ["--seed", "1"]),
            ("am-s2", ["--seed", "2"]),
            ("pioneer", ["--model", "pioneer"]),
        ):
            assert main(["train", *TRAIN, "--max-res", str(R), "--out", name, "--device", "cpu", *extra]) == 0
    return SimpleNamespace(
        folder=folder,
        s1=folder / "am-s1",
        s2=folder / "am-s2",
        pioneer=folder / "pioneer",
        cache=tmp_path_factory.mktemp("cache"),
    )


@pytest.fixture
def workdir(runs, tmp_path, monkeypatch):
    """A fresh working folder, a shared cache and a tiny factor-network recipe for FD_builtin."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(runs.cache))
    monkeypatch.setattr(
        "automod_cli.metrics.builtin.factor_net.TrainingPlan",
        functools.partial(TrainingPlan, images=128, steps=5, batch_size=32),
    )
    return runs


def _json(argv: list[str], capsys) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _single(run: Path, capsys) -> dict[str, float | None]:
    """The built-in metrics of one run from the single commands (`None` where the command refuses the model)."""
    size = ["--model", str(run), "--n", str(N), "--batch", str(BATCH)]
    recon = _json(["eval", "recon-truth", *size], capsys)["reconstruction"]
    values = {
        "recon-mse": recon["mse"],
        "recon-ssim": recon["ssim"],
        "mix-mse": None,
        "mix-ssim": None,
        "fd-builtin-mix": None,
    }
    values["fd-builtin"] = _json(["eval", "fd-builtin", *size, "--seed", str(SEED)], capsys)["fd-builtin"]
    if load_model(run).supports_mixing:
        truth = _json(["eval", "mix-truth", *size], capsys)["truth"]
        values.update({"mix-mse": truth["mse"], "mix-ssim": truth["ssim"]})
        values["fd-builtin-mix"] = _json(["eval", "fd-builtin", *size, "--seed", str(SEED), "--mix"], capsys)[
            "fd-builtin-mix"
        ]
    return values


def _reconstruction_mse(run: Path) -> float:
    """Pixel MSE on [0, 1] of the uint8 reconstructions of the first N test images, straight from the model."""
    model = load_model(run)
    images = torch.stack([BuiltinDataset("test", R, count=N)[i] for i in range(N)])
    with torch.no_grad():
        recon = torch.cat([model.decode(model.encode(batch), noise=False) for batch in images.split(BATCH)])
    to_uint8 = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().numpy()  # noqa: E731
    return float(np.mean(((to_uint8(recon) - to_uint8(images)) / 255.0) ** 2))


def test_builtin_cells_equal_the_single_commands_and_a_classic_decoder_cannot_mix(workdir, capsys):
    argv = [
        "eval",
        "compare",
        str(workdir.s1),
        str(workdir.pioneer),
        "--metrics",
        "builtin",
        "--n",
        str(N),
        "--batch",
        str(BATCH),
        "--seed",
        str(SEED),
        "--out",
        "table",
    ]
    rows = _json(argv, capsys)
    assert [(r["model"], r["kind"], r["statistic"]) for r in rows] == [
        (str(workdir.s1), "automod", "value"),
        (str(workdir.pioneer), "pioneer", "value"),
    ]
    for row in rows:
        single = _single(Path(row["model"]), capsys)
        assert [m for m in BUILTIN_METRICS if row[m] is None] == [
            m for m in BUILTIN_METRICS if single[m] is None
        ]
        assert all(
            row[m] == pytest.approx(single[m], rel=1e-9) for m in BUILTIN_METRICS if single[m] is not None
        )
        # float32 kernels (batch size, order) may round a few pixels to the neighbouring grey level; one such pixel
        # moves this MSE over 24·3·16² values by at most (2·1 + 1/255)/255 / 18432 ≈ 4e-7, so allow ~5 of them
        assert row["recon-mse"] == pytest.approx(_reconstruction_mse(Path(row["model"])), abs=2e-6)
    adain, classic = rows
    assert adain["missing"] == {} and 0 < adain["mix-ssim"] < 1 and adain["fd-builtin-mix"] > 0
    assert set(classic["missing"]) == {"mix-mse", "mix-ssim", "fd-builtin-mix"}
    assert all("classic decoder" in reason for reason in classic["missing"].values())
    with open("table.csv") as handle:
        table = list(csv.DictReader(handle))
    assert table[1]["mix-mse"] == "" and float(table[1]["recon-mse"]) == pytest.approx(classic["recon-mse"])


def test_a_group_reports_numpy_mean_and_std_of_its_runs(workdir, capsys):
    metrics = ["recon-ssim", "mix-mse", "fd-builtin"]
    argv = [
        "eval",
        "compare",
        str(workdir.pioneer),
        "--group",
        f"am={workdir.s1},{workdir.s2}",
        "--metrics",
        ",".join(metrics),
        "--n",
        str(N),
        "--batch",
        str(BATCH),
        "--seed",
        str(SEED),
        "--out",
        "grouped",
    ]
    rows = _json(argv, capsys)
    assert [(r["model"], r["group"], r["statistic"]) for r in rows] == [
        (str(workdir.pioneer), None, "value"),
        (str(workdir.s1), "am", "value"),
        (str(workdir.s2), "am", "value"),
        ("am", "am", "mean"),
        ("am", "am", "std"),
    ]
    seeds, mean, std = rows[1:3], rows[3], rows[4]
    assert mean["runs"] == [str(workdir.s1), str(workdir.s2)]
    for metric in metrics:
        values = np.array([row[metric] for row in seeds])
        assert values[0] != values[1]  # the two seeds trained different models
        assert mean[metric] == pytest.approx(np.mean(values), rel=1e-12)
        assert std[metric] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    alone = _json(
        [
            "eval",
            "compare",
            str(workdir.s2),
            "--metrics",
            ",".join(metrics),
            "--n",
            str(N),
            "--batch",
            str(BATCH),
            "--seed",
            str(SEED),
            "--out",
            "alone",
        ],
        capsys,
    )
    assert {m: alone[0][m] for m in metrics} == pytest.approx({m: seeds[1][m] for m in metrics}, rel=1e-9)
    with open("grouped.csv") as handle:
        statistics = [(r["model"], r["statistic"], r["mix-mse"]) for r in csv.DictReader(handle)]
    assert (
        statistics[0][2] == ""
        and statistics[3][:2] == ("am", "mean")
        and float(statistics[4][2]) == pytest.approx(std["mix-mse"])
    )
    assert main([*argv[:-1], "table", "--force"]) == 0
    out = capsys.readouterr().out
    assert "am (2 runs)" in out and "±" in out and "RECON-SSIM ↑" in out and "—" in out
    markdown = Path("table.md").read_text().splitlines()
    assert markdown[0] == "| model | kind | RECON-SSIM ↑ | MIX-MSE ↓ | FD-BUILTIN ↓ |"
    assert markdown[2].split(" | ")[:2] == [f"| {workdir.pioneer.name}", "pioneer"] and " — |" in markdown[2]
    assert markdown[3] == (
        f"| am (2 runs) | automod | {mean['recon-ssim']:.3f} ± {std['recon-ssim']:.3f} | "
        f"{mean['mix-mse']:.4f} ± {std['mix-mse']:.4f} | {mean['fd-builtin']:.2f} ± {std['fd-builtin']:.2f} |"
    )


def test_models_and_groups_the_table_cannot_hold_are_one_line_errors(workdir, tmp_path, capsys):
    on_file = tmp_path / "faces.safetensors"
    save_model(on_file, load_model(workdir.s1), {"train_config": {"data": str(tmp_path / "faces.h5")}})
    one_line_error(
        main(["eval", "compare", str(workdir.s1), str(on_file), "--metrics", "recon-mse"]),
        capsys.readouterr().err,
        "built-in dataset",
    )
    cases = [
        (["--group", f"am={workdir.s1}"], "two or more runs"),
        (["--group", f"mixed={workdir.s1},{workdir.pioneer}"], "mixes model kinds"),
        (["--group", "am"], "NAME=RUN1,RUN2"),
        (["--group", f"am={workdir.s1},{workdir.s2}", "--group", f"am={workdir.s1},{workdir.s2}"], "twice"),
        ([str(workdir.s1), "--metrics", "recon-mse,psnr"], "psnr"),
        ([], "nothing to compare"),
    ]
    for extra, word in cases:
        arguments = extra if "--metrics" in extra else [*extra, "--metrics", "builtin"]
        one_line_error(main(["eval", "compare", *arguments]), capsys.readouterr().err, word)
    assert not Path("compare.csv").exists()  # refused before any work


def test_cells_a_model_cannot_fill_say_why(workdir, tmp_path, capsys):
    shape = dict(latent_dim=8, channels=(8, 8, 8))
    stage_one = LiaModel(
        LiaConfig(model=ModelConfig(max_resolution=R, latent="gaussian", **shape)), has_encoder=False
    )
    save_model(tmp_path / "lia.safetensors", stage_one, {"train_config": {"data": None}})
    rows = _json(
        ["eval", "compare", str(tmp_path / "lia.safetensors"), "--metrics", "recon-mse,mix-ssim"], capsys
    )
    assert rows[0]["kind"] == "lia" and rows[0]["recon-mse"] is None and rows[0]["mix-ssim"] is None
    assert all("no encoder" in reason for reason in rows[0]["missing"].values())
    small = Automodulator(ModelConfig(max_resolution=8, **shape))
    assert "8² images are smaller" in missing_reason(REGISTRY["recon-truth"], small)
    assert missing_reason(REGISTRY["fd-builtin"], small) is None
