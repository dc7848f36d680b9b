"""Encoder and decoders: shapes, fade-in, addressable layers, spectral norm, unit-norm latents."""

import pytest
import torch
import torch.nn.functional as F

from automod_cli.config import ModelConfig
from automod_cli.presets import SMALL_CHANNELS
from automod_cli.errors import AutomodError
from automod_cli.models import Automodulator, ClassicDecoder, Encoder, build_decoder
from automod_cli.models.initialisation import authors_initialisation
from automod_cli.models.latents import assign, random_latents, scale_blocks, split_at
from automod_cli.nn.modulation import AdaIN
from automod_cli.nn.spectral import SNConv2d


@pytest.mark.parametrize("decoder", ["adain", "classic"])
def test_shapes_at_every_resolution(tiny_config, decoder):
    config = ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8), decoder=decoder)
    model = Automodulator(config)
    for level in range(config.num_blocks):
        res = 4 * 2**level
        x = torch.randn(3, 3, res, res)
        for alpha in (0.0, 0.5, 1.0):
            z = model.encoder(x, level, alpha)
            assert z.shape == (3, 16)
            assert model.decoder(z, level, alpha).shape == (3, 3, res, res)


def test_encoder_rejects_wrong_resolution(tiny_config):
    with pytest.raises(AutomodError, match="16, 16"):
        Encoder(tiny_config)(torch.randn(1, 3, 8, 8), level=2)


@pytest.mark.parametrize("decoder", ["adain", "classic"])
def test_decoder_fade_in_alpha_zero_is_upsampled_previous_output(tiny_config, decoder):
    config = ModelConfig(max_resolution=32, latent_dim=16, channels=(16, 16, 8, 8), decoder=decoder)
    net = build_decoder(config)
    z = random_latents(2, 16)
    for level in range(1, config.num_blocks):
        faded = net(z, level, alpha=0.0, noise=False)
        previous = net(z, level - 1, alpha=1.0, noise=False)
        torch.testing.assert_close(faded, F.interpolate(previous, scale_factor=2, mode="nearest"))
        # and the blend is linear in alpha
        full = net(z, level, alpha=1.0, noise=False)
        torch.testing.assert_close(
            net(z, level, alpha=0.3, noise=False), 0.7 * faded + 0.3 * full, atol=1e-5, rtol=1e-5
        )


def test_encoder_fade_in_alpha_zero_is_previous_level_on_pooled_input(tiny_config):
    enc = Encoder(
        tiny_config
    ).eval()  # eval: spectral norm stops its power iteration, so calls are comparable
    for level in range(1, tiny_config.num_blocks):
        res = 4 * 2**level
        x = torch.randn(2, 3, res, res)
        torch.testing.assert_close(enc(x, level, alpha=0.0), enc(F.avg_pool2d(x, 2), level - 1, alpha=1.0))
        assert not torch.allclose(enc(x, level, alpha=1.0), enc(x, level, alpha=0.0))


def test_latents_have_unit_norm(tiny_config):
    enc = Encoder(tiny_config)
    z = enc(torch.randn(5, 3, 32, 32) * 10, level=3)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(random_latents(7, 16).norm(dim=1), torch.ones(7))


def test_canvas_before_split_does_not_depend_on_second_latent(tiny_config):
    dec = build_decoder(tiny_config)
    with torch.no_grad():  # give the affine maps real weight so z matters everywhere
        for module in dec.modules():
            if isinstance(module, AdaIN):
                module.affine.weight.normal_()
    z_a, z_b, z_c = random_latents(3, 16).split(1)
    for j in range(1, tiny_config.num_blocks):
        mixed_b = split_at(z_a, z_b, j, tiny_config.num_blocks)
        mixed_c = split_at(z_a, z_c, j, tiny_config.num_blocks)
        torch.testing.assert_close(
            dec.canvas(mixed_b, upto=j, noise=False), dec.canvas(z_a, upto=j, noise=False)
        )
        # the layers after the split do follow z_b
        out_b, out_c = dec(mixed_b, 3, noise=False), dec(mixed_c, 3, noise=False)
        assert (out_b - out_c).abs().max() > 1e-3
        assert (out_b - dec(z_a, 3, noise=False)).abs().max() > 1e-3


def test_same_latent_everywhere_equals_plain_decoding(tiny_config):
    dec = build_decoder(tiny_config)
    z_a, z_b = random_latents(2, 16).split(1)
    plain = dec(z_a, 3, noise=False)
    torch.testing.assert_close(dec(split_at(z_a, z_a, 2, 4), 3, noise=False), plain)
    torch.testing.assert_close(dec(split_at(z_a, z_b, 4, 4), 3, noise=False), plain)  # z_a on every block
    torch.testing.assert_close(dec(split_at(z_b, z_a, 0, 4), 3, noise=False), plain)  # z_a on every block


def test_canvas_is_the_decoders_intermediate_feature_map(tiny_config):
    dec = build_decoder(tiny_config)
    z = random_latents(2, 16)
    # the image at level j-1 is the toRGB of the canvas after j blocks
    for j in range(1, 5):
        torch.testing.assert_close(
            dec.to_rgb[j - 1](dec.canvas(z, j, noise=False)), dec(z, j - 1, noise=False)
        )
    assert dec.canvas(z, 2, noise=False).shape == (2, 16, 8, 8)


