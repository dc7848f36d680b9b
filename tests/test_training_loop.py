"""The training loop end to end on the built-in data: it learns, it resumes bit-for-bit, it stops cleanly."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import TINY_RUN, cli_settings

from automod_cli.checkpoint import read_meta, run_checkpoints
from automod_cli.cli import main
from automod_cli.locate import load_model
from automod_cli.presets import resolve_train_config
from automod_cli.training import resume, train
from data_prep.builtin import BuiltinDataset

TINY = {**TINY_RUN, "lr": 0.002}


def tiny_config(**extra):
    return resolve_train_config("builtin", {**TINY, "model.max_resolution": 8, **extra})


def test_run_writes_checkpoints_metrics_grids_and_grows(tmp_path):
    config = tiny_config()
    events = []
    result = train(config, tmp_path / "run", device="cpu", report=lambda e, d: events.append((e, d)))
    assert result.images_seen == 512 and not result.interrupted
    assert ("phase", {"resolution": 8, "images_seen": 256}) in events
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["images_seen"] for line in lines] == [64, 128, 192, 256, 320, 384, 448, 512]
    assert {line["resolution"] for line in lines} == {4, 8}
    # fade-in over the first half (128 images) of 8²; a line reports the phase of its last step (16 images earlier)
    assert lines[4]["alpha"] == (320 - 16 - 256) / 128 and lines[-1]["alpha"] == 1.0
    for key in (
        "enc_loss",
        "dec_loss",
        "kl_real",
        "kl_fake",
        "recon",
        "layer_loss",
        "latent_cos",
        "robust_alpha",
        "images_per_s",
    ):
        assert key in lines[-1] and lines[-1][key] == lines[-1][key]  # present and not NaN
    assert [p.name for p in run_checkpoints(tmp_path / "run")][-1] == "ckpt-0000000512.safetensors"
    model = load_model(tmp_path / "run")
    assert model.resolution == 8 and model.alpha == 1.0
    grids = sorted(p.name for p in (tmp_path / "run" / "grids").iterdir())
    assert grids == [f"{r}-{kind}.png" for r in (4, 8) for kind in ("mix", "reconstructions", "samples")]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["phase_images"]["8"] == 256


@pytest.mark.parametrize(
    # the pool fills and swaps at 4²; the AdaIN maps' own Adam is part of where the run stands
    "recipe",
    [{}, {"recipe": "authors", "fake_pool": 24}, {"adain_cotrain": "off"}],
)
def test_resume_continues_bit_for_bit(tmp_path, recipe):
    config = tiny_config(**recipe)
    straight = train(config, tmp_path / "a", device="cpu")
    first = train(config, tmp_path / "b", device="cpu", stop_after_images=192)  # stops mid-4²
    assert first.images_seen == 192
    second = resume(first.checkpoint, device="cpu", stop_after_images=320)  # into the 8² fade
    resumed = resume(second.checkpoint, device="cpu")
    assert resumed.images_seen == straight.images_seen == 512
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    lines_a = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    lines_b = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    timing = ("images_per_s", "elapsed_s")  # wall-clock measurements differ; everything else is equal
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k not in timing} for x in lines]
    assert strip(lines_a) == strip(lines_b)
    # the training time carries over resumes: each record's elapsed_s grows, and images/s is the rate of its own
    # interval (images since the previous record over the time since it, within the rounding of both)
    records = [json.loads(x) for x in lines_b]
    assert all(b["elapsed_s"] > a["elapsed_s"] > 0 for a, b in zip(records, records[1:]))
    assert read_meta(resumed.checkpoint)["elapsed_s"] == pytest.approx(records[-1]["elapsed_s"], abs=1e-3)
    for a, b in zip(records, records[1:]):
        if b["images_seen"] not in (256, 384):  # the first record after each resume counts from the resume
            assert b["images_per_s"] * (b["elapsed_s"] - a["elapsed_s"]) == pytest.approx(
                b["images_seen"] - a["images_seen"], rel=0.05
            )


def test_sigint_writes_a_checkpoint_and_stops(tmp_path):
    config = tiny_config()

    def interrupt(event, data):
        if event == "log" and data["images_seen"] == 64:
            os.kill(os.getpid(), signal.SIGINT)

    result = train(config, tmp_path / "run", device="cpu", report=interrupt)
    assert result.interrupted and result.images_seen == 64
    assert result.checkpoint.name == "ckpt-0000000064.safetensors" and result.checkpoint.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_training_lowers_reconstruction_error(tmp_path):
    # L_j on, as this test was sized with it (the builtin preset has it off since issue 23)
    config = tiny_config(
        **{
            "model.max_resolution": 4,
            "phase_images": 6144,
            "data_limit": 512,
            "lr": 0.003,
            "layer_loss": True,
        }
    )

    held_out = torch.stack([BuiltinDataset("test", resolution=4, count=64)[i] for i in range(64)])

    def error(model):
        with torch.no_grad():
            return (model.decode(model.encode(held_out)) - held_out).pow(2).mean().item()

    result = train(config, tmp_path / "run", device="cpu", stop_after_images=16)
    before = error(load_model(result.checkpoint))
    result = resume(result.checkpoint, device="cpu")
    after = error(load_model(result.checkpoint))
    assert after < 0.5 * before, (before, after)


def test_kimg_sets_the_length_and_extends_a_resumed_run(tmp_path):
    config = tiny_config(total_kimg=0.128)  # shorter than the 512-image schedule: stops inside 4²
    first = train(config, tmp_path / "run", device="cpu")
    assert first.images_seen == 128 and not first.interrupted
    # past the schedule the last phase goes on at full fade-in
    longer = resume(first.checkpoint, device="cpu", total_kimg=0.64)
    assert longer.images_seen == 640
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["resolution"] == 8 and lines[-1]["alpha"] == 1.0


def test_train_command_contract_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "train",
                *cli_settings(TINY),
                "--max-res",
                "4",
                "--kimg",
                "0.032",
                "--out",
                "r",
                "--device",
                "cpu",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model"]["max_resolution"] == 4 and saved["total_kimg"] == 0.032 and saved["seed"] == 3
    assert [p.name for p in run_checkpoints(tmp_path / "r")][-1] == "ckpt-0000000032.safetensors"
    capsys.readouterr()
    assert main(["train", "--data", "missing.h5", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.h5" in err and "automod prep" in err and len(err.splitlines()) == 1
