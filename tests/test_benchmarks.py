"""benchmarks/: the straightforward iteration (naive.py) computes the same losses and gradients as the loop's
steps, so `bench.py train --variants` compares equal work; the loop's shared encoder pass equals separate
passes, with and without flip invariance; and bench.py's GPU-busy share of a profile."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from tiny_models import benchmark_module, flip_invariance_loss
from torch.autograd import DeviceType
from torch.autograd.profiler_util import Interval
from torch.utils.flop_counter import FlopCounterMode

from automod_cli.features.nets import LPIPSDistance
from automod_cli.losses import AdaptiveRobustLoss
from automod_cli.models import Automodulator
from automod_cli.presets import resolve_train_config
from automod_cli.training.distributed import World
from automod_cli.training.ema import make_ema, update_ema
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets, decoder_step, encoder_step

naive, bench = benchmark_module("naive"), benchmark_module("bench")
BENCHMARKS = Path(bench.__file__).parent

# Layer noise off and the spectral norms' power iteration frozen (eval mode): then every pass of a network over the
# same input gives the same output, and separate passes must equal shared ones.
RUN = {
    "model.channels": [16, 16, 8],
    "model.max_resolution": 16,
    "model.latent_dim": 16,
    "layer_noise": False,
    "phase_images": 64,
    "batch_size": 8,
}


def setup(overrides: dict = {}):
    config = resolve_train_config("builtin", {**RUN, **overrides})
    phase = phase_at(config, sum(config.phase_images.values()) - 1)  # 16², faded in
    model = Automodulator(config.model)
    model.encoder.eval()
    robust = AdaptiveRobustLoss(3, 16)
    with torch.no_grad():
        robust.latent_alpha.normal_()
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    return config, phase, Nets(model.encoder, model.decoder, robust), x


def run_step(step, nets: Nets, seed: int, *args) -> tuple[dict, dict]:
    """Scalars and parameter gradients of one step (no optimiser: the gradients stay for inspection)."""
    nets = copy.deepcopy(nets)
    torch.manual_seed(seed)  # the same fake latents and mixing split for both versions
    scalars = step(nets, *args)
    grads = {
        f"{name}.{p_name}": p.grad.clone()
        for name in ("encoder", "decoder", "robust")
        for p_name, p in getattr(nets, name).named_parameters()
        if p.grad is not None
    }
    return scalars, grads


def assert_same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    (scalars_a, grads_a), (scalars_b, grads_b) = a, b
    assert scalars_a.keys() == scalars_b.keys() and grads_a.keys() == grads_b.keys() and len(grads_a) > 4
    for key in scalars_a:
        torch.testing.assert_close(scalars_a[key], scalars_b[key], rtol=1e-4, atol=1e-6)
    for key in grads_a:
        torch.testing.assert_close(grads_a[key], grads_b[key], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("naive_step", [naive.encoder_step, naive.two_pass_encoder_step])
def test_encoder_step_with_separate_passes_matches_the_loop(naive_step):
    config, phase, nets, x = setup()
    args = (x, phase, config, [], World())
    loop = run_step(encoder_step, nets, 1, *args)
    assert_same(loop, run_step(naive_step, nets, 1, *args))
    assert set(loop[1]) >= {"encoder.head.collapse.weight", "robust.latent_alpha"}
    assert not any(k.startswith("decoder.") for k in loop[1])  # only φ and d_ρ learn in the encoder step
    # a different draw of fake latents changes KL(φ(x̂)), so agreement above is not trivial
    assert not torch.allclose(
        run_step(encoder_step, nets, 2, *args)[0]["kl_fake_enc"], loop[0]["kl_fake_enc"]
    )


def test_decoder_step_with_one_pass_per_term_matches_the_loop():
    config, phase, nets, x = setup({"layer_loss": True})  # the builtin preset has L_j off since issue 23
    args = (x.shape[0], phase, config, [], World(), torch.device("cpu"))
    loop = run_step(decoder_step, nets, 3, *args)
    assert loop[0]["layer_loss"] > 0 and loop[0]["latent_cos"] > 0  # all three terms are present
    assert_same(loop, run_step(naive.decoder_step, nets, 3, *args))
    assert all(k.startswith("decoder.") for k in loop[1])


def test_encoder_step_shares_the_codes_of_flipped_pairs():
    """With flip invariance the step's reconstruction term is ½(L_inv + L'_inv) of the batch's pairs, computed from
    codes of the shared pass; invariance.flip_invariance_loss encodes the pairs on its own."""
    config, phase, nets, x = setup({"flip_invariance_layer": 2})
    scalars, _ = run_step(encoder_step, nets, 4, x, phase, config, [], World())
    separate = flip_invariance_loss(nets, x, phase, config)
    torch.testing.assert_close(scalars["recon"], separate.detach(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="flip invariance"):
        naive.encoder_step(nets, x, phase, config, [], World())


def test_plain_ema_and_adam_match_the_loop_versions():
    _, _, nets, _ = setup()
    ema_a, ema_b = make_ema(nets.decoder), make_ema(nets.decoder)
    before = [p.detach().clone() for p in nets.decoder.parameters()]
    with torch.no_grad():
        for p in nets.decoder.parameters():
            p.add_(torch.randn_like(p))
    update_ema(ema_a, nets.decoder, 0.9)
    naive.plain_ema_update(ema_b, nets.decoder, 0.9)
    for a, b, old, new in zip(ema_a.parameters(), ema_b.parameters(), before, nets.decoder.parameters()):
        expected = 0.9 * old + 0.1 * new.detach()
        torch.testing.assert_close(a, expected)
        torch.testing.assert_close(b, expected)
    assert naive.plain_adam(nets.decoder, lr=0.1).defaults["foreach"] is False


def test_busy_fraction_is_the_union_of_kernel_intervals_over_the_window():
    assert bench.busy_fraction([(0, 2), (5, 6)], 10) == pytest.approx(0.3)
    # overlapping kernels (two streams) count once; one nested inside another adds nothing; order does not matter
    assert bench.busy_fraction([(4, 8), (0, 3), (2, 5), (6, 7)], 10) == pytest.approx(0.8)
    assert bench.busy_fraction([(0, 10), (0, 10)], 10) == pytest.approx(1.0)
    assert bench.busy_fraction([], 10) == 0.0


def test_top_ops_rank_what_took_the_time_by_self_time():
    """A large matrix product next to a tiny addition: the product must lead, with most of the time, and the
    shares, of all the host's self time, must be ranked and add up to at most 1."""
    a, b = torch.rand(384, 384), torch.rand(384, 384)
    small = torch.rand(4)

    def work():
        for _ in range(3):
            a @ b
        small + 1

    prof = bench.profiled(work, steps=4, device=torch.device("cpu"))
    ranked = bench.top_ops(prof, 3, steps=4, device=torch.device("cpu"))
    assert len(ranked) == 3
    (name, ms, share), *rest = ranked
    assert name == "aten::mm" and share > 0.5 and ms > 0
    shares = [s for _, _, s in ranked]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.0
    # ms per iteration: the product's self time over the 4 calls of `work`
    mm = next(row for row in prof.key_averages() if row.key == "aten::mm")
    assert ms == pytest.approx(mm.self_cpu_time_total / 4 / 1000, abs=1e-3)


