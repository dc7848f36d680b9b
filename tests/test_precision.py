"""Training precision and layout (training/precision.py): bf16 autocast against fp32, losses kept in fp32, the
channels-last layout against the default one, and the config's checks. Tiny networks on the CPU."""

import copy
import json

import pytest
import torch
from tiny_models import TINY_RUN, cli_settings

from automod_cli import losses
from automod_cli.cli import main
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator
from automod_cli.presets import resolve_train_config
from automod_cli.training.automodulator import AutomodulatorRun
from automod_cli.training.distributed import World
from automod_cli.training import precision as precision_module
from automod_cli.training.precision import Precision
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets, decoder_step, encoder_step

TINY = {
    "model.latent_dim": 16,
    "model.channels": [16, 16, 8, 8],
    "model.max_resolution": 16,
    "batch_size": 16,
    "phase_images": 64,
    "data_limit": 64,
    "log_every": 32,
    "checkpoint_every": 1_000,
    "lr": 0.002,
    "layer_noise": False,
}  # no noise draws, so both precisions see the same random numbers


def tiny(**extra):
    return resolve_train_config("builtin", {**TINY, **extra})


def setup(config, precision: Precision):
    """Networks, a robust loss and optimisers at the top level's steady state, seeded identically every call."""
    torch.manual_seed(0)
    phase = phase_at(config, config.total_images - 1)
    model = Automodulator(config.model)
    nets = Nets(model.encoder, model.decoder, losses.AdaptiveRobustLoss(3, phase.resolution))
    ema = copy.deepcopy(nets.decoder)
    precision.prepare(nets.encoder, nets.decoder, ema)
    adam = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, betas=config.adam_betas)
    optimizers = ([adam(nets.encoder), adam(nets.robust)], [adam(nets.decoder)])
    torch.manual_seed(1)
    x = torch.rand(16, 3, phase.resolution, phase.resolution) * 2 - 1
    return nets, ema, optimizers, phase, x


def one_iteration(config, precision: Precision) -> tuple[dict, Nets]:
    nets, _, (encoder_opts, decoder_opts), phase, x = setup(config, precision)
    with precision.autocast():
        scalars = {
            **encoder_step(nets, x, phase, config, encoder_opts, World()),
            **decoder_step(nets, len(x), phase, config, decoder_opts, World(), x.device),
        }
    return scalars, nets


@pytest.mark.parametrize("recipe", ["paper", "authors"])
def test_bf16_steps_give_finite_losses_close_to_fp32(recipe):
    config = tiny(recipe=recipe)
    reference, _ = one_iteration(config, Precision("cpu", "fp32"))
    mixed, nets = one_iteration(config, Precision("cpu", "bf16"))
    assert mixed.keys() == reference.keys()
    for name, value in mixed.items():
        assert torch.isfinite(value), name
        # bf16 keeps 8 significant bits; a few layers deep the losses move by about a percent
        assert value.float().item() == pytest.approx(reference[name].item(), rel=0.1, abs=0.02), name
    # the master weights and Adam's moments stay fp32
    for module in (nets.encoder, nets.decoder, nets.robust):
        assert all(p.dtype == torch.float32 for p in module.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in nets.encoder.parameters())


def test_bf16_runs_the_networks_in_bf16_and_hands_the_losses_fp32():
    config = tiny()
    precision = Precision("cpu", "bf16")
    nets, _, _, phase, x = setup(config, precision)
    seen = []
    conv = nets.encoder.from_rgb[phase.level]
    conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    with precision.autocast():
        z = nets.encoder(x, phase.level)
        z_fake = torch.nn.functional.normalize(torch.randn_like(z), dim=1)
        x_hat = nets.decoder(z, phase.level)
        assert seen == [torch.bfloat16]  # the convolutions compute in bf16 ...
        assert z.dtype == x_hat.dtype == torch.float32  # ... and the networks' outputs come back fp32
        kl, cos, rho = losses.empirical_kl(z), losses.cosine_distance(z, z_fake), nets.robust(x_hat, x)
    assert kl.dtype == cos.dtype == rho.dtype == torch.float32
    # the same losses as fp32 maths on the very same (rounded) network outputs
    assert kl.item() == pytest.approx(losses.empirical_kl(z.double()).item(), rel=1e-5)
    assert cos.item() == pytest.approx(
        losses.cosine_distance(z.double(), z_fake.double()).item(), rel=1e-5, abs=1e-7
    )


def test_fp32_is_unchanged_by_the_precision_context():
    config = tiny()
    nets, _, _, phase, x = setup(config, Precision("cpu", "fp32"))
    nets.encoder.eval()  # no power-iteration update between the two calls
    with torch.no_grad():
        plain = nets.decoder(nets.encoder(x, phase.level), phase.level)
        with Precision("cpu", "fp32").autocast():
            wrapped = nets.decoder(nets.encoder(x, phase.level), phase.level)
    assert torch.equal(plain, wrapped)


