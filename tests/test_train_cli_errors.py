"""`automod train` as a newcomer meets it (issue 18): bad values, signals, short runs, damaged checkpoints and a full
disk each give one clear line, the right exit status and no lost work."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
import torch
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli.checkpoint import run_checkpoints
from automod_cli.cli import main
from automod_cli.commands.train_report import Display
from automod_cli.training import state
from automod_cli.training.state import companion_of

TINY = [*cli_settings({**TINY_RUN, "model.max_resolution": 8, "workers": 0}), "--device", "cpu"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "args, word",
    [
        (["--set", "kl_margin=abc"], "kl_margin.4"),
        (["--workers", "-1"], "--workers"),
        (["--set", "lambda_x=big"], "lambda_x"),
        (["--set", "model.latent_dim=wide"], "model.latent_dim"),
        (["--device", "tpu"], "cpu"),
    ],
)
def test_bad_values_are_one_line_before_anything_is_created(here, capsys, args, word):
    code = main(["train", *TINY, *args, "--out", "run"])
    one_line_error(code, capsys.readouterr().err, word)
    assert not (here / "run").exists()


def test_a_data_set_smaller_than_a_batch_leaves_no_run_and_names_the_setting(here, capsys):
    """A later phase's batch (8²: 64) that the data (40 images) cannot fill stops before the run directory is made,
    naming the --set that lowers it."""
    code = main(["train", *TINY, "--set", "data_limit=40", "--set", "batch_size.8=64", "--out", "run"])
    one_line_error(code, capsys.readouterr().err, "fewer than one batch of 64 at 8²")
    assert not (here / "run").exists()
    code = main(["train", *TINY, "--set", "data_limit=40", "--set", "batch_size=64", "--out", "run"])
    one_line_error(code, capsys.readouterr().err, "--set batch_size=32")
    assert not (here / "run").exists()
    assert (
        main(
            [
                "train",
                *TINY,
                "--set",
                "data_limit=40",
                "--set",
                "batch_size=32",
                "--kimg",
                "0.064",
                "--out",
                "run",
            ]
        )
        == 0
    )


def test_sigterm_stops_with_a_checkpoint_and_exit_status_143(here, capsys, monkeypatch):
    shown = Display.__call__

    def stop_at_first_log(self, event, data):
        shown(self, event, data)
        if event == "log":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Display, "__call__", stop_at_first_log)
    assert main(["train", *TINY, "--out", "run"]) == 143
    out = capsys.readouterr().out
    assert "continue with: automod train --resume run" in out
    assert run_checkpoints(here / "run")  # the checkpoint was written before the exit


def test_the_start_says_where_a_short_run_ends(here, capsys):
    assert main(["train", *TINY, "--kimg", "0.32", "--out", "run"]) == 0
    out = capsys.readouterr().out
    assert "this run ends at 320 images: 8² (α 0.50) of 8²" in out
    assert "short of 8² fully faded in" in out and "--kimg 0.512" in out
    assert main(["info", "run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["progress"] == "320 / 320 images, 8² of 8²"


def test_a_damaged_newest_checkpoint_is_passed_over_with_a_note(here, capsys):
    assert main(["train", *TINY, "--kimg", "0.256", "--out", "run"]) == 0
    pairs = run_checkpoints(here / "run")
    assert len(pairs) >= 2
    newest, older = pairs[-1], pairs[-2]
    damaged = companion_of(newest)
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--kimg", "0.32", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"passing over {newest.name}" in out and f"resuming from {older.name}" in out
    # named directly, the damaged pair is refused with the exact command for the intact one
    companion_of(pairs[0]).unlink()
    code = main(["train", "--resume", str(pairs[0]), "--device", "cpu"])
    err = capsys.readouterr().err
    one_line_error(code, err, f"{companion_of(pairs[0]).name} is missing")
    assert f"--resume {here / 'run' / 'checkpoints' / 'ckpt-'}" in err


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_older_checkpoints(here, capsys, monkeypatch):
    assert main(["train", *TINY, "--kimg", "0.128", "--out", "run"]) == 0
    before = run_checkpoints(here / "run")
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if str(f).endswith(".tmp") and ".train.pt." in str(f):
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                "data/12: file write failed"
            )
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(state.torch, "save", full_disk)
    capsys.readouterr()
    code = main(["train", "--resume", "run", "--kimg", "0.256", "--device", "cpu"])
    one_line_error(code, capsys.readouterr().err, "is full")
    assert run_checkpoints(here / "run") == before and all(companion_of(p).is_file() for p in before)
    assert not [p for p in (here / "run" / "checkpoints").iterdir() if p.name.endswith(".tmp")]


def test_progress_is_plain_lines_in_a_log_and_a_bar_that_moves_from_the_first_step(here, capsys):
    assert main(["train", *TINY, "--kimg", "0.256", "--out", "run"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "enc_loss" in x]
    # output is not a terminal here: one plain line per log interval (every 64 images) with the main losses
    assert len(lines) == 4 and all(
        re.match(r"^(4|8)² α\d\.\d\d  [\d,]+/256 images  \d+ img/s  enc_loss ", x) for x in lines
    ), lines
    assert main(["train", "--resume", "run", "--kimg", "0.32", "--device", "cpu"]) == 0
    assert "resumed from run/checkpoints/ckpt-0000000256.safetensors at 256 images" in capsys.readouterr().out
    # in a terminal the bar follows every step, not only the log intervals

    display = Display(True)
    display.live = True
    display("start", {"total": 512, "images_seen": 0})
    display("step", {"images_seen": 16, "resolution": 4, "alpha": 1.0})
    assert display.bar.tasks[0].completed == 16 and display.bar.tasks[0].fields["phase"] == "4² α1.00"
    display("done", {})


def test_fine_tuning_counts_its_own_images_and_shows_progress_before_its_end(here, capsys):
    """A fine-tune (--init) shorter than the log interval: piped, progress lines come every few percent of its own
    images (done / to do), and the start, the end and `info` count those images, not the schedule's start."""
    assert main(["train", *TINY, "--kimg", "0.128", "--out", "base"]) == 0
    capsys.readouterr()
    args = ["train", *TINY, "--init", "base", "--kimg", "0.16", "--set", "log_every=100000", "--out", "ft"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(x.startswith("this run fine-tunes") and "on 160 images" in x for x in lines), lines
    progress = [x for x in lines if "/160 images" in x]
    assert [x.split("  ")[1] for x in progress] == [f"{n}/160 images" for n in range(16, 161, 16)], lines
    assert any(x.startswith("done: 160 images of fine-tuning") for x in lines), lines
    assert main(["info", "ft", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["progress"].startswith("160 / 160 images of fine-tuning")


def test_piped_progress_comes_at_least_every_minute():
    """Between log intervals a progress line comes once a minute has passed, even below PROGRESS_SHARE of the run."""
    now = [0.0]
    display = Display(True, clock=lambda: now[0])
    display.live = False
    printed = []
    display._line = lambda text, done: (
        printed.append(text),
        setattr(display, "last_time", now[0]),
        setattr(display, "last_done", done),
    )
    display("start", {"total": 1_000_000, "images_seen": 0, "config": {}})
    for step in range(1, 5):
        now[0] += 30.0
        display("step", {"images_seen": 32 * step, "resolution": 8, "alpha": 1.0})
    assert [x.split("  ")[:3] for x in printed] == [
        ["8² α1.00", "64/1,000,000 images", "1 img/s"],
        ["8² α1.00", "128/1,000,000 images", "1 img/s"],
    ], printed
    assert printed[0].endswith(" h left")
    display("done", {})


def test_paths_are_not_broken_across_lines_in_a_log(here, capsys):
    """Piped to a file, rich wraps at 80 columns: the checkpoint and grid paths must stay whole, one per line."""
    out = "runs/" + "a-long-run-directory-name-" * 3
    assert main(["train", *TINY, "--kimg", "0.128", "--out", out]) == 0
    lines = capsys.readouterr().out.splitlines()
    done = [x for x in lines if x.startswith("done")]
    assert len(done) == 1 and done[0].endswith(f"{out}/checkpoints/ckpt-0000000128.safetensors"), lines
    assert any(x.startswith("checkpoint ") and x.endswith(".safetensors") and out in x for x in lines), lines


def test_an_unknown_model_lists_every_model_lia_included(here, capsys):
    code = main(["train", "--model", "gan", "--out", "run"])
    one_line_error(code, capsys.readouterr().err, "automod, pioneer, vae, wae, lia")


def test_resuming_a_run_without_a_checkpoint_says_so(here, capsys):
    code = main(["train", "--resume", "runs/none", "--device", "cpu"])
    one_line_error(code, capsys.readouterr().err, "there is no run at 'runs/none' to resume")
    (here / "runs" / "ft").mkdir(parents=True)
    (here / "runs" / "ft" / "config.json").write_text("{}")
    code = main(["train", "--resume", "runs/ft", "--device", "cpu"])
    err = capsys.readouterr().err
    one_line_error(code, err, "stopped before writing its first checkpoint")
    assert "pretrained" not in err
