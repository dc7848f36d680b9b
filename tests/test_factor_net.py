"""The factor network: targets that respect each angle's symmetry, deterministic training that leaves torch's
global state alone, a cache that round-trips, and features that carry what it was trained to read."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from automod_cli.errors import AutomodError
from automod_cli.metrics.builtin import factor_net
from automod_cli.metrics.builtin.factor_net import (
    FactorFeatures,
    FactorNet,
    TrainingPlan,
    load_or_train,
    train_factor_net,
)
from automod_cli.metrics.builtin.factor_targets import NUM_OUTPUTS, encode_targets, standardisation
from data_prep.builtin import (
    COARSE_FACTORS,
    FINE_FACTORS,
    SHAPE_KINDS,
    SPLITS,
    Factors,
    downscale,
    generate,
    render,
)

TINY = TrainingPlan(16, images=256, steps=12, batch_size=32)


def _one(shape: str, rotation: float, aspect: float) -> Factors:
    """One image's factors: the named shape at a given rotation and aspect, stripes, no grain."""
    coarse = dict(
        shape_kind=SHAPE_KINDS.index(shape),
        center_x=0.5,
        center_y=0.5,
        size=0.2,
        rotation=rotation,
        aspect=aspect,
        horizon_height=0.6,
        horizon_tilt=0.1,
    )
    fine = dict(
        shape_hue=0.1,
        shape_saturation=0.8,
        shape_value=0.9,
        sky_hue=0.5,
        sky_saturation=0.2,
        sky_value=0.9,
        ground_hue=0.3,
        ground_saturation=0.5,
        ground_value=0.3,
        texture_kind=0,
        texture_frequency=15.0,
        texture_angle=0.4,
        texture_phase=1.0,
        texture_contrast=0.2,
        grain_amplitude=0.0,
        grain_seed=0,
    )
    return Factors(
        np.array([[coarse[n] for n in COARSE_FACTORS]]), np.array([[fine[n] for n in FINE_FACTORS]])
    )


@pytest.mark.parametrize(
    "shape, aspect, turn",
    [
        ("square", 1.0, np.pi / 2),
        ("square", 1.3, np.pi),
        ("triangle", 1.0, 2 * np.pi / 3),
        ("star", 1.0, 2 * np.pi / 5),
        ("cross", 1.0, np.pi / 2),
        ("disc", 1.3, np.pi),
    ],
)
def test_a_turn_that_draws_the_same_image_gives_the_same_rotation_target(shape, aspect, turn):
    before, after = _one(shape, 0.3, aspect), _one(shape, 0.3 + turn, aspect)
    pixels_before, pixels_after = render(before).astype(int), render(after).astype(int)
    assert np.abs(pixels_before - pixels_after).max() <= 1  # the renderer agrees the two are one picture
    mean, std = np.zeros(15), np.ones(15)
    torch.testing.assert_close(
        encode_targets(before, mean, std).continuous, encode_targets(after, mean, std).continuous
    )
    if (
        aspect == 1.0 or shape == "disc"
    ):  # a stretched square's k = 4 cannot tell a quarter turn (see factor_targets)
        moved = encode_targets(_one(shape, 0.3 + turn / 2, aspect), mean, std).continuous
        assert not torch.allclose(
            moved, encode_targets(before, mean, std).continuous
        )  # half that turn is visible


def test_stripes_half_a_turn_round_at_the_opposite_phase_are_one_picture_and_one_target():
    before = _one("disc", 0.3, 1.2)
    fine = before.fine.copy()
    angle, phase = FINE_FACTORS.index("texture_angle"), FINE_FACTORS.index("texture_phase")
    fine[0, angle] += np.pi
    fine[0, phase] = 2 * np.pi - fine[0, phase]  # cos(2π k·d + φ) = cos(2π (−k)·d − φ)
    after = Factors(before.coarse, fine)
    assert np.abs(render(before).astype(int) - render(after).astype(int)).max() <= 1
    mean, std = np.zeros(15), np.ones(15)
    torch.testing.assert_close(
        encode_targets(before, mean, std).continuous, encode_targets(after, mean, std).continuous
    )