def test_channels_last_layout_computes_the_same_training_step():
    """The layout CUDA runs use, checked on the CPU: weights (EMA copy included) are channels-last and one
    training iteration gives the losses of the default layout."""
    config = tiny()
    cuda_layout = Precision("cuda", "fp32")
    assert cuda_layout.channels_last and not Precision("cpu", "fp32").channels_last
    nets, ema, (encoder_opts, decoder_opts), phase, x = setup(config, cuda_layout)
    convs = [
        p
        for m in (nets.encoder, nets.decoder, ema)
        for p in m.parameters()
        if p.dim() == 4 and p.shape[-1] > 1
    ]
    assert convs and all(
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs
    )
    scalars = {
        **encoder_step(nets, x, phase, config, encoder_opts, World()),
        **decoder_step(nets, len(x), phase, config, decoder_opts, World(), x.device),
    }
    reference, _ = one_iteration(config, Precision("cpu", "fp32"))
    for name, value in scalars.items():
        assert value.item() == pytest.approx(reference[name].item(), rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize(
    "override, words",
    [
        ({"precision": "fp16"}, ("fp16", "bf16")),
        ({"precision": "bfloat16"}, ("bfloat16", "fp32")),
        ({"compile": "yes"}, ("compile", "true or false")),
    ],
)
def test_config_refuses_unknown_precision_and_compile(override, words):
    with pytest.raises(AutomodError) as error:
        tiny(**override)
    message = str(error.value)
    assert all(word in message for word in words) and "\n" not in message


def test_precision_and_compile_are_saved_with_the_run():
    config = tiny(precision="bf16")
    assert config.precision == "bf16" and config.compile is False
    restored = type(config).from_dict(config.to_dict())
    assert restored.precision == "bf16"
    with pytest.raises(AutomodError):
        Precision("cpu", "int8")


def test_trainer_in_bf16_learns_with_fp32_state(tmp_path):
    trainer = AutomodulatorRun(
        tiny(precision="bf16", **{"model.max_resolution": 8}), tmp_path / "run", device="cpu"
    )
    assert trainer.precision.bf16
    result = trainer.run(stop_after_images=64)
    assert result.images_seen == 64
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "NaN" not in lines[-1] and "Infinity" not in lines[-1]
    state = {**trainer.nets.encoder.state_dict(), **trainer.ema.state_dict()}
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_train_command_takes_precision(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--precision", "fp16", "--out", "r", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "fp16" in err and "bf16" in err and len(err.splitlines()) == 1


READ_CPU_FLAGS = precision_module.cpu_flags  # the real reader (conftest patches it out in every test)
CPUINFO = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbogomips\t: 4800\n"
)


@pytest.mark.parametrize(
    ("extra", "native"), [("avx512_bf16", True), ("amx_bf16 amx_tile", True), ("", False)]
)
def test_cpu_flags_tell_native_bf16(tmp_path, monkeypatch, extra, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    flags = READ_CPU_FLAGS(cpuinfo)
    assert {"fpu", "avx512f"} <= flags and ("avx512_bf16" in flags) == ("avx512_bf16" in extra)
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: flags)
    assert precision_module.native_bf16("cpu") is native
    assert Precision("cpu", "auto").precision == ("bf16" if native else "fp32")
    # an explicit choice is kept whatever the CPU
    assert Precision("cpu", "fp32").precision == "fp32" and Precision("cpu", "bf16").precision == "bf16"


def test_a_cpu_without_proc_cpuinfo_trains_auto_in_fp32(tmp_path):
    assert READ_CPU_FLAGS(tmp_path / "missing") == frozenset()
    assert READ_CPU_FLAGS(_written(tmp_path / "noflags", "processor\t: 0\n")) == frozenset()
    assert Precision("cpu", "auto").precision == "fp32"


def _written(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_cuda_follows_the_gpu(monkeypatch, supported):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert precision_module.resolve_precision("auto", "cuda") == ("bf16" if supported else "fp32")
    assert precision_module.resolve_precision("auto", "mps") == "fp32"  # no native bf16 known there


def test_auto_run_reports_and_computes_in_the_resolved_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    events = []
    config = tiny(precision="auto", **{"model.max_resolution": 8})
    run = AutomodulatorRun(config, tmp_path / "run", device="cpu", report=lambda e, d: events.append((e, d)))
    assert (
        run.precision.bf16 and run.config.precision == "auto"
    )  # the config keeps the choice, the run resolves it
    run.run(stop_after_images=32)
    start = dict(events)["start"]
    assert start["precision"] == "bf16" and start["config"]["precision"] == "auto"


@pytest.mark.parametrize(
    ("flags", "said"), [({"avx512_bf16"}, "bf16 (cpu computes"), (set(), "fp32 (cpu has no")]
)
def test_train_says_what_auto_became(tmp_path, monkeypatch, capsys, flags, said):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset(flags))
    args = cli_settings({**TINY_RUN, "phase_images": 16, "model.max_resolution": 4})
    assert main(["train", *args, "--precision", "auto", "--out", "r", "--device", "cpu"]) == 0
    assert f"precision auto → {said}" in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision"] == "auto"