def test_on_cuda_the_kernels_are_ranked_by_name_and_their_busy_share_taken_over_their_window():
    """The CUDA side of a profile, without a GPU: kernel events as torch.profiler lists them (device_type CUDA,
    a name, a time range in µs) beside a host op, which neither count may include."""

    def event(name, start, end, device=DeviceType.CUDA):
        return SimpleNamespace(name=name, device_type=device, time_range=Interval(start, end))

    conv = "sm90_xmma_fprop_implicit_gemm_bf16" + "_tile" * 20  # longer than 80 characters
    events = [
        event(conv, 0, 400),
        event("vectorized_elementwise_kernel", 500, 600),
        event(conv, 600, 1000),
        event("aten::convolution", 0, 5000, device=DeviceType.CPU),
    ]
    prof = SimpleNamespace(events=lambda: events)
    ranked = bench.top_ops(prof, 5, steps=2, device=torch.device("cuda"))
    # 800 µs of the conv kernel over 2 iterations = 0.4 ms each, 800 / 900 of all kernel time
    assert ranked == [
        [conv[:80], 0.4, round(800 / 900, 4)],
        ["vectorized_elementwise_kernel", 0.05, round(100 / 900, 4)],
    ]
    assert bench.kernel_time_fraction(prof) == pytest.approx(0.9)  # 900 µs busy in the 0–1000 µs window
    with pytest.raises(SystemExit, match="no CUDA kernels"):
        bench.kernel_time_fraction(SimpleNamespace(events=lambda: events[3:]))


