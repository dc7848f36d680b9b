"""LIA: the NICE network's exact inverse and unit Jacobian, R1 and the GAN losses against closed forms, both
training stages on the built-in data with bit-exact resume, the model interface and its checkpoints, and the
VGG conv4_3 loader against a hand-written VGG16."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from automod_cli.checkpoint import run_checkpoints, save_model
from automod_cli.locate import load_model
from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.losses import r1_penalty
from automod_cli.features import weights as weight_files
from automod_cli.models.latents import assign
from automod_cli.models.lia import LiaConfig, LiaModel
from automod_cli.models.nice import NICE
from automod_cli.training.ema import ema_beta
from automod_cli.features.vgg import VGGConv43, vgg_conv43
from automod_cli.training.lia.config import resolve_lia_config
from automod_cli.training.lia.run import train_lia
from automod_cli.training.lia.steps import discriminator_gan_loss, generator_gan_loss

TINY = {
    "model.latent_dim": 8,
    "model.channels": [8, 8],
    "model.max_resolution": 8,
    "phase_images": 32,
    "batch_size": 8,
    "data_limit": 64,
    "log_every": 16,
    "checkpoint_every": 16,
    "keep_checkpoints": 20,
    "lr": 0.002,
    "encoder_images": 32,
    "coupling_hidden": 8,
}
STAGE1, TOTAL = 64, 96  # 4² and 8² phases of 32 images, then 32 encoder images


def random_nice(dim: int, dtype=torch.float32) -> NICE:
    """A NICE network far from the identity: its τ output layers (zero at initialisation) get random weights."""
    nice = NICE(dim, layers=8, hidden=12).to(dtype)
    with torch.no_grad():
        for layer in nice.layers:
            layer.tau.out.weight.normal_(0.0, 1.0)
            layer.tau.out.bias.normal_(0.0, 0.5)
    return nice


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_nice_inverse_recovers_the_input_to_float_precision(dtype, tolerance):
    nice = random_nice(16, dtype)
    z = torch.randn(64, 16, dtype=dtype)
    y = nice(z)
    assert (y - z).abs().max() > 0.5  # a far from trivial map
    scale = max(y.abs().max().item(), 1.0)
    assert (nice.inverse(y) - z).abs().max() <= tolerance * scale
    assert (nice(nice.inverse(z)) - z).abs().max() <= tolerance * scale


@pytest.mark.parametrize("dim", [5, 6])
def test_nice_jacobian_determinant_is_one(dim):
    nice = random_nice(dim, torch.float64)
    z = torch.randn(dim, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: nice(v[None])[0], z)
    off_diagonal = jacobian - torch.diag(torch.diagonal(jacobian))
    assert off_diagonal.abs().max() > 0.1  # coordinates really are mixed
    assert torch.linalg.det(jacobian).item() == pytest.approx(1.0, abs=1e-9)
    assert torch.equal(nice.log_det_jacobian(z[None]), torch.zeros(1, dtype=torch.float64))


def test_r1_is_the_squared_gradient_norm_of_a_linear_and_a_quadratic_discriminator():
    w, b = torch.randn(3 * 4 * 4), 0.7
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    scores = x.flatten(1) @ w + b  # ∇_x D = w for every sample
    assert r1_penalty(scores, x).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    a = torch.rand(3, 4, 4)
    scores = 0.5 * (a * x.pow(2)).flatten(1).sum(1)  # ∇_x D = a ⊙ x
    expected = (a * x.detach()).pow(2).flatten(1).sum(1).mean()
    assert r1_penalty(scores, x).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gan_losses_match_their_log_sigmoid_forms():
    real, fake, r1 = torch.randn(6), torch.randn(6), torch.tensor(0.3)
    expected_d = -(torch.log(torch.sigmoid(real)) + torch.log(1 - torch.sigmoid(fake))).mean() + 5.0 * r1
    assert discriminator_gan_loss(real, fake, r1, gamma=10.0).item() == pytest.approx(
        expected_d.item(), rel=1e-5
    )
    assert generator_gan_loss(fake).item() == pytest.approx(
        -torch.log(torch.sigmoid(fake)).mean().item(), rel=1e-5
    )


def test_ema_half_life_ramps_up_with_the_images_seen():
    assert ema_beta(32, 10_000, 0) == 0.0  # the first step copies the generator
    assert ema_beta(32, 10_000, 64_000) == pytest.approx(0.5 ** (32 / 3_200))  # 5% of 64k images
    assert ema_beta(32, 10_000, 10**6) == pytest.approx(0.5 ** (32 / 10_000))  # the configured half-life


def tiny_features() -> nn.Module:
    """A stand-in for VGG conv4_3: a small random conv net, the same weights every call."""
    generator = torch.Generator().manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return net


def run(tmp_path, name, **kwargs):
    return train_lia(
        resolve_lia_config("builtin", TINY), tmp_path / name, device="cpu", features=tiny_features(), **kwargs
    )


def tensors_of(result):
    return load_file(str(result.checkpoint))


def assert_same_state(a, b):
    ta, tb = tensors_of(a), tensors_of(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
    oa = torch.load(str(a.checkpoint).replace(".safetensors", ".train.pt"), weights_only=True)["optimizers"]
    ob = torch.load(str(b.checkpoint).replace(".safetensors", ".train.pt"), weights_only=True)["optimizers"]
    assert oa.keys() == ob.keys()
    for name in oa:
        for index, state in oa[name]["state"].items():
            for key, value in state.items():
                assert torch.equal(value, ob[name]["state"][index][key]), (name, index, key)


def test_stage_one_grows_and_resumes_bit_for_bit(tmp_path):
    events = []
    straight = run(tmp_path, "a", stage=1, report=lambda e, d: events.append((e, d)))
    assert straight.images_seen == STAGE1 and not straight.interrupted
    assert ("phase", {"resolution": 8, "images_seen": 32}) in events
    first = run(tmp_path, "b", stage=1, stop_after_images=24)  # mid 4²
    with pytest.raises(AutomodError, match="24 of 64"):
        run(tmp_path, "b", stage=2)
    second = run(tmp_path, "b", stage=1, resume=first.checkpoint, stop_after_images=40)  # into the 8² fade-in
    resumed = run(tmp_path, "b", stage=1, resume=second.checkpoint)
    assert resumed.images_seen == STAGE1
    assert_same_state(straight, resumed)
    tensors = tensors_of(straight)
    assert not any(k.startswith("encoder.") for k in tensors)  # the encoder is stage 2's
    assert any(
        not torch.equal(tensors[k], tensors[k.replace("decoder.", "decoder_ema.", 1)])
        for k in tensors
        if k.startswith("decoder.mapping")
    )  # the generator and its EMA both moved
    model = load_model(tmp_path / "a")
    assert not model.has_encoder and model.resolution == 8
    with pytest.raises(AutomodError, match="stage 1"):
        model.encode(torch.zeros(1, 3, 8, 8))


def test_stage_two_trains_only_encoder_and_discriminator_and_resumes_bit_for_bit(tmp_path):
    straight = run(tmp_path, "a")  # both stages in one go
    assert straight.images_seen == TOTAL
    gan = run(tmp_path, "b", stage=1)
    with pytest.raises(AutomodError, match="stage 1"):
        run(tmp_path, "c", stage=2)  # no stage-1 run there
    part = run(tmp_path, "b", stage=2, stop_after_images=80)
    resumed = run(tmp_path, "b", stage=2, resume=part.checkpoint)
    assert resumed.images_seen == TOTAL
    assert_same_state(straight, resumed)
    before, after = tensors_of(gan), tensors_of(resumed)
    assert all(torch.equal(v, after[k]) for k, v in before.items() if k.startswith("decoder"))  # g* frozen
    assert any(
        not torch.equal(v, after[k]) for k, v in before.items() if k.startswith("discriminator.")
    )  # c fine-tuned
    assert not any(k.startswith("encoder.") for k in before) and any(k.startswith("encoder.") for k in after)
    model = load_model(resumed.checkpoint)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    assert model.has_encoder and model.encode(x).shape == (2, 8)


def test_bf16_precision_is_applied_to_both_stages_and_keeps_weights_fp32(tmp_path):
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: (
            seen.append(out.dtype) if isinstance(module, nn.Conv2d) and torch.is_tensor(out) else None
        )
    )
    try:
        mixed = train_lia(
            resolve_lia_config("builtin", {**TINY, "precision": "bf16"}),
            tmp_path / "bf16",
            device="cpu",
            features=tiny_features(),
        )
    finally:
        hook.remove()
    assert torch.bfloat16 in seen  # the networks ran under bf16 autocast (the option used to be ignored)
    plain = run(tmp_path, "fp32")
    a, b = tensors_of(mixed), tensors_of(plain)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in a.values())
    assert any(
        not torch.equal(a[k], b[k]) for k in a if k.startswith("encoder.")
    )  # bf16 rounding changed training
    records = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert records and all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))


def test_stage_two_without_vgg_weights_fails_in_one_line_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(weight_files.VGG16.env_var, raising=False)
    monkeypatch.setattr(weight_files, "reachable", lambda url, timeout=0: False)
    with pytest.raises(AutomodError) as error:
        train_lia(resolve_lia_config("builtin", TINY), tmp_path / "run", device="cpu")
    assert "vgg16-397923af.pth" in str(error.value) and "\n" not in str(error.value)
    assert not run_checkpoints(tmp_path / "run")
    with pytest.raises(AutomodError, match="not a file"):
        vgg_conv43(tmp_path / "missing.pth")


def lia_model() -> LiaModel:
    config = LiaConfig(
        ModelConfig(max_resolution=16, latent_dim=8, channels=(8, 8, 8), latent="gaussian"), coupling_hidden=8
    )
    model = LiaModel(config)
    with torch.no_grad():
        for layer in model.decoder.mapping.layers:
            layer.tau.out.weight.normal_()
    return model.eval()


def test_model_round_trip_mixing_and_exact_reload(tmp_path):
    model = lia_model()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    y = model.encode(x)
    assert y.shape == (3, 8) and model.decode(y).shape == (3, 3, 16, 16)
    assert model.num_active_blocks == 3 and model.supports_mixing
    # sample_latents is NICE applied to N(0, I) draws, and to_prior undoes it exactly
    sampled = model.sample_latents(4, torch.Generator().manual_seed(3))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(sampled, model.decoder.mapping(z).detach()) and not torch.allclose(sampled, z)
    assert (model.to_prior(sampled) - z).abs().max() <= 1e-5 * sampled.abs().max()
    # layer-wise mixing: block 1 from y_b changes the image, and the pure assignments equal plain decoding
    y_a, y_b = sampled[:2], sampled[2:]
    mixed = model.decode(assign(y_a, y_b, range(1, 2), 3))
    assert torch.equal(model.decode(assign(y_a, y_a, range(1, 2), 3)), model.decode(y_a))
    assert not torch.allclose(mixed, model.decode(y_a)) and not torch.allclose(mixed, model.decode(y_b))
    path = model.interpolate_latents(y_a[0], y_b[0], torch.tensor([0.0, 0.25, 1.0]))
    assert (
        torch.equal(path[0], y_a[0])
        and torch.allclose(path[1], 0.75 * y_a[0] + 0.25 * y_b[0])
        and torch.equal(path[2], y_b[0])
    )
    save_model(tmp_path / "lia.safetensors", model)
    loaded = load_model(tmp_path / "lia.safetensors")
    assert isinstance(loaded, LiaModel) and loaded.config == model.config and loaded.level == model.level
    assert torch.equal(loaded.encode(x), y) and torch.equal(loaded.decode(y), model.decode(y))
    assert torch.equal(loaded.sample_latents(4, torch.Generator().manual_seed(3)), sampled)


def reference_vgg_conv43(state: dict, images: torch.Tensor) -> torch.Tensor:
    """VGG16 up to conv4_3 + ReLU written out by hand: convs at torchvision's indices, 2×2 max-pools after
    conv1_2, conv2_2, conv3_3; inputs from [-1, 1] to ImageNet-normalised [0, 1]."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((images + 1) / 2 - mean) / std
    for index in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21):
        h = F.relu(F.conv2d(h, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1))
        if index in (2, 7, 14):
            h = F.max_pool2d(h, 2)
    return h


def test_vgg_conv43_matches_a_hand_written_vgg16():
    widths = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
        (512, 512),
        (512, 512),
    ]
    state = {}
    for index, (c_in, c_out) in zip((0, 2, 5, 7, 10, 12, 14, 17, 19, 21), widths):
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3) * math.sqrt(2 / (9 * c_in))
        state[f"features.{index}.bias"] = torch.randn(c_out) * 0.1
    state["classifier.0.weight"] = torch.zeros(1)  # the rest of a real file is ignored
    net = VGGConv43(state)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(net(images), reference_vgg_conv43(state, images), atol=1e-4, rtol=1e-4)
    assert not any(p.requires_grad for p in net.parameters())
    del state["features.21.bias"]
    with pytest.raises(AutomodError, match="features.21.bias"):
        VGGConv43(state)