def test_noise_switch(tiny_config):
    dec = build_decoder(tiny_config)
    with torch.no_grad():
        for block in dec.blocks[1:]:  # the 4² block has no layer noise (the authors' code)
            block.noise1.strength.fill_(0.5)
    assert not hasattr(dec.blocks[0], "noise1")
    z = random_latents(2, 16)
    torch.testing.assert_close(dec(z, 2, noise=False), dec(z, 2, noise=False))
    assert not torch.allclose(dec(z, 2, noise=True), dec(z, 2, noise=True))


def test_classic_decoder_refuses_mixing_but_accepts_one_latent(tiny_classic_config):
    dec = build_decoder(tiny_classic_config)
    assert isinstance(dec, ClassicDecoder) and not dec.supports_mixing
    z_a, z_b = random_latents(2, 16).split(1)
    with pytest.raises(AutomodError, match="classic"):
        dec(split_at(z_a, z_b, 2, 4), 3)
    torch.testing.assert_close(dec(split_at(z_a, z_a, 2, 4), 3), dec(z_a, 3))


def test_spectral_norm_keeps_top_singular_value_near_one(tiny_config):
    enc = Encoder(tiny_config)
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration
            enc(torch.randn(2, 3, 32, 32), level=3)
    convs = [m for m in enc.modules() if isinstance(m, SNConv2d)]
    assert (
        len(convs) == 2 * 4
    )  # two per block and two in the head; fromRGB is a plain conv (the authors' code)
    for module in convs:
        weight = module.normalised_weight().detach()  # the normalised weight the layer uses
        top = torch.linalg.svdvals(weight.reshape(weight.shape[0], -1).double())[0].item()
        assert abs(top - 1.0) < 0.05, top


def test_scale_names_and_ranges():
    assert scale_blocks("coarse", 7) == range(0, 2)  # 4², 8²
    assert scale_blocks("mid", 7) == range(2, 4)  # 16², 32²
    assert scale_blocks("fine", 7) == range(4, 7)  # 64² and up
    assert scale_blocks("1:3", 7) == range(1, 3)
    assert scale_blocks("2:", 5) == range(2, 5)
    assert scale_blocks("4", 7) == range(4, 5)
    for bad in ("fine", "0:9", "x:y", "3:2"):
        with pytest.raises(AutomodError):
            scale_blocks(bad, 4)


def test_assign_puts_other_latent_on_chosen_blocks():
    base, other = torch.zeros(2, 3), torch.ones(2, 3)
    out = assign(base, other, range(1, 3), 5)
    assert out.shape == (2, 5, 3)
    assert out[:, 1:3].eq(1).all() and out[:, [0, 3, 4]].eq(0).all()


def test_model_shapes_build():
    small = Automodulator(ModelConfig(max_resolution=64, latent_dim=128, channels=SMALL_CHANNELS))
    assert small.resolution == 64 and small.config.latent_dim == 128
    paper = ModelConfig()
    assert paper.latent_dim == 512 and paper.num_blocks == 7
    assert paper.channels[::-1] == (64, 128, 256, 512, 512, 512, 512, 512)  # Supp. App. A, 512² down to 4²
    with pytest.raises(AutomodError):
        ModelConfig(max_resolution=48)


def test_interpolation_follows_the_great_circle_on_the_sphere_and_lines_in_gaussian_space():
    a, b = random_latents(2, 16, generator=torch.Generator().manual_seed(1)).double().unbind(0)
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    sphere = Automodulator(ModelConfig(max_resolution=8, latent_dim=16, channels=(8, 8)))
    path = sphere.interpolate_latents(a, b, t)
    angle = torch.arccos(torch.dot(a, b) / (a.norm() * b.norm()))
    # slerp's closed form at t = 1/4: sin(3θ/4)/sin θ · a + sin(θ/4)/sin θ · b
    expected = (torch.sin(0.75 * angle) * a + torch.sin(0.25 * angle) * b) / torch.sin(angle)
    assert torch.equal(path[0], a) and torch.equal(path[2], b)
    torch.testing.assert_close(path[1], expected)
    gaussian = Automodulator(ModelConfig(max_resolution=8, latent_dim=16, channels=(8, 8), latent="gaussian"))
    rows = gaussian.interpolate_latents(
        torch.stack([a, a, a]), torch.stack([b, b, b]), t
    )  # one point per row
    torch.testing.assert_close(rows[1], 0.75 * a + 0.25 * b)
    assert torch.equal(rows[0], a) and torch.equal(rows[2], b)


def test_the_authors_initialisation_of_style_maps_and_rgb_layers():
    """Xavier-normal style maps (std √(2/(D + 2C))) with every bias 1, and PyTorch's default toRGB/fromRGB
    (weights and biases uniform in ±1/√fan_in, as the authors' code leaves them)."""
    config = ModelConfig(max_resolution=16, latent_dim=64, channels=(96, 96, 96))
    model = Automodulator(config)
    authors_initialisation(model)
    affine = model.decoder.blocks[1].adain1.affine
    assert affine.weight.std().item() == pytest.approx((2 / (64 + 2 * 96)) ** 0.5, rel=0.05)
    assert torch.equal(affine.bias, torch.ones(2 * 96))
    for conv in (model.decoder.to_rgb[2], model.encoder.from_rgb[2]):
        bound = conv.in_channels**-0.5
        assert conv.bias.abs().max() <= bound and conv.bias.abs().max() > 0.3 * bound  # uniform, not zero
        assert conv.weight.abs().max() <= bound
