"""`automod train --threads N` (torch's thread count for the run, a nonsense count refused in one line), and the
CPU thread chooser a run uses otherwise (training/threads.py, issue 23 item 3), on a simulated machine whose speed
depends on the thread count and on whether another process is busy, and its place in the training loop."""

from __future__ import annotations

import pytest
import torch
from tiny_models import TINY_RUN, cli_settings, one_line_error

from automod_cli import training
from automod_cli.cli import main
from automod_cli.presets import resolve_train_config
from automod_cli.training import loop
from automod_cli.training import threads as threads_module
from automod_cli.training.threads import ThreadChooser, chooser_for

# images/s of the `builtin` preset's 32² iteration on the project's 2-core machine (benchmarks/RESULTS.md): two
# threads alone 63, beside a busy loop 23; one thread 40 either way
IDLE = {1: 40.0, 2: 63.0}
BUSY = {1: 40.0, 2: 23.0}
BATCH = 32


class Machine:
    """Runs iterations of BATCH images at the rate of the chooser's current thread count and the load; the first
    iteration after a change of the count costs twice as long (its threads start)."""

    def __init__(self, most: int = 2, **chooser_options) -> None:
        self.count, self.now, self.busy, self.calls = most, 0.0, False, []
        self.chooser = ThreadChooser(most, self.set_threads, **chooser_options)
        self.rates = None  # a function (threads, busy) -> images/s, where the tables above do not do
        self.seconds_at: dict[int, float] = {}
        self._fresh = False

    def set_threads(self, n: int) -> None:
        self.calls.append(n)
        self._fresh = n != self.count
        self.count = n

    def rate(self) -> float:
        if self.rates is not None:
            return self.rates(self.count, self.busy)
        return (BUSY if self.busy else IDLE)[self.count]

    def run(self, seconds: float, key=32) -> None:
        end = self.now + seconds
        while self.now < end:
            took = BATCH / self.rate() * (2 if self._fresh else 1)
            self._fresh = False
            self.seconds_at[self.count] = self.seconds_at.get(self.count, 0.0) + took
            self.now += took
            self.chooser.observe(BATCH, took, key)


def test_an_idle_machine_keeps_every_thread_and_loses_little_to_trials() -> None:
    machine = Machine()
    machine.run(600)
    assert machine.chooser.threads == 2 and machine.chooser.changes == []
    # trials after 10, 20, 40, 80 and then every 160 s, each a first iteration and a window of at least 2 s
    assert 0 < machine.seconds_at.get(1, 0.0) < 0.05 * 600
    # images per second over the run, against the best fixed choice
    images = sum(IDLE[n] * s for n, s in machine.seconds_at.items())
    assert images / 600 > 0.97 * IDLE[2]


def test_a_busy_core_moves_the_run_to_one_thread_soon_and_back_when_it_is_free() -> None:
    machine = Machine()
    machine.run(330)  # the trials have backed off to their longest interval; the last ended at about 320 s
    machine.busy = True
    machine.run(15)  # the slower window starts a trial at once
    assert machine.chooser.threads == 1 and machine.chooser.changes == [(2, 1)]
    machine.seconds_at.clear()
    machine.run(300)
    assert machine.chooser.threads == 1
    images = sum(BUSY[n] * s for n, s in machine.seconds_at.items())
    assert images / 300 > 0.9 * BUSY[1]  # no worse than in proportion to the cores left (0.5 × 63)
    machine.busy = False
    machine.run(200)  # the next trial of two threads, within the longest interval
    assert machine.chooser.threads == 2 and machine.chooser.changes == [(2, 1), (1, 2)]


def test_a_trial_within_the_margin_does_not_switch() -> None:
    machine = Machine()
    machine.rates = lambda n, busy: {1: 60.0, 2: 63.0}[n]  # one thread 5 % slower than two: within noise
    machine.run(400)
    assert machine.chooser.threads == 2 and machine.chooser.changes == []
    machine.rates = lambda n, busy: {1: 72.0, 2: 63.0}[n]  # 14 % faster: worth a switch
    machine.run(400)
    assert machine.chooser.threads == 1


def test_more_cores_climb_one_thread_at_a_time_to_the_fastest_count() -> None:
    machine = Machine(most=4)
    # four cores, one taken: three threads are fastest, four stall on the busy core
    machine.rates = lambda n, busy: {1: 30.0, 2: 58.0, 3: 84.0, 4: 40.0}[n]
    machine.run(120)
    assert machine.chooser.threads == 3
    assert set(machine.calls) <= {2, 3, 4}  # it never tried a count two steps from the chosen one
    machine.run(600)
    assert machine.chooser.threads == 3


def test_a_new_phase_ends_a_trial_on_the_chosen_count_and_measures_afresh() -> None:
    machine = Machine()
    machine.run(11)  # the first trial has started: one thread
    assert machine.count == 1 and machine.chooser.threads == 2
    machine.run(0.1, key=64)
    assert machine.count == 2 and machine.chooser.trial is None
    machine.chooser.settle()
    assert machine.count == 2


def test_one_thread_has_nothing_to_choose() -> None:
    machine = Machine(most=1)
    machine.busy = True
    machine.run(300)
    assert machine.calls == []


def test_a_run_uses_a_chooser_only_on_one_cpu_process_whose_threads_are_not_fixed(monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    chooser = chooser_for(torch.device("cpu"), 1)
    assert chooser is not None and chooser.most == 4
    assert chooser_for(torch.device("cpu"), 2) is None  # torchrun's processes keep their count
    assert chooser_for(torch.device("cuda"), 1) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice, or `--threads`
    assert chooser_for(torch.device("cpu"), 1) is None
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert chooser_for(torch.device("cpu"), 1) is None


def test_threads_sets_torch_threads_and_refuses_nonsense(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # `--threads` sets it for the process; put back after the test
    one_line_error(main(["train", "--threads", "0"]), capsys.readouterr().err, "--threads")
    before = torch.get_num_threads()
    try:
        tiny = cli_settings({**TINY_RUN, "model.max_resolution": 4, "phase_images": 32, "workers": 0})
        assert main(["train", "--threads", "1", "--out", "run", "--device", "cpu", *tiny]) == 0
        assert torch.get_num_threads() == 1
        assert threads_module.pinned()  # so the run kept its count (no chooser)
    finally:
        torch.set_num_threads(before)


def test_pin_fixes_the_count_for_the_process(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    before = torch.get_num_threads()
    try:
        threads_module.pin(1)
        assert torch.get_num_threads() == 1 and threads_module.pinned()
    finally:
        torch.set_num_threads(before)


def test_the_training_loop_reports_each_iteration_to_the_chooser(monkeypatch, tmp_path) -> None:
    seen: list[tuple[int, float, object]] = []

    class Recording(ThreadChooser):
        def observe(self, images, seconds, key=None):
            seen.append((images, seconds, key))

    monkeypatch.setattr(loop, "chooser_for", lambda device, size: Recording(2, lambda n: None))
    config = resolve_train_config(
        "builtin",
        {
            "model.latent_dim": 16,
            "model.channels": [16, 16],
            "model.max_resolution": 8,
            "batch_size": 16,
            "phase_images": 64,
            "data_limit": 64,
            "checkpoint_every": 1_000,
        },
    )
    training.train(config, tmp_path / "run")
    assert [key for _, _, key in seen] == [4] * 4 + [8] * 4
    assert all(images == 16 and seconds > 0 for images, seconds, _ in seen)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_chooser_needs_a_thread(bad) -> None:
    with pytest.raises(ValueError):
        ThreadChooser(bad, lambda n: None)