def test_flops_counted_on_the_meta_device_equal_those_of_a_real_iteration():
    config = resolve_train_config(
        "builtin", {**RUN, "layer_loss": False}
    )  # no random split j: one count per iteration
    cpu = bench.TrainingIteration(config, 16, torch.device("cpu"), "fp32", compile=False)
    meta = bench.TrainingIteration(config, 16, torch.device("meta"), "fp32", compile=False)
    assert meta.flops(2) == cpu.flops(2) > 0
    # and by hand: the 16² block's first 3×3 convolution (16 → 8 channels at 16²) alone is 2·9·16·8·256 FLOPs
    # per image for one forward pass, and an iteration runs the decoder forward at least four times
    assert cpu.flops(1) / 8 > 4 * 2 * 9 * 16 * 8 * 256


def test_flops_with_the_layer_loss_are_the_same_on_every_count():
    config = resolve_train_config("builtin", RUN)
    meta = bench.TrainingIteration(config, 16, torch.device("meta"), "fp32", compile=False)
    assert meta.flops(3) == meta.flops(3)


def test_device_check_runs_every_section_and_tabulates_it(tmp_path):
    """benchmarks/device_check.sh is run on a lent GPU with no second try to spare: its SMOKE mode runs every
    section on the CPU at toy sizes, so a wrong flag or a broken section shows here first."""
    env = {**os.environ, "SMOKE": "1", "PYTHON": sys.executable, "OUT": str(tmp_path)}
    # no time limit here or in the script's smoke mode: a slow or busy machine must not fail it (issue 25 item 7)
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "device_check.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    records = {
        name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        for name in ("matmul", "train", "syncs", "encode", "project-cost", "variants", "cudnn", "data")
    }
    # torch.profiler's own C++ log lines (kineto: "USDT:2026-12-01 20:26:49 … profiler_start") are not errors
    kineto_log = re.compile(r"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \w+\.cpp:\d+\]")
    for name in records:
        errors = [
            line for line in (tmp_path / f"{name}.err").read_text().splitlines() if not kineto_log.match(line)
        ]
        assert errors == [], name
        assert f"{name}: exit 0" in done.stdout
    assert {r["precision"] for r in records["matmul"]} == {"bf16", "fp32"} and all(
        r["tflops"] > 0 for r in records["matmul"]
    )
    assert {(r["resolution"], r["precision"]) for r in records["train"]} == {(8, "fp32"), (8, "bf16")}
    assert all(r["gflop_per_image"] > 0 and r["images_per_s"] > 0 for r in records["train"])
    assert all(
        len(r["top_ops"]) == 5 and "aten::convolution_backward" in {op for op, _, _ in r["top_ops"]}
        for r in records["train"]
        if r["precision"] == "fp32"
    )
    assert [(r["kind"], r["syncs"]) for r in records["syncs"]] == [("pioneer", 0)]
    assert sorted(r["bench"] for r in records["encode"]) == ["decode", "decode", "encode", "encode"]
    assert [r["variant"] for r in records["variants"]] == ["loop", "naive"] and records["variants"][1][
        "loop_speedup"
    ] > 0
    assert [r["resolution"] for r in records["data"]] == [4, 8]
    assert [(r["resolution"], r["cudnn_benchmark"]) for r in records["cudnn"]] == [(8, True)]
    (cost,) = records["project-cost"]
    assert (
        cost["distance"] == "lpips-alex-shaped"
        and cost["step_over_encoder_flops"] > 1
        and cost["steps_for_1000x"] > 0
    )
    tables = (tmp_path / "tables.md").read_text()
    assert (
        "#### train: where the time goes" in tables
        and "| 8 | fp32 | loop | aten::convolution_backward |" in tables
    )
    for title in (
        "### matmul",
        "### train",
        "### syncs",
        "### encode",
        "### encode: decode",
        "### project-cost",
        "### variants: train",
        "### cudnn: train",
        "### data",
    ):
        assert title + " (" in tables
    assert tables == done.stdout[-len(tables) :]  # printed last, where the device tool's reply keeps it


