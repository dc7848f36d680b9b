"""Metrics with small injected networks: FID end to end on HDF5 files, PPL against a closed form, LPIPS
reconstruction, projection, offline weight resolution and the real networks' loaders (random weights only)."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
from pytorch_fid import inception as pf
from torch import nn
from torchvision.models import alexnet

from automod_cli.config import ModelConfig
from automod_cli.errors import AutomodError
from automod_cli.features import weights
from automod_cli.features.crop import crop
from automod_cli.features.nets import inception_features, lpips_distance
from automod_cli.metrics import inversion
from automod_cli.metrics.data import EvalData, open_eval_data, quantize
from automod_cli.metrics.fid import dataset_statistics, fid, random_mixtures, sample_statistics
from automod_cli.metrics.frechet import frechet_distance
from automod_cli.metrics.inversion import CurvePoint, encoder_point, encoder_speedup, inversion_curve
from automod_cli.metrics.lpips_recon import reconstruction_lpips
from automod_cli.metrics.ppl import perceptual_path_length, trimmed_mean
from automod_cli.models import Automodulator
from automod_cli.models.latents import normalize, random_latents, slerp
from automod_cli.ops.projection import ProjectionSettings, project, record_steps
from data_prep.hdf5 import H5Writer, pyramid


class PixelFeatures(nn.Module):
    """A tiny 'Inception': a fixed random projection of 4×4-pooled pixels; counts its calls."""

    name = "test-pixel-features"

    def __init__(self, dim: int = 6):
        super().__init__()
        self.projection = nn.Linear(48, dim)
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.dtype == torch.uint8
        self.calls += 1
        pooled = nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        return self.projection(pooled)


class ConvDistance(nn.Module):
    """A tiny 'LPIPS': squared difference of random conv features, averaged per image; differentiable."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.conv(x)) - torch.tanh(self.conv(y))).pow(2).flatten(1).mean(1)


def squared_l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).pow(2).flatten(1).sum(1)


def write_h5(path, images: np.ndarray, split: str = "train"):
    """An automod image file holding uint8 NHWC `images`."""
    attrs = {"source": "test", "source_path": "memory", "alignment": "none", "split": split}
    writer = H5Writer(path, images.shape[1], attrs, fingerprint=str(path))
    for image in images:
        writer.add(pyramid(image))
    writer.commit()
    return path


# --- FID ---------------------------------------------------------------------------------------------------


def _direct_statistics(path, resolution, extractor):
    with h5py.File(path, "r") as file:
        pixels = torch.from_numpy(file[f"levels/{resolution}"][:])
    features = extractor(pixels).detach().double().numpy()
    return features.mean(0), np.cov(features, rowvar=False)


def test_fid_of_two_files_matches_a_direct_computation_and_is_cached(tmp_path):
    rng = np.random.default_rng(0)
    a = write_h5(tmp_path / "a.h5", rng.integers(0, 128, (40, 16, 16, 3), dtype=np.uint8))
    b = write_h5(tmp_path / "b.h5", rng.integers(100, 256, (30, 16, 16, 3), dtype=np.uint8))
    extractor = PixelFeatures()
    stats = {}
    for name, path in (("a", a), ("b", b)):
        stats[name], cached = dataset_statistics(
            open_eval_data(path, 8), extractor, batch_size=7, cache_dir=tmp_path / "cache"
        )
        assert not cached
    expected = frechet_distance(*_direct_statistics(a, 8, extractor), *_direct_statistics(b, 8, extractor))
    got = frechet_distance(stats["a"].mean, stats["a"].covariance, stats["b"].mean, stats["b"].covariance)
    assert got == pytest.approx(expected, rel=1e-6)
    assert expected > 0.01
    calls = extractor.calls
    again, cached = dataset_statistics(
        open_eval_data(a, 8), extractor, batch_size=7, cache_dir=tmp_path / "cache"
    )
    assert cached and extractor.calls == calls
    np.testing.assert_array_equal(again.covariance, stats["a"].covariance)
    _, cached_other_resolution = dataset_statistics(
        open_eval_data(a, 16), extractor, cache_dir=tmp_path / "cache"
    )
    assert not cached_other_resolution


