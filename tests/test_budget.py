"""The time budget (`automod train --time-budget M`, training/budget.py): the last phase shortens so that training
ends in time, its projection is the measured rate × the time left, and a run that has time to spare is untouched."""

import json

import pytest
from safetensors.torch import load_file
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli.checkpoint import read_meta
from automod_cli.cli import main
from automod_cli.errors import AutomodError
from automod_cli.locate import load_model
from automod_cli.presets import resolve_train_config
from automod_cli.training import loop, resume, train
from automod_cli.training import run as run_module
from automod_cli.training.budget import TimeBudget, aligned, shortened
from automod_cli.training.lia.config import resolve_lia_config

TINY = {**TINY_RUN, "lr": 0.002, "model.max_resolution": 8}  # 256 images at 4², 256 at 8², batch 16


def tiny_config(**extra):
    return resolve_train_config("builtin", {**TINY, **extra})


def test_the_projection_is_the_measured_rate_times_the_time_left():
    budget = TimeBudget.of(tiny_config(time_budget_min=1.0))
    assert (budget.seconds, budget.start, budget.length, budget.every, budget.floor) == (
        60.0,
        256,
        256,
        2,
        307,
    )
    # the last phase starts 50 s into the run; 16 images a second there
    seen, elapsed = 256, 50.0
    for _ in range(5):
        before, seen, elapsed = seen, seen + 16, elapsed + 1.0
        budget.observe(before, seen, elapsed)
        assert budget.due(before, seen)
        assert budget.propose(seen, elapsed, 512) == 512  # no rate measured yet
    assert budget.mark == (336, 55.0)  # five iterations in and past 1 % of the phase
    before, seen, elapsed = seen, seen + 16, elapsed + 1.0
    budget.observe(before, seen, elapsed)
    assert budget.propose(seen, elapsed, 512) == 512  # 16 images measured: less than a tenth of the phase
    before, seen, elapsed = seen, seen + 16, elapsed + 1.0
    budget.observe(before, seen, elapsed)
    # 32 images in 2 s since the mark, 3 s left: 368 + 16 × 3
    assert budget.propose(seen, elapsed, 512) == 368 + 16 * 3
    # once the budget is spent the run ends where it is, but never below the floor
    assert budget.propose(400, 61.0, 512) == 400
    assert budget.propose(300, 61.0, 512) == 307


def test_a_fast_enough_run_and_the_earlier_phases_are_left_alone():
    budget = TimeBudget.of(tiny_config(time_budget_min=1.0))
    assert not budget.due(240, 256)  # the iteration ending the 4² phase: nothing to project
    budget.observe(240, 256, 59.0)
    assert budget.iterations == 0 and budget.mark is None
    budget.mark = (260, 10.0)
    assert budget.propose(300, 11.0, 512) == 512  # 40 images/s × 49 s: far past the end
    # a proposal within one projection interval of the end does not count: 16 images/s, 12.1875 s left → 511
    budget.mark = (290, 46.1875)  # 26 images in 1.625 s
    assert budget.propose(316, 47.8125, 512) == 512
    budget.mark = (290, 47.1875)
    assert budget.propose(316, 48.8125, 512) == 316 + 179  # 16 × 11.1875 s


def test_aligned_moves_a_total_up_to_where_an_iteration_ends():
    assert [aligned(t, 272, 16) for t in (272, 273, 287, 288, 289, 307)] == [272, 288, 288, 288, 304, 320]


def test_shortened_shortens_the_last_phase_or_the_run_length():
    config = tiny_config(time_budget_min=1.0)
    short = shortened(config, 400)
    assert short.phase_images == {4: 256, 8: 144} and short.total_images == 400 and short.total_kimg is None
    longer = tiny_config(time_budget_min=1.0, total_kimg=1.0)  # the last phase goes on past its schedule
    short = shortened(longer, 800)
    assert short.phase_images == {4: 256, 8: 256} and short.total_images == 800
    assert shortened(longer, 300).phase_images == {4: 256, 8: 44}


class ImageClock:
    """A loop clock that says how long the images trained so far took at `rate` images a second (it reads them
    from the loop's step reports), so that the run's seconds depend neither on the machine nor on how often the loop
    reads its clock."""

    def __init__(self, rate: float):
        self.rate, self.images, self.events = rate, 0, []

    def __call__(self) -> float:
        return self.images / self.rate

    def report(self, event: str, data: dict) -> None:
        self.events.append((event, data))
        if event == "step":
            self.images = data["images_seen"]


