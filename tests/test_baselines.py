"""The baselines of NeurIPS Table 2a (Balanced PIONEER, VAE, WAE): their objectives against closed forms, their
paper settings, and each one trained, resumed, reconstructed and evaluated end to end at tiny size."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tiny_models import TINY_RUN, TinyDistance, cli_settings, one_line_error

from automod_cli import losses
from automod_cli.locate import load_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig, TrainConfig
from automod_cli.presets import resolve_train_config
from automod_cli.errors import AutomodError
from automod_cli.features import weights
from automod_cli.models import Automodulator
from automod_cli.training.baselines import PRIOR_VARIANCE, gaussian_kl, reparameterize
from automod_cli.training import resume, train
from automod_cli.training.automodulator import AutomodulatorRun
from data_prep.builtin import generate

TINY = {
    **TINY_RUN,
    "model.max_resolution": 8,
    "phase_images": 64,
    "data_limit": 64,
    "log_every": 32,
    "checkpoint_every": 64,
}


def tiny_run(kind: str, decoder: str | None = None) -> TrainConfig:
    extra = {"model.decoder": decoder} if decoder else {}
    return resolve_train_config("builtin", {**TINY, "kind": kind, **extra})


# --- objectives -----------------------------------------------------------------------------------------------


def test_vae_kl_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=(5, 7)), rng.uniform(0.2, 3.0, size=(5, 7))
    # KL[N(μ, σ²) ‖ N(0, 1)] = log(1/σ) + (σ² + μ²)/2 − 1/2 per dimension, summed over dimensions
    expected = (np.log(1 / sigma) + (sigma**2 + mu**2) / 2 - 0.5).sum(axis=1).mean()
    got = gaussian_kl(torch.from_numpy(mu), torch.from_numpy(np.log(sigma**2))).item()
    assert got == pytest.approx(expected, rel=1e-12)
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0  # q = p


def test_reparameterised_samples_follow_the_posterior_and_carry_gradients():
    mean = torch.tensor([[1.0, -2.0]]).repeat(40_000, 1).requires_grad_()
    log_var = torch.log(torch.tensor([[0.25, 4.0]])).repeat(40_000, 1).requires_grad_()
    z = reparameterize(mean, log_var)
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.05)
    assert torch.allclose(z.std(0), torch.tensor([0.5, 2.0]), rtol=0.03)
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones_like(mean))  # ∂z/∂μ = 1
    assert log_var.grad.abs().sum() > 0


def _imq_v_statistic(
    x: torch.Tensor, y: torch.Tensor, scales=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
) -> torch.Tensor:
    """The biased MMD² (diagonal terms kept) of each pair of sample sets in (draws, n, D) batches, written out
    independently as a power check for the test below."""
    total = torch.zeros(x.shape[0])
    for s in scales:
        c = 2 * x.shape[2] * PRIOR_VARIANCE * s
        k = lambda a, b: (c / (c + torch.cdist(a, b).pow(2))).mean(dim=(1, 2))  # noqa: E731
        total = total + k(x, x) + k(y, y) - 2 * k(x, y)
    return total


def test_mmd_is_unbiased_for_identical_distributions_and_positive_for_shifted_ones():
    draws, n, dim = 1000, 4, 3
    x, y = torch.randn(2, draws, n, dim)
    same = torch.tensor([losses.mmd_imq(a, b, prior_variance=PRIOR_VARIANCE).item() for a, b in zip(x, y)])
    error = same.std() / math.sqrt(draws)
    assert abs(same.mean()) < 4 * error  # 0 in expectation
    assert (
        _imq_v_statistic(x, y).mean() > 20 * error
    )  # keeping the diagonal (4 samples a side) would be far off
    shifted = torch.tensor([losses.mmd_imq(a + 1.0, b).item() for a, b in zip(x, y)])
    assert shifted.mean() > 10 * shifted.std() / math.sqrt(draws)


# --- settings -------------------------------------------------------------------------------------------------


def test_model_settings_are_the_papers():
    vae = resolve_train_config("builtin", {"kind": "vae"})
    assert vae.kl_weight == 0.005 and set(vae.lr.values()) == {5e-4}  # Supp. App. A
    assert vae.lr[32] * vae.encoder_lr_scale == pytest.approx(1e-4)
    assert (vae.model.latent, vae.model.variational, vae.model.decoder) == ("gaussian", True, "adain")
    for decoder, weight in (("adain", 4.0), ("classic", 2.0)):
        wae = resolve_train_config("ffhq", {"kind": "wae", "model.decoder": decoder})
        assert wae.mmd_weight == weight and set(wae.lr.values()) == {2e-4} and wae.encoder_lr_scale == 1.0
        assert (wae.model.latent, wae.model.variational) == ("gaussian", False)
    for joint in (vae, wae):  # one joint loss: the config records that no mixed samples or L_j are used
        assert (
            not joint.layer_loss
            and joint.recipe.mixed_fraction_encoder == joint.recipe.mixed_fraction_decoder == 0.0
        )
    pioneer = resolve_train_config("ffhq", {"kind": "pioneer"})
    assert pioneer.model.decoder == "classic" and pioneer.reconstruction == "l1" and not pioneer.layer_loss
    assert (
        pioneer.recipe.mixed_fraction_encoder == pioneer.recipe.mixed_fraction_decoder == 0.0
        and pioneer.model.latent == "sphere"
    )
    assert pioneer.lr == resolve_train_config("ffhq").lr  # the AGE schedule is shared
    assert (
        resolve_train_config("builtin", {"kind": "wae", "mmd_weight": "3"}).mmd_weight == 3.0
    )  # the user has the last word


def test_old_configs_load_as_automodulators():
    data = resolve_train_config("builtin").to_dict()
    for name in ("kind", "kl_weight", "mmd_weight", "encoder_lr_scale"):
        del data[name]
    for name in ("latent", "variational"):
        del data["model"][name]
    config = TrainConfig.from_dict(data)
    assert config.kind == "automod" and config.model.latent == "sphere" and config.encoder_lr_scale == 1.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kind": "gan"}, "unknown model"),
        ({"kind": "vae", "model.decoder": "modulated"}, "unknown decoder"),
        (
            {"model.decoder": "classic"},
            "--model pioneer",
        ),  # the automodulator mixes; a classic decoder cannot
        ({"kind": "wae", "model.latent": "sphere"}, "model.latent=gaussian"),
        ({"kind": "vae", "kl_weight": -1}, "kl_weight"),
    ],
)
def test_impossible_model_settings_are_refused(overrides, message):
    with pytest.raises(AutomodError, match=message):
        resolve_train_config("builtin", overrides)


# --- models ---------------------------------------------------------------------------------------------------


def test_gaussian_models_sample_the_normal_prior_and_encode_to_the_posterior_mean(tiny_config):
    vae = Automodulator(
        ModelConfig(**{**tiny_config.to_dict(), "latent": "gaussian", "variational": True})
    ).eval()
    z = vae.sample_latents(4000)
    assert abs(z.mean().item()) < 0.01 and z.std().item() == pytest.approx(
        1.0, abs=0.01
    )  # N(0, I), not the sphere
    assert vae.constrain_latent(z) is z
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    mean, log_var = vae.encoder.posterior(x, vae.level)
    assert torch.equal(vae.encode(x), mean) and log_var.shape == mean.shape
    sphere = Automodulator(tiny_config)
    assert torch.allclose(sphere.sample_latents(5).norm(dim=1), torch.ones(5))
    with pytest.raises(AutomodError, match="variational"):
        sphere.encoder.posterior(x, sphere.level)


@pytest.mark.parametrize("kind", ["vae", "wae"])
def test_one_joint_step_trains_encoder_and_decoder_at_their_learning_rates(tmp_path, kind):
    trainer = AutomodulatorRun(tiny_run(kind), tmp_path / "run", device="cpu")
    before = {
        name: [p.detach().clone() for p in net.parameters()]
        for name, net in (("enc", trainer.nets.encoder), ("dec", trainer.nets.decoder))
    }
    trainer.run(stop_after_images=16)
    for name, net in (("enc", trainer.nets.encoder), ("dec", trainer.nets.decoder)):
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    rates = {name: opt.param_groups[0]["lr"] for name, opt in trainer.optimizers.items()}
    expected = {"vae": (1e-4, 5e-4), "wae": (2e-4, 2e-4)}[kind]  # Supp. App. A
    assert (rates["encoder"], rates["decoder"]) == pytest.approx(expected)


# --- end to end -----------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder with two built-in pictures and a stand-in LPIPS network (placeholder weight file)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(weights.ALEXNET.env_var, raising=False)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=0: False)
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / weights.ALEXNET.name).write_bytes(b"placeholder")
    distance = TinyDistance()
    monkeypatch.setattr("automod_cli.features.nets.lpips_distance", lambda net, path, device: distance)
    for i, picture in enumerate(generate(2, seed=5)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"{i}.png")
    return tmp_path


@pytest.mark.parametrize("kind, decoder", [("pioneer", None), ("vae", None), ("wae", "classic")])
def test_trains_resumes_reconstructs_and_evaluates(workdir, capsys, kind, decoder):
    config = tiny_run(kind, decoder)
    straight = train(config, workdir / "straight", device="cpu")
    first = train(config, workdir / "run", device="cpu", stop_after_images=48)
    resumed = resume(first.checkpoint, device="cpu")
    assert resumed.images_seen == straight.images_seen == 128
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    mixes = config.model.decoder == "adain"
    assert (workdir / "run" / "grids" / "8-mix.png").exists() == mixes
    assert load_model(workdir / "run").config == config.model

    for seed, out in (("0", "recon.png"), ("1", "again.png")):
        assert main(["reconstruct", "0.png", "1.png", "--model", "run", "--seed", seed, "--out", out]) == 0
    once, again = (np.asarray(Image.open(workdir / name)) for name in ("recon.png", "again.png"))
    assert once.shape[1] > 2 * 8 and np.array_equal(
        once, again
    )  # encoding is deterministic (a VAE uses the mean)
    capsys.readouterr()
    assert main(["eval", "lpips", "--model", "run", "--n", "8", "--crop", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 8 and result["lpips"] > 0
    assert main(["info", "run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == kind
    if not mixes:
        one_line_error(
            main(["mix", "0.png", "1.png", "--model", "run", "--coarse"]), capsys.readouterr().err, "classic"
        )


def test_train_command_takes_model_and_decoder(workdir, capsys):
    assert (
        main(
            [
                "train",
                "--model",
                "wae",
                "--decoder",
                "classic",
                *cli_settings(TINY),
                "--stop-after",
                "16",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    saved = json.loads((workdir / "runs" / "builtin-wae" / "config.json").read_text())
    assert saved["kind"] == "wae" and saved["model"]["decoder"] == "classic" and saved["mmd_weight"] == 2.0
    capsys.readouterr()
    one_line_error(
        main(["train", "--model", "gan", "--stop-after", "16"]), capsys.readouterr().err, "unknown model"
    )