def test_fid_of_a_model_against_a_file_of_its_own_samples_is_zero(tmp_path, tiny_config):
    model = Automodulator(tiny_config).eval()
    n, seed = 24, 7
    with torch.no_grad():  # the same latents the metric draws: one batch from a generator seeded with `seed`
        z = random_latents(n, tiny_config.latent_dim, generator=torch.Generator().manual_seed(seed))
        samples = quantize(model.decode(z, noise=True)).permute(0, 2, 3, 1).numpy()
    own = write_h5(tmp_path / "own.h5", samples)
    other = write_h5(
        tmp_path / "other.h5", np.random.default_rng(1).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    )
    extractor = PixelFeatures()
    same = fid(model, open_eval_data(own, 32), extractor, n=n, batch_size=n, seed=seed)
    different = fid(model, open_eval_data(other, 32), extractor, n=n, batch_size=n, seed=seed)
    assert same.fid == pytest.approx(0.0, abs=1e-6)
    assert different.fid > 0.01 and different.reference_count == 24 and not different.mixed


def test_random_mixtures_split_two_latents_at_an_inner_block():
    generator = torch.Generator().manual_seed(0)
    z_a, z_b = random_latents(200, 5, generator=generator), random_latents(200, 5, generator=generator)
    mixtures = random_mixtures(z_a, z_b, 4, generator)
    assert mixtures.shape == (200, 4, 5)
    assert torch.equal(mixtures[:, 0], z_a) and torch.equal(mixtures[:, -1], z_b)  # every row mixes
    switches = (mixtures[:, 1:] != mixtures[:, :-1]).any(-1)
    assert (switches.sum(1) == 1).all()  # one split per row
    assert set((switches.float().argmax(1) + 1).tolist()) == {1, 2, 3}  # j uniform over 1..B-1
    with pytest.raises(AutomodError):
        random_mixtures(z_a[:2], z_b[:2], 1)


@pytest.mark.parametrize("latent", ["sphere", "gaussian"])
@pytest.mark.parametrize("mix", [False, True])
def test_fid_samples_draw_from_the_models_prior(tiny_config, monkeypatch, latent, mix):
    """Unit latents for the automodulator; N(0, I) latents (norms spread around √D) for VAE/WAE-style models."""
    model = Automodulator(
        ModelConfig(max_resolution=32, latent_dim=64, channels=(16, 16, 8, 8), latent=latent)
    ).eval()
    seen = []
    decode = model.decode
    monkeypatch.setattr(model, "decode", lambda z, noise=False: seen.append(z) or decode(z, noise))
    sample_statistics(model, PixelFeatures(), n=200, batch_size=100, mix=mix)
    latents = torch.cat(seen).reshape(-1, 64)
    norms = latents.norm(dim=1)
    if latent == "sphere":
        torch.testing.assert_close(norms, torch.ones_like(norms))
    else:  # ‖z‖² ~ χ²(64): mean 64, standard deviation √128 ≈ 11.3
        assert abs(norms.pow(2).mean().item() - 64) < 3 and norms.pow(2).std().item() > 8


def test_fid_mix_refuses_a_classic_decoder(tiny_classic_config, tmp_path):
    model = Automodulator(tiny_classic_config).eval()
    data = open_eval_data(write_h5(tmp_path / "a.h5", np.zeros((4, 32, 32, 3), np.uint8)), 32)
    with pytest.raises(AutomodError, match="mix"):
        fid(model, data, PixelFeatures(), n=4, mix=True)


# --- PPL ---------------------------------------------------------------------------------------------------


class LinearDecoderModel(Automodulator):
    """A 2-d latent model whose decoder is x = c·Qz (orthonormal Q): its prior and interpolation are the
    Automodulator's own for `latent`."""

    def __init__(self, latent: str, c: float = 3.0):
        super().__init__(ModelConfig(max_resolution=8, latent_dim=2, channels=(4, 4), latent=latent))
        self.c = c
        self.q, _ = torch.linalg.qr(torch.randn(3 * 8 * 8, 2, generator=torch.Generator().manual_seed(0)))

    def decode(self, z: torch.Tensor, noise: bool = False) -> torch.Tensor:
        return (self.c * z @ self.q.T).reshape(-1, 3, 8, 8)