@pytest.mark.parametrize(
    # at 16 images/s the planned 512 images take 32 s, 16 s of them at 4²; a budget of 15 s is spent before the 8²
    # phase begins (it trains its floor, a fifth); with 24 s the rate measured there (16 images/s from 336 images
    # on, projected at 368 with 1 s left) ends it at 384 images
    "minutes, end",
    [(0.25, 320), (0.4, 384)],
)
def test_a_run_out_of_time_ends_in_its_last_phase_faded_in_and_resumes_without_a_budget(
    tmp_path, monkeypatch, minutes, end
):
    clock = ImageClock(16.0)
    monkeypatch.setattr(loop, "clock", clock)
    config = tiny_config(time_budget_min=minutes)
    result = train(config, tmp_path / "run", device="cpu", report=clock.report)
    assert not result.interrupted and result.planned == 512 and result.images_seen == end
    assert end >= TimeBudget.of(config).floor
    shortenings = [d for e, d in clock.events if e == "budget"]
    assert shortenings and shortenings[-1]["planned"] == 512 and shortenings[-1]["resolution"] == 8
    assert shortenings[-1]["total"] == end  # moved up to where an iteration ends (the floor: 307 → 320)
    meta = read_meta(result.checkpoint)
    assert meta["elapsed_s"] <= max(minutes * 60, 256 / 16 + 4)  # in time, or at the floor's 4 iterations
    # the checkpoint and config.json carry the schedule it trained: the last phase as long as it was
    for saved in (meta["train_config"], json.loads((tmp_path / "run" / "config.json").read_text())):
        assert saved["phase_images"] == {"4": 256, "8": shortenings[-1]["total"] - 256}
        assert saved["time_budget_min"] == minutes
    model = load_model(result.checkpoint)
    assert model.resolution == 8 and model.alpha == 1.0
    assert (tmp_path / "run" / "grids" / "8-samples.png").is_file()
    # resumed with the budget lifted and a length, it trains on to that length
    longer = resume(result.checkpoint, device="cpu", total_kimg=0.512, time_budget_min=0)
    assert longer.images_seen == 512 and longer.planned is None
    assert read_meta(longer.checkpoint)["train_config"]["time_budget_min"] is None


def test_a_config_json_that_cannot_be_rewritten_does_not_stop_the_run(tmp_path, monkeypatch):
    """A full disk as the budget shortens the run: config.json keeps the schedule it had (whole, not half written),
    the run trains on and its checkpoints carry the shortened schedule."""
    written = []

    def atomic_write(path, write):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        real_atomic_write(path, write)

    real_atomic_write = run_module.atomic_write
    monkeypatch.setattr(run_module, "atomic_write", atomic_write)
    clock = ImageClock(16.0)
    monkeypatch.setattr(loop, "clock", clock)
    result = train(tiny_config(time_budget_min=0.4), tmp_path / "run", device="cpu", report=clock.report)
    assert result.images_seen == 384 and not result.interrupted
    assert read_meta(result.checkpoint)["train_config"]["phase_images"] == {"4": 256, "8": 128}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["phase_images"] == {"4": 256, "8": 256}


def test_a_run_with_time_to_spare_trains_exactly_as_without_a_budget(tmp_path):
    plain = train(tiny_config(), tmp_path / "plain", device="cpu")
    budgeted = train(tiny_config(time_budget_min=600.0), tmp_path / "budgeted", device="cpu")
    assert budgeted.images_seen == plain.images_seen == 512 and budgeted.planned is None
    a, b = load_file(plain.checkpoint), load_file(budgeted.checkpoint)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_the_option_and_its_bad_values(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["train", *cli_settings(TINY), "--kimg", "0.032", "--time-budget", "0", "--out", "r"])
    assert code == 0
    assert json.loads((tmp_path / "r" / "config.json").read_text())["time_budget_min"] is None
    out = capsys.readouterr().out
    assert "time budget" not in out
    code = main(["train", *cli_settings(TINY), "--kimg", "0.032", "--time-budget", "5", "--out", "s"])
    assert code == 0 and "its time budget is 5 min of training" in capsys.readouterr().out
    # out of time before the 8² phase (a clock a second on at each reading): it trains its floor and says so
    monkeypatch.setattr(loop, "clock", lambda seconds=iter(range(10**6)): float(next(seconds)))
    code = main(["train", *cli_settings(TINY), "--time-budget", "0.2", "--out", "v"])
    out = capsys.readouterr().out
    assert code == 0 and "→ time budget 0.2 min: ending at 320 of 512 images (8² shortened)" in out
    assert "done: 320 images (the time budget ended it 192 images early)" in out
    one_line_error(
        main(["train", "--time-budget", "-1", "--out", "t"]), capsys.readouterr().err, "--time-budget"
    )
    one_line_error(
        main(["train", "--model", "lia", "--time-budget", "5", "--out", "u"]),
        capsys.readouterr().err,
        "--time-budget",
    )
    with pytest.raises(AutomodError, match="time budget"):
        resolve_lia_config("builtin", {"time_budget_min": 5})
