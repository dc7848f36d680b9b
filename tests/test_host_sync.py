"""The training iterations never wait on the device (issue 8: no host-device synchronisation in the loop).

A GPU run waits for the GPU wherever the host reads a value that lives there: `.item()`, `float()`, `bool()` or an
`if` on a tensor, `torch.equal`, boolean-mask indexing, `.tolist()`, `.cpu()`. On the meta device tensors have
shapes but no data, so each of those raises there instead (checked first, so the rest cannot pass vacuously).
Each model's own trainer then runs its iterations on the meta device (loading, mirroring, both steps or the joint
step, the EMA update, the metric sums) at every level, in a fade-in and at the steady state, through
`bench.py syncs`'s harness (which on a GPU counts torch.cuda.set_sync_debug_mode's warnings instead). Draws on the
CPU (the split j, the mirror mask) stay legal, as on a GPU. Log intervals, the loop's one deliberate read, are not
run. Not covered here: bf16 autocast (the meta device has none) and torchrun's gradient all-reduce.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import TINY_RUN, benchmark_module

from automod_cli.presets import resolve_train_config
from automod_cli.training import baselines
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training.lia.config import resolve_lia_config
from automod_cli.training.lia.run import LiaRun
from automod_cli.training.loop import iteration
from automod_cli.training.schedule import phase_at

bench = benchmark_module("bench")
META = torch.device("meta")

HOST_READS = {
    "item": lambda x: x.sum().item(),
    "float": lambda x: float(x.sum()),
    "if": lambda x: 1 if x.sum() > 0 else 0,
    "all": lambda x: bool(x.isfinite().all()),
    "equal": lambda x: torch.equal(x, x),
    "mask index": lambda x: x[x > 0],
    "nonzero": lambda x: x.nonzero(),
    "tolist": lambda x: x.tolist(),
    "cpu": lambda x: x.cpu(),
}


@pytest.mark.parametrize("read", list(HOST_READS))
def test_every_host_read_of_a_device_value_is_reported_on_the_meta_device(read):
    found = bench.host_syncs(lambda: HOST_READS[read](torch.randn(4, 4, device=META)), META)
    assert len(found) == 1 and "meta" in found[0].lower(), found
    assert bench.host_syncs(lambda: HOST_READS[read](torch.randn(4, 4)), META) == []  # a CPU value: no sync
    assert (
        bench.host_syncs(lambda: torch.randn(4, 4, device=META).exp().sum(), META) == []
    )  # device work alone


# three levels (4², 8², 16²), a fade-in over the first half of each later phase
SMALL = {
    **TINY_RUN,
    **bench.SYNC_RUN,
    "model.max_resolution": 16,
    "model.channels": [16, 16, 8],
    "phase_images": 128,
}
EVERY_LEVEL = {(4, False), (8, True), (8, False), (16, True), (16, False)}


def test_the_points_checked_cover_each_phase_in_its_fade_in_and_at_its_end():
    config = resolve_train_config("builtin", SMALL)
    assert bench.images_at_every_level(config) == [16, 112, 144, 240, 272, 368]
    assert {
        (phase_at(config, i).resolution, phase_at(config, i).alpha < 1)
        for i in bench.images_at_every_level(config)
    } == EVERY_LEVEL


@pytest.mark.parametrize("kind", list(bench.SYNC_KINDS))
def test_training_iterations_of_every_model_never_read_a_device_value(kind, tmp_path):
    config = resolve_train_config("builtin", {**SMALL, **bench.SYNC_KINDS[kind]})
    trainer = AutomodulatorRun(config, tmp_path / kind, device=META)
    assert next(trainer.nets.decoder.parameters()).is_meta
    trained = []
    assert (
        bench.host_syncs(
            lambda: trained.append(bench.iterations_at_every_level(trainer, config, steps=1)()), META
        )
        == []
    )
    assert trained == [EVERY_LEVEL] and trainer.counters.step == 6  # Adam's state exists from the second on
    assert all(value.is_meta for value in trainer.log.sums.values())  # summed on the device, read when logged


def test_a_read_in_a_step_is_caught_with_its_reason(tmp_path, monkeypatch):
    wae_step = baselines.JOINT_STEPS["wae"]

    def printing_step(*args):  # what printing a loss every step would do
        scalars = wae_step(*args)
        print(float(scalars["mmd"]))
        return scalars

    monkeypatch.setitem(baselines.JOINT_STEPS, "wae", printing_step)
    config = resolve_train_config("builtin", {**SMALL, "kind": "wae"})
    trainer = AutomodulatorRun(config, tmp_path / "wae", device=META)
    found = bench.host_syncs(bench.iterations_at_every_level(trainer, config, steps=1), META)
    assert len(found) == 1 and "item()" in found[0] and trainer.counters.step == 0


def test_lia_iterations_of_both_stages_never_read_a_device_value(tmp_path):
    config = resolve_lia_config("builtin", {**SMALL, "coupling_hidden": 8, "encoder_images": 64})
    trainer = LiaRun(config, tmp_path / "lia", device=META)
    stage1 = bench.iterations_at_every_level(trainer, config.train, steps=1)
    assert bench.host_syncs(stage1, META) == []  # the GAN with R1
    trainer.features = torch.nn.Conv2d(3, 4, 3, padding=1).to(META).requires_grad_(False)  # ε's stand-in
    trainer.counters.images_seen = config.stage1_images
    assert trainer.due_stage == 2
    trainer.active_stage, trainer.optimizers = 2, trainer.stage_optimizers(2)
    phase = phase_at(config.train, config.stage1_images - 1)  # stage 2 trains at the target resolution

    def stage2():
        trainer.set_phase(phase)
        for _ in range(2):
            iteration(trainer, phase)

    assert bench.host_syncs(stage2, META) == []
    assert trainer.counters.step == 6 + 2 and all(value.is_meta for value in trainer.log.sums.values())