def test_device_check_runs_only_the_sections_named(tmp_path):
    env = {**os.environ, "SMOKE": "1", "ONLY": "matmul", "PYTHON": sys.executable, "OUT": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "device_check.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (
        sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["matmul.jsonl"] and "### matmul" in done.stdout
    )


def test_table_divides_the_reader_by_the_fastest_training_rate_at_its_resolution(capsys, tmp_path):
    table = benchmark_module("table")
    lines = [
        '{"bench": "train", "resolution": 8, "images_per_s": 100.0, "precision": "fp32", "device": "cpu"}',
        '{"bench": "train", "resolution": 8, "images_per_s": 250.0, "precision": "bf16", "device": "cpu"}',
        '{"bench": "data", "resolution": 8, "workers": 0, "images_per_s": 5000.0, "device": "cpu"}',
        '{"bench": "data", "resolution": 16, "workers": 0, "images_per_s": 4000.0, "device": "cpu"}',
        'Traceback (most recent call last):',
    ]
    (tmp_path / "run.jsonl").write_text("\n".join(lines) + "\n")
    assert table.main([str(tmp_path / "run.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "| 8 | 0 | 5000 | 20 |" in out  # 5000 / 250: the faster precision's rate
    assert "| 16 | 0 | 4000 | — |" in out  # no training measured at 16²
    assert "### run: train (device cpu)" in out and "| 8 | 250 | bf16 |" in out
    assert "1 line(s) were not benchmark records; the first: Traceback" in out


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_the_lpips_shaped_distance_costs_what_lpips_costs(net):
    """project-cost times projection with a weightless stand-in for LPIPS: its arithmetic must be LPIPS's (the
    lpips package's network on the same torchvision trunk, learned 1×1 layers included, within 1 %)."""
    trunk = (
        torchvision.models.alexnet(weights=None) if net == "alex" else torchvision.models.vgg16(weights=None)
    )
    reference, shaped = LPIPSDistance(net, trunk.state_dict()), bench.LpipsShaped(net)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    flops = []
    for distance in (reference, shaped):
        counter = FlopCounterMode(display=False)
        with counter:
            value = distance(x, y)
        assert value.shape == (2,) and (value > 0).all()
        flops.append(counter.get_total_flops())
    assert flops[1] == pytest.approx(flops[0], rel=0.01)
    assert torch.equal(shaped(x, x), torch.zeros(2))


def test_bench_settings_are_the_train_commands_overrides():
    """`bench.py train --set NAME=VALUE` changes the preset as `automod train --set` does (the demo search times
    its candidates with it); a malformed item is refused."""
    overrides = bench.settings(["batch_size.32=16", "layer_loss=false", "model.channels=[8,8,8,8]"])
    config = resolve_train_config("builtin", overrides)
    assert config.batch_size[32] == 16 and config.batch_size[16] == 32 and config.layer_loss is False
    assert config.model.channels == (8, 8, 8, 8)
    with pytest.raises(SystemExit):
        bench.settings(["batch_size.32"])


def test_busy_ways_name_the_environment_and_arguments_of_each_thread_policy():
    busy = benchmark_module("busy")
    assert busy.way_settings("default") == ({}, [])
    assert busy.way_settings("passive") == ({"OMP_WAIT_POLICY": "PASSIVE"}, [])
    assert busy.way_settings("spin:1000") == ({"GOMP_SPINCOUNT": "1000"}, [])
    assert busy.way_settings("threads:1") == ({}, ["--threads", "1"])
    with pytest.raises(SystemExit):
        busy.way_settings("spin:lots")