def test_regressed_targets_are_standardised_over_the_training_images():
    _, factors = generate(500, seed=SPLITS["train"][0])
    mean, std = standardisation(factors)
    regressed = encode_targets(factors, mean, std).continuous[:, : len(mean)].double()
    torch.testing.assert_close(
        regressed.mean(0), torch.zeros(len(mean), dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        regressed.std(0, unbiased=False), torch.ones(len(mean), dtype=torch.float64), atol=1e-5, rtol=0
    )


def test_training_twice_gives_identical_weights_and_leaves_torch_global_state_alone():
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = train_factor_net(TINY).state_dict()
    assert torch.equal(torch.rand(3), expected_next) and torch.get_num_threads() == threads
    second = train_factor_net(TINY).state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    other = train_factor_net(TrainingPlan(16, images=256, steps=12, batch_size=32, seed=1)).state_dict()
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_the_feature_name_names_the_recipe_and_the_trained_weights():
    net = train_factor_net(TINY)
    name = FactorFeatures(net, TINY).name
    assert name == f"{TINY.name}-w{factor_net.weights_digest(net)}" and len(name) == len(TINY.name) + 10
    assert FactorFeatures(train_factor_net(TINY), TINY).name == name  # the same training, the same name
    state = net.state_dict()
    hashed = hashlib.sha256()
    for key, tensor in state.items():  # the digest written out independently
        hashed.update(f"{key}{tuple(tensor.shape)}".encode() + tensor.numpy().tobytes())
    assert name.endswith(hashed.hexdigest()[:8])
    with torch.no_grad():
        next(net.parameters())[0].view(-1)[0] += 1e-6  # weights another CPU's rounding could give
    assert FactorFeatures(net, TINY).name != name


def test_the_cache_round_trips_and_ignores_files_of_another_recipe(tmp_path):
    net, cached = load_or_train(TINY, tmp_path)
    path = tmp_path / f"factor-net-16px-v{factor_net.VERSION}-{TINY.digest()}.safetensors"
    assert (
        not cached and path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    )  # no temp file left
    again, cached = load_or_train(TINY, tmp_path)
    assert cached and all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values())
    )
    path.write_bytes(b"damaged")
    _, cached = load_or_train(TINY, tmp_path)
    assert not cached and path.stat().st_size > 100  # retrained and rewritten


def test_the_network_reads_layout_from_held_out_images():
    plan = TrainingPlan(16, images=1024, steps=150, batch_size=64)
    net = train_factor_net(plan)
    pictures, factors = generate(256, seed=SPLITS["test"][0])
    images = torch.from_numpy(downscale(pictures, 16)).float() / 127.5 - 1
    _, train_factors = generate(1024, seed=SPLITS["train"][0])
    targets = encode_targets(factors, *standardisation(train_factors)).continuous
    with torch.no_grad():
        outputs = net(images)
    assert outputs.shape == (256, NUM_OUTPUTS) and net.features(images).shape == (256, factor_net.FEATURES)
    for column in (0, 4):  # centre x and horizon height, explained far better than by the mean (R² > 0.5)
        residual = ((outputs[:, column] - targets[:, column]) ** 2).mean()
        assert residual < 0.5 * targets[:, column].var()


def test_recipes_outside_the_dataset_are_refused_and_names_change_with_the_recipe():
    with pytest.raises(AutomodError):
        TrainingPlan(128)
    with pytest.raises(AutomodError):
        TrainingPlan(32, steps=0)
    assert TrainingPlan(32).name != TrainingPlan(32, steps=801).name and TrainingPlan(32).name.startswith(
        "factor-net-32px-v"
    )
    assert FactorNet(4)(torch.zeros(2, 3, 4, 4)).shape == (2, NUM_OUTPUTS)