def test_slerp_stays_on_the_sphere_at_constant_speed():
    a, b = normalize(
        torch.randn(2, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ).unbind(0)
    angle = torch.arccos((a * b).sum())
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    path = slerp(a.expand(11, -1), b.expand(11, -1), t)
    torch.testing.assert_close(path.norm(dim=1), torch.ones(11, dtype=torch.float64))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    torch.testing.assert_close(
        torch.arccos((path[:-1] * path[1:]).sum(1).clamp(-1, 1)),
        torch.full((10,), float(angle) / 10, dtype=torch.float64),
    )


def test_ppl_of_a_linear_decoder_matches_the_closed_form():
    # 2-d unit latents: the angle θ between two random points is uniform on [0, π]. A decoder x = c·Qz with
    # orthonormal Q moves an image by c·θ·ε per ε of slerp, so LPIPS := ‖Δx‖² gives c²θ² per pair, and the
    # 1%/99% trimmed mean is c²·∫θ² over [0.01π, 0.99π] / (0.98π).
    model = LinearDecoderModel("sphere")
    result = perceptual_path_length(model, squared_l2, n=20_000, crop_mode="none", batch_size=5_000, seed=1)
    expected = model.c**2 * math.pi**2 * (0.99**3 - 0.01**3) / (3 * 0.98)
    assert result.ppl == pytest.approx(expected, rel=0.03)
    assert result.epsilon == 1e-4


def test_ppl_of_gaussian_latents_follows_straight_lines():
    # N(0, I) latents in 2-d, straight paths: an ε step moves the image by c·‖z₁ − z₀‖·ε, so each value is
    # c²‖z₁ − z₀‖², where ‖z₁ − z₀‖² ~ 2·χ²(2) is exponential with mean 4. Trimmed to its 1%..99% quantiles
    # q_p = −4·ln(1 − p), the mean is ∫ x·e^(−x/4)/4 dx over [q_1, q_99] / 0.98. (A slerp path would give
    # the angle-based value of the unit-sphere test instead.)
    model = LinearDecoderModel("gaussian")
    result = perceptual_path_length(model, squared_l2, n=20_000, crop_mode="none", batch_size=5_000, seed=1)

    def antiderivative(x: float) -> float:  # of x·e^(−x/4)/4
        return -(x + 4) * math.exp(-x / 4)

    low, high = -4 * math.log(0.99), -4 * math.log(0.01)
    expected = model.c**2 * (antiderivative(high) - antiderivative(low)) / 0.98
    assert result.ppl == pytest.approx(expected, rel=0.03)


def test_trimmed_mean_drops_the_extreme_percent():
    values = np.concatenate([np.full(990, 1.0), np.full(5, -1e9), np.full(5, 1e9)])
    assert trimmed_mean(values) == pytest.approx(1.0)
    assert trimmed_mean(np.arange(1000.0)) == pytest.approx(np.arange(10.0, 990.0).mean(), rel=1e-3)


def test_face_crop_is_the_stylegan_window():
    images = torch.arange(256 * 256, dtype=torch.float32).reshape(1, 1, 256, 256)
    window = crop(images, "face")
    assert window.shape[-2:] == (128, 128)
    assert window[0, 0, 0, 0] == images[0, 0, 96, 64]
    assert crop(images, "center")[0, 0, 0, 0] == images[0, 0, 64, 64]
    big = crop(torch.ones(1, 3, 1024, 1024), "face")
    assert big.shape[-1] == 256  # 512-wide window box-downscaled to 256 as StyleGAN
    with pytest.raises(AutomodError):
        crop(images, "eyes")


# --- LPIPS reconstruction ------------------------------------------------------------------------------------


class PixelAutoencoder(nn.Module):
    """Stand-in for a model whose latent is the image itself; `offset` spoils the reconstruction."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        self.offset = nn.Parameter(torch.tensor(offset))

    def encode(self, x):
        return x.flatten(1)

    def decode(self, z, noise=False):
        return z.reshape(-1, 3, 16, 16) + self.offset


def _memory_data(n: int = 10) -> EvalData:
    images = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    return EvalData(images, "memory", "memory", "test", 16)


def test_lpips_recon_is_zero_for_a_perfect_autoencoder():
    distance = ConvDistance()
    result = reconstruction_lpips(
        PixelAutoencoder(), _memory_data(), distance, crop_mode="center", batch_size=3
    )
    assert result.lpips == 0.0 and result.images == 10


def test_lpips_recon_averages_the_cropped_distances():
    data, distance = _memory_data(), ConvDistance()
    result = reconstruction_lpips(PixelAutoencoder(0.1), data, distance, n=8, crop_mode="face", batch_size=3)
    images = data.dataset[:8]
    expected = distance(crop(images, "face"), crop((images + 0.1).clamp(-1, 1), "face"))
    assert result.lpips == pytest.approx(float(expected.mean()), rel=1e-5)
    assert result.images == 8 and result.lpips > 0


# --- projection ---------------------------------------------------------------------------------------------


def test_record_steps_form_a_log_grid():
    assert record_steps(200) == [0, 1, 2, 5, 10, 20, 50, 100, 200]
    assert record_steps(30) == [0, 1, 2, 5, 10, 20, 30]
    assert record_steps(0) == [0]


def test_projection_lowers_the_distance_with_more_steps(tiny_config):
    model = Automodulator(tiny_config).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        targets = model.decode(random_latents(4, tiny_config.latent_dim, generator=generator), noise=False)
    settings = ProjectionSettings(steps=60, lr=0.05, start="random")
    fit = project(model, targets, ConvDistance(), squared_l2, settings, crop_mode="none", generator=generator)
    by_step = {point.step: float(point.distances.mean()) for point in fit.trace}
    assert sorted(by_step) == record_steps(60)
    assert by_step[60] < 0.5 * by_step[0]
    assert by_step[20] < by_step[0]
    torch.testing.assert_close(fit.latents.norm(dim=1), torch.ones(4))
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was
    seconds = [point.seconds for point in fit.trace]
    assert seconds == sorted(seconds)


def test_encoder_start_begins_at_the_encoder_reconstruction(tiny_config):
    model = Automodulator(tiny_config).eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    distance = ConvDistance()
    fit = project(model, images, distance, distance, ProjectionSettings(steps=2), crop_mode="none")
    _, direct = encoder_point(model, images, distance, "none")
    torch.testing.assert_close(fit.trace[0].distances, direct)


def test_inversion_curve_has_the_encoder_point_and_one_point_per_budget(tiny_config):
    model = Automodulator(tiny_config).eval()
    data = EvalData(torch.rand(5, 3, 32, 32) * 2 - 1, "memory", "memory", "test", 32)
    curve = inversion_curve(
        model,
        data,
        ConvDistance(),
        ConvDistance(),
        ProjectionSettings(steps=5),
        n=5,
        batch_size=2,
        crop_mode="none",
    )
    assert [p.method for p in curve] == ["encoder"] + ["projection"] * len(record_steps(5))
    assert [p.step for p in curve[1:]] == record_steps(5)
    assert curve[0].lpips == pytest.approx(curve[1].lpips, rel=1e-5)  # step 0 of the encoder start
    assert curve[-1].lpips < curve[1].lpips


def test_inversion_curve_warms_up_once_per_batch_shape_without_changing_the_draws(tiny_config, monkeypatch):
    model = Automodulator(tiny_config).eval()
    images = torch.rand(5, 3, 32, 32) * 2 - 1
    data = EvalData(images, "memory", "memory", "test", 32)
    distance, settings = ConvDistance(), ProjectionSettings(steps=3, start="random")
    calls, real = [], inversion.warm_up
    monkeypatch.setattr(
        inversion, "warm_up", lambda m, batch, *a: calls.append(len(batch)) or real(m, batch, *a)
    )
    curve = inversion.inversion_curve(
        model, data, distance, distance, settings, n=5, batch_size=2, crop_mode="none", seed=4
    )
    assert calls == [2, 1]  # batches of 2, 2 and 1: each new shape once, before it is timed
    # the warm-up draws from its own generator: the curve is what the run's generator alone gives
    generator = torch.Generator().manual_seed(4)
    final = torch.cat(
        [
            project(model, batch, distance, distance, settings, "none", [3], generator).trace[-1].distances
            for batch in images.split(2)
        ]
    )
    assert curve[-1].lpips == pytest.approx(float(final.double().mean()), rel=1e-6)


def test_encoder_speedup_is_the_time_to_the_first_step_at_the_encoders_lpips():
    encoder = CurvePoint("encoder", 0, 0.002, 0.30, 0.1)
    trace = [
        (0, 0.001, 0.9),
        (1, 0.05, 0.6),
        (2, 0.1, 0.45),
        (5, 0.25, 0.31),
        (10, 0.5, 0.29),
        (20, 1.0, 0.2),
    ]
    curve = [encoder] + [CurvePoint("projection", s, t, d, 0.0) for s, t, d in trace]
    reached = encoder_speedup(curve)
    assert reached.reached and reached.step == 10 and reached.seconds == 0.5
    assert reached.ratio == pytest.approx(0.5 / 0.002)  # 250×
    never = encoder_speedup(curve[:5])  # stops at step 5, LPIPS 0.31 > 0.30: a lower bound from the last step
    assert not never.reached and never.step == 5 and never.ratio == pytest.approx(0.25 / 0.002)
    # step 0 (the start, before any optimisation) never counts, even at the encoder's LPIPS
    assert encoder_speedup([encoder, CurvePoint("projection", 0, 0.001, 0.1, 0.0)]) is None
    assert (
        encoder_speedup([CurvePoint("encoder", 0, 0.0, 0.3, 0.0)] + curve[1:]) is None
    )  # no measurable time


# --- weights and the real networks (random weights, never downloaded) ------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch cache, no environment overrides and no network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for weight in (weights.INCEPTION, weights.ALEXNET, weights.VGG16):
        monkeypatch.delenv(weight.env_var, raising=False)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=0: False)
    return tmp_path


def test_missing_weights_give_one_line_naming_the_file(offline):
    for weight in (weights.INCEPTION, weights.ALEXNET, weights.VGG16):
        with pytest.raises(AutomodError) as info:
            weights.resolve_weights(weight)
        message = str(info.value)
        assert weight.name in message and weight.env_var in message and "\n" not in message
        assert str(weights.cache_dir()) in message


def test_weights_are_found_explicitly_by_environment_and_in_the_cache(offline, monkeypatch):
    explicit = offline / "mine.pth"
    explicit.write_bytes(b"x")
    assert weights.resolve_weights(weights.ALEXNET, explicit) == explicit
    with pytest.raises(AutomodError, match="not a file"):
        weights.resolve_weights(weights.ALEXNET, offline / "absent.pth")
    monkeypatch.setenv(weights.ALEXNET.env_var, str(explicit))
    assert weights.resolve_weights(weights.ALEXNET) == explicit
    monkeypatch.delenv(weights.ALEXNET.env_var)
    cached = weights.cache_dir() / weights.ALEXNET.name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert weights.resolve_weights(weights.ALEXNET) == cached


def test_pick_explicit_matches_standard_names(tmp_path):
    inception, alex = tmp_path / weights.INCEPTION.name, tmp_path / weights.ALEXNET.name
    both = [weights.INCEPTION, weights.ALEXNET]
    assert (
        weights.pick_explicit([tmp_path / "renamed.pth"], weights.INCEPTION, [weights.INCEPTION])
        == tmp_path / "renamed.pth"
    )
    assert weights.pick_explicit([inception, alex], weights.ALEXNET, both) == alex
    assert weights.pick_explicit([inception], weights.ALEXNET, both) is None
    with pytest.raises(AutomodError):
        weights.pick_explicit([tmp_path / "renamed.pth"], weights.ALEXNET, both)


def test_damaged_weight_file_is_one_line(tmp_path):
    bad = tmp_path / weights.ALEXNET.name
    bad.write_bytes(b"not a torch file")
    with pytest.raises(AutomodError, match=weights.ALEXNET.name):
        weights.load_state_dict(bad, weights.ALEXNET)


def test_lpips_loads_its_trunk_from_a_torchvision_style_file(offline):
    features = {f"features.{k}": v for k, v in alexnet().features.state_dict().items()}
    path = offline / weights.ALEXNET.name
    torch.save(features, path)
    distance = lpips_distance("alex", path)
    trunk = dict(distance.lpips.net.named_parameters())
    torch.testing.assert_close(trunk["slice2.3.weight"], features["features.3.weight"])
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert distance(x, x).abs().max() < 1e-6
    assert (distance(x, -x) > 0).all()
    with pytest.raises(AutomodError, match="at least 32"):
        distance(x[..., :16, :16], x[..., :16, :16])


def test_fid_inception_builds_from_a_weight_file_and_gives_pool3_features(offline):
    # pytorch-fid's FID network with random weights, saved as the weight file would be
    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [
        ("Mixed_5b", pf.FIDInceptionA(192, 32)),
        ("Mixed_5c", pf.FIDInceptionA(256, 64)),
        ("Mixed_5d", pf.FIDInceptionA(288, 64)),
        ("Mixed_6b", pf.FIDInceptionC(768, 128)),
        ("Mixed_6c", pf.FIDInceptionC(768, 160)),
        ("Mixed_6d", pf.FIDInceptionC(768, 160)),
        ("Mixed_6e", pf.FIDInceptionC(768, 192)),
        ("Mixed_7b", pf.FIDInceptionE_1(1280)),
        ("Mixed_7c", pf.FIDInceptionE_2(2048)),
    ]:
        setattr(net, name, block)
    monkeypatch_path = offline / "torch" / "hub" / "checkpoints"
    monkeypatch_path.mkdir(parents=True)
    torch.save(net.state_dict(), monkeypatch_path / weights.INCEPTION.name)
    extractor = inception_features()  # found in the (test) cache, never downloaded
    torch.testing.assert_close(extractor.net.blocks[0][0].conv.weight, net.Conv2d_1a_3x3.conv.weight)
    features = extractor(torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8))
    assert features.shape == (1, 2048)
    with pytest.raises(TypeError):
        extractor(torch.zeros(1, 3, 16, 16))
