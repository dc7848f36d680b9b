"""Flip invariance (NeurIPS Sec. 3.3-4, Eq. 10-11): the support block, the loss against hand-written references,
and `--flip-invariance-layer` end to end (training, bit-exact resume, reload, `automod mix`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from tiny_models import TINY_RUN, flip_invariance_loss, tiny_model

from automod_cli import ops
from automod_cli.locate import load_model
from automod_cli.cli import main
from automod_cli.config import ModelConfig, TrainConfig
from automod_cli.presets import resolve_train_config
from automod_cli.errors import AutomodError
from automod_cli.images import to_uint8
from automod_cli.losses import AdaptiveRobustLoss, reconstruction_distance
from automod_cli.models import Automodulator
from automod_cli.models.latents import normalize, scale_blocks
from automod_cli.nn.resample import upsample
from automod_cli.training import invariance
from automod_cli.training import resume, train
from automod_cli.training.schedule import phase_at
from automod_cli.training.steps import Nets
from data_prep.builtin import generate

CHANNELS = (16, 16, 8, 8)  # tiny_model's
# J = 2 in a 32² model: 4², 8², the support block (8² again, no upsampling), 16², 32² (NeurIPS Sec. 4's layout)
LEVELS_J2 = (0, 1, 1, 2, 3)


def decode_by_hand(
    net: Automodulator, zs: list[torch.Tensor], level: int, alpha: float = 1.0
) -> torch.Tensor:
    """Reference decoder for the J = 2 layout: run the blocks of LEVELS_J2 up to `level`, block b driven by zs[b],
    and fade the new level in over the upsampled image of the level below."""
    dec = net.decoder
    x = dec.constant.expand(zs[0].shape[0], -1, -1, -1)
    previous = None
    for b, block_level in enumerate(LEVELS_J2):
        if block_level > level:
            break
        if block_level == level and previous is None and level > 0 and alpha < 1:
            previous = upsample(dec.to_rgb[level - 1](x))
        x = dec.blocks[b](x, zs[b], noise=False)
    rgb = dec.to_rgb[level](x)
    return rgb if previous is None else alpha * rgb + (1 - alpha) * previous


def test_support_block_exists_only_when_asked_and_the_default_decoder_is_unchanged():
    plain, support = tiny_model().decoder, tiny_model(support_block=2).decoder
    shapes = {name: tuple(p.shape) for name, p in plain.state_dict().items()}
    # the default decoder: one block per level, conv1 from the level below, to_rgb per level
    assert {name.split(".")[1] for name in shapes if name.startswith("blocks.")} == {"0", "1", "2", "3"}
    for i, c in enumerate(CHANNELS):
        assert shapes[f"blocks.{i}.conv1.weight" if i else "blocks.0.conv.weight"] == (
            c,
            CHANNELS[max(i - 1, 0)],
            3,
            3,
        )
        assert shapes[f"to_rgb.{i}.weight"] == (3, c, 1, 1)
    assert [getattr(block, "grows", False) for block in plain.blocks] == [False, True, True, True]
    # with J = 2: the same parameters once the blocks after the support block are renumbered, plus block 2
    renamed = {}
    for name, p in support.state_dict().items():
        parts = name.split(".")
        if parts[0] == "blocks" and int(parts[1]) >= 2:
            parts[1] = "support" if parts[1] == "2" else str(int(parts[1]) - 1)
        renamed[".".join(parts)] = tuple(p.shape)
    extra = {
        name[len("blocks.support.") :]: s for name, s in renamed.items() if name.startswith("blocks.support.")
    }
    assert {n: s for n, s in renamed.items() if not n.startswith("blocks.support.")} == shapes
    assert extra == {
        n[len("blocks.1.") :]: s for n, s in shapes.items() if n.startswith("blocks.1.")
    }  # an 8² block
    assert [getattr(block, "grows", False) for block in support.blocks] == [False, True, False, True, True]
    assert tiny_model(
        support_block=2
    ).config.block_levels == LEVELS_J2 and tiny_model().config.block_levels == (0, 1, 2, 3)


def test_support_block_decodes_at_every_level_and_during_fade_in():
    net = tiny_model(support_block=2)
    z = normalize(torch.randn(5, 2, 16))  # a different latent for every block
    zs = list(z.unbind(0))
    with torch.no_grad():
        for level in range(4):
            active = sum(1 for lv in LEVELS_J2 if lv <= level)
            assert net.decoder.active_blocks(level) == active
            for alpha in (0.3, 1.0):
                out = net.decoder(z.transpose(0, 1)[:, :active], level, alpha, noise=False)
                assert out.shape == (2, 3, 4 * 2**level, 4 * 2**level)
                torch.testing.assert_close(out, decode_by_hand(net, zs, level, alpha))
        assert (
            net.decoder.canvas(z.transpose(0, 1), 3, noise=False).shape[-1] == 8
        )  # the support block stays at 8²
        with pytest.raises(AutomodError):
            net.decoder(z.transpose(0, 1)[:, :3], 2)  # 16² needs 4 blocks: 4², 8², support, 16²


def test_named_scales_follow_the_resolution_of_each_block():
    assert scale_blocks("coarse", 5, LEVELS_J2) == range(0, 3)  # 4², 8², the support 8²
    assert scale_blocks("mid", 5, LEVELS_J2) == range(3, 5)  # 16², 32²
    assert scale_blocks("1:3", 5, LEVELS_J2) == range(1, 3)
    net = tiny_model(support_block=2)
    assert ops.scale_range(net, "coarse") == range(0, 3) and ops.scale_range(net, "mid") == range(3, 5)
    assert ops.describe(range(3, 5), net.block_levels) == "blocks 3-4 (16x16 to 32x32)"


def test_bad_settings_are_refused_with_one_line():
    with pytest.raises(AutomodError, match="support_block"):
        ModelConfig(max_resolution=16, support_block=3)  # after the last block but one: none left to free
    with pytest.raises(AutomodError, match="adain"):
        ModelConfig(max_resolution=16, support_block=1, decoder="classic")
    for layer in (-1, 3):
        with pytest.raises(AutomodError, match="flip-invariance-layer"):
            resolve_train_config("builtin", {"model.max_resolution": 16, "flip_invariance_layer": layer})
    with pytest.raises(AutomodError, match="support_block=2"):
        TrainConfig.from_dict({**resolve_train_config("builtin").to_dict(), "flip_invariance_layer": 2})
    with pytest.raises(AutomodError, match="--model automod"):
        resolve_train_config("builtin", {"kind": "wae", "flip_invariance_layer": 2})
    config = resolve_train_config("builtin", {"flip_invariance_layer": "2"})  # as `--set` passes it
    assert (
        config.model.support_block == 2 and config.layer_noise is False
    )  # the authors' code: no layer noise
    assert resolve_train_config("builtin", {"flip_invariance_layer": 2, "layer_noise": True}).layer_noise
    assert resolve_train_config("builtin").model.support_block == 0


def loss_setup(reconstruction: str):
    net = tiny_model(support_block=2)
    config = resolve_train_config(
        "builtin",
        {
            "model.latent_dim": 16,
            "model.channels": list(CHANNELS),
            "flip_invariance_layer": 2,
            "reconstruction": reconstruction,
        },
    )
    phase = phase_at(config, sum(config.phase_images.values()) - 1)  # 32², faded in
    distance = reconstruction_distance(reconstruction, 32)
    if isinstance(distance, AdaptiveRobustLoss):
        with torch.no_grad():
            distance.latent_alpha.normal_()  # a different α and scale in every pixel
            distance.latent_scale.normal_()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    return net, config, phase, distance, x


@pytest.mark.parametrize("reconstruction", ["l1", "l2"])
def test_loss_matches_a_hand_written_swap_and_trains_the_encoder(reconstruction):
    net, config, phase, distance, x = loss_setup(reconstruction)
    nets = Nets(net.encoder, net.decoder, distance)
    loss = flip_invariance_loss(nets, x, phase, config)
    x_1 = x[:3]
    x_2 = torch.from_numpy(x_1.numpy()[..., ::-1].copy())  # horizontal flips
    z_1, z_2 = net.encoder(x_1, 3, 1.0), net.encoder(x_2, 3, 1.0)  # encoded separately
    power = 1 if reconstruction == "l1" else 2
    # Eq. 10: pose (blocks 0-1) from z_2, the rest from z_1, target x_2; Eq. 11 the other way round
    l_inv = (decode_by_hand(net, [z_2, z_2, z_1, z_1, z_1], 3) - x_2).abs().pow(power).mean()
    l_inv_prime = (decode_by_hand(net, [z_1, z_1, z_2, z_2, z_2], 3) - x_1).abs().pow(power).mean()
    # the two terms differ by far more than assert_close's float32 tolerance (1e-5 + 1.3e-6 relative), so the
    # mean below fails if either term is dropped or computed the same way as the other
    assert abs(l_inv - l_inv_prime) > 2e-4
    torch.testing.assert_close(loss, (l_inv + l_inv_prime) / 2)
    loss.backward()
    assert (
        sum(p.grad.abs().sum() for p in net.encoder.parameters() if p.grad is not None) > 0
    )  # φ learns from it


@pytest.mark.parametrize("reconstruction", ["robust", "l1"])
def test_with_equal_latents_the_loss_is_the_plain_reconstruction(reconstruction):
    """NeurIPS Sec. 3.3: "in the case of z_1 = z_2, L_inv reduces to the regular sample reconstruction loss"."""
    net, config, phase, distance, x = loss_setup(reconstruction)

    class FlipSymmetric(torch.nn.Module):  # φ(x) = φ(flip x), so z_1 = z_2 for every pair
        def forward(self, images, level, alpha):
            return normalize(net.encoder(images, level, alpha) + net.encoder(images.flip(-1), level, alpha))

    nets = Nets(FlipSymmetric(), net.decoder, distance)
    loss = flip_invariance_loss(nets, x, phase, config)
    pairs = torch.cat(invariance.flipped_pairs(x))
    plain = distance(net.decoder(nets.encoder(pairs, 3, 1.0), 3, 1.0, False), pairs)
    torch.testing.assert_close(loss, plain)


@pytest.mark.parametrize("reconstruction", ["robust", "l2"])
def test_loss_is_symmetric_in_the_roles_of_the_pair(reconstruction):
    net, config, phase, distance, x = loss_setup(reconstruction)
    nets = Nets(net.encoder, net.decoder, distance)
    # flipping the batch swaps x_1 and x_2: Eq. 10 becomes Eq. 11 and vice versa
    torch.testing.assert_close(
        flip_invariance_loss(nets, x.flip(-1), phase, config), flip_invariance_loss(nets, x, phase, config)
    )
    with pytest.raises(AutomodError, match="2 images"):
        invariance.flipped_pairs(x[:1])


TINY = {
    **TINY_RUN,
    "model.channels": [16, 16, 8],
    "model.max_resolution": 16,
    "phase_images": 128,
    "lr": 0.002,
    "flip_invariance_layer": 2,
}


def test_training_with_j2_resumes_bit_for_bit_reloads_and_mixes(tmp_path, monkeypatch, capsys):
    config = resolve_train_config("builtin", TINY)
    calls = []
    real_loss = invariance.swapped_reconstruction_loss
    monkeypatch.setattr(
        invariance, "swapped_reconstruction_loss", lambda *a: calls.append(a[5].level) or real_loss(*a)
    )
    straight = train(config, tmp_path / "a", device="cpu")
    assert straight.images_seen == 384
    assert calls == [1] * 8 + [2] * 8  # from 8², where the support block runs, on; 4² trains as usual
    first = train(config, tmp_path / "b", device="cpu", stop_after_images=192)  # stops inside the 8² fade-in
    resumed = resume(first.checkpoint, device="cpu")
    a, b = load_file(str(straight.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys() and "decoder.blocks.3.conv1.weight" in a  # 4 decoder blocks at 16²
    assert [k for k in a if not torch.equal(a[k], b[k])] == []

    net = load_model(tmp_path / "a")
    assert net.config.support_block == 2 and net.block_levels == (0, 1, 1, 2) and net.resolution == 16
    torch.testing.assert_close(net.decoder.blocks[2].conv1.weight, a["decoder_ema.blocks.2.conv1.weight"])

    monkeypatch.chdir(tmp_path)
    for i, picture in enumerate(generate(2, seed=3)[0]):
        Image.fromarray(picture.transpose(1, 2, 0)).save(tmp_path / f"{i}.png")
    assert main(["mix", "0.png", "1.png", "--coarse", "--model", str(tmp_path / "a"), "-o", "m.png"]) == 0
    z = ops.encode(net, ops.load_images([tmp_path / "0.png", tmp_path / "1.png"], 16))
    expected = ops.mix(net, z[:1], z[1:], range(0, 3))[0]  # coarse: 4², 8² and the support block
    written = np.asarray(Image.open(tmp_path / "m.png")).astype(int)
    assert np.abs(written - to_uint8(expected).astype(int)).max() <= 1  # one level of float rounding
