"""The built-in dataset: determinism, the coarse/fine split of its factors, downscaling and the torch Dataset.

References are independent of the renderer: colorsys for colours, closed-form areas for the silhouettes,
torch's avg_pool2d for box filtering, and image statistics (edges, colour clouds) for layout and palette.
"""

import colorsys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

import data_prep.builtin as builtin
from automod_cli.errors import AutomodError
from data_prep.builtin import (
    COARSE_FACTORS,
    FINE_FACTORS,
    NATIVE_SIZE,
    SPLITS,
    BuiltinDataset,
    Factors,
    bilinear_downscale,
    combine,
    downscale,
    generate,
    layout_masks,
    render,
    sample_factors,
)
from data_prep.builtin_shapes import SHAPE_KINDS


@pytest.fixture(scope="module")
def pair() -> tuple[Factors, Factors]:
    return sample_factors(48, seed=1), sample_factors(48, seed=2)


def _pooled(images: np.ndarray, resolution: int) -> np.ndarray:
    """Box-filtered float images (reference low-pass), values 0..255."""
    return F.avg_pool2d(torch.from_numpy(images).double(), images.shape[-1] // resolution).numpy()


def _edges(images: np.ndarray, resolution: int = 16) -> np.ndarray:
    """Where the low-passed image changes strongly: the layout as an image statistic, bool (N, r-1, r-1)."""
    x = _pooled(images, resolution)
    gx, gy = np.diff(x, axis=3)[:, :, :-1, :], np.diff(x, axis=2)[:, :, :, :-1]
    magnitude = np.sqrt(gx**2 + gy**2).max(axis=1)
    return magnitude > 0.25 * magnitude.max(axis=(1, 2), keepdims=True)


def _iou(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p & q).sum(axis=(1, 2)) / np.maximum((p | q).sum(axis=(1, 2)), 1)


def _colour_cloud_distance(p: np.ndarray, q: np.ndarray, percentile: float = 75) -> np.ndarray:
    """Symmetric distance between the sets of colours of two images (16² low-pass), per image pair."""
    x = _pooled(p, 16).reshape(len(p), 3, -1).transpose(0, 2, 1)
    y = _pooled(q, 16).reshape(len(q), 3, -1).transpose(0, 2, 1)
    d = np.sqrt(((x[:, :, None] - y[:, None]) ** 2).sum(-1))
    return np.maximum(
        np.percentile(d.min(2), percentile, axis=1), np.percentile(d.min(1), percentile, axis=1)
    )


def _rgb255(factors: Factors, region: str) -> np.ndarray:
    hsv = [factors.column(f"{region}_{part}") for part in ("hue", "saturation", "value")]
    return 255.0 * np.array([colorsys.hsv_to_rgb(*row) for row in zip(*hsv)])


def test_same_seed_same_images_other_seed_other_images():
    images, factors = generate(12, seed=5, size=32)
    again, factors_again = generate(12, seed=5, size=32)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(factors.coarse, factors_again.coarse)
    other, _ = generate(12, seed=6, size=32)
    assert all(np.abs(images[i].astype(int) - other[i]).mean() > 5 for i in range(12))


def test_sampling_is_prefix_stable_and_covers_the_ranges():
    few, many = sample_factors(7, seed=3), sample_factors(4000, seed=3)
    np.testing.assert_array_equal(few.coarse, many.coarse[:7])
    np.testing.assert_array_equal(few.fine, many.fine[:7])
    kinds = many.column("shape_kind")
    assert set(np.unique(kinds)) == set(range(len(SHAPE_KINDS)))
    assert set(np.unique(many.column("texture_kind"))) == {0.0, 1.0}
    for name in ("center_x", "center_y", "horizon_height", "shape_hue"):
        values = many.column(name)
        assert 0.0 <= values.min() and values.max() <= 1.0 and values.std() > 0.05
    assert many.coarse.shape == (4000, len(COARSE_FACTORS)) and many.fine.shape == (4000, len(FINE_FACTORS))


def test_render_dtype_shape_and_use_of_the_range():
    factors = sample_factors(6, seed=0)
    for size in (4, 16, NATIVE_SIZE):
        images = render(factors, size)
        assert images.dtype == np.uint8 and images.shape == (6, 3, size, size)
    images = render(factors)
    assert images.min() < 40 and images.max() > 215  # dark grounds, bright skies and shapes


def test_batches_render_independently_across_chunks(monkeypatch, pair):
    a, _ = pair
    monkeypatch.setattr(
        builtin, "CHUNK_PIXELS", 5 * (32 * builtin.SUPERSAMPLE) ** 2
    )  # five 32² images at a time
    chunked = render(a[:13], 32)
    one_by_one = np.concatenate([render(a[i], 32) for i in range(13)])
    np.testing.assert_array_equal(chunked, one_by_one)


def test_combine_takes_coarse_of_one_and_fine_of_the_other(pair):
    a, b = pair
    mixed = combine(a, b)
    np.testing.assert_array_equal(mixed.coarse, a.coarse)
    np.testing.assert_array_equal(mixed.fine, b.fine)
    # one layout against many colourings: a row of the style-mixing grid
    row = combine(a[3], b[:5])
    np.testing.assert_array_equal(
        render(row, 32), render(Factors(np.repeat(a.coarse[3:4], 5, 0), b.fine[:5]), 32)
    )


def test_changing_fine_factors_keeps_the_layout(pair):
    a, b = pair
    base, recoloured, moved = render(a), render(combine(a, b)), render(combine(b, a))
    same_layout, other_layout = _iou(_edges(base), _edges(recoloured)), _iou(_edges(base), _edges(moved))
    assert same_layout.min() > 0.6, same_layout
    assert other_layout.mean() < 0.35 and same_layout.mean() > other_layout.mean() + 0.5
    # and the geometry helper sees coarse factors only: one mask for any colouring
    np.testing.assert_array_equal(layout_masks(a.coarse, 32), layout_masks(combine(a, b).coarse, 32))


def test_changing_coarse_factors_keeps_the_palette(pair):
    a, b = pair
    base, moved, recoloured = render(a), render(combine(b, a)), render(combine(a, b))
    palette_kept, palette_changed = (
        _colour_cloud_distance(base, moved),
        _colour_cloud_distance(base, recoloured),
    )
    assert palette_kept.max() < 3.0, palette_kept  # 0..255 units
    assert palette_changed.min() > 8.0, palette_changed


def test_regions_take_the_colours_of_the_fine_factors(pair):
    a, b = pair
    mixed = combine(a, b)
    images = render(mixed).astype(float)
    masks = layout_masks(mixed.coarse)
    grain = 255.0 * mixed.column("grain_amplitude")
    contrast = mixed.column("texture_contrast")
    sky, ground, shape = _rgb255(mixed, "sky"), _rgb255(mixed, "ground"), _rgb255(mixed, "shape")
    for i in range(len(mixed)):
        inside = masks[i, 0] == 1.0
        sky_only, ground_only = (
            (masks[i, 0] == 0) & (masks[i, 1] == 1),
            (masks[i, 0] == 0) & (masks[i, 1] == 0),
        )
        for region, colour in ((sky_only, sky[i]), (ground_only, ground[i])):
            pixels = images[i][:, region]
            assert np.abs(pixels - colour[:, None]).max() <= grain[i] + 1.0
            np.testing.assert_allclose(pixels.mean(axis=1), colour, atol=1.5)
        # the shape's pixels: its colour brightened or darkened by the texture, plus grain
        pixels = images[i][:, inside]
        low = np.clip(shape[i] * (1 - contrast[i]), 0, 255)[:, None] - grain[i] - 1.0
        high = np.clip(shape[i] * (1 + contrast[i]), 0, 255)[:, None] + grain[i] + 1.0
        assert ((pixels >= low) & (pixels <= high)).all()
        assert np.abs(pixels.mean(axis=1) - shape[i]).max() < 0.12 * 255 * contrast[i] + 4.0


def test_silhouette_areas_match_closed_forms():
    r = 0.2  # radius as a fraction of the width; centred, so every shape lies inside the frame
    areas = {  # in units of r², from the side lengths of each figure
        "disc": np.pi,
        "square": 1.7**2,
        "triangle": 3 * np.sqrt(3) * 0.78**2,
        "star": 5 * 1.45 * 0.62 * np.sin(np.pi / 5),
        "cross": 2 * (2 * 1.15 * 2 * 0.38) - (2 * 0.38) ** 2,
    }
    coarse = np.zeros((len(SHAPE_KINDS), len(COARSE_FACTORS)))
    column = {name: i for i, name in enumerate(COARSE_FACTORS)}
    coarse[:, column["shape_kind"]] = np.arange(len(SHAPE_KINDS))
    coarse[:, [column["center_x"], column["center_y"], column["size"]]] = 0.5, 0.5, r
    coarse[:, column["rotation"]], coarse[:, column["aspect"]] = 0.4, 1.3
    coarse[:, column["horizon_height"]] = 0.5
    masks = layout_masks(coarse, 64)
    measured = masks[:, 0].sum(axis=(1, 2)) / 64**2
    expected = np.array([areas[kind] for kind in SHAPE_KINDS]) * r**2
    np.testing.assert_allclose(measured, expected, rtol=0.01)
    np.testing.assert_allclose(masks[:, 1].mean(axis=(1, 2)), 0.5, atol=1e-3)  # a level horizon at mid-height


def test_rendering_small_matches_box_downscaled_native():
    factors = sample_factors(32, seed=4)
    factors.fine[:, FINE_FACTORS.index("grain_amplitude")] = 0.0  # grain is drawn per output pixel
    native = render(factors)
    for size, bound in ((32, 0.5), (16, 0.5), (8, 1.0)):
        difference = np.abs(render(factors, size).astype(float) - downscale(native, size))
        assert difference.mean() < bound, (size, difference.mean())  # the texture is prefiltered, not aliased


def test_downscale_matches_avg_pool_rounded_half_up():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
    images[0, 0, :2, :2] = [[0, 1], [0, 1]]  # a tie at 0.5
    for resolution in (16, 8, 4, 1):
        reference = np.floor(_pooled(images, resolution) + 0.5).astype(np.uint8)
        np.testing.assert_array_equal(downscale(images, resolution), reference)
    np.testing.assert_array_equal(downscale(images, 32), images)


def test_dataset_serves_the_split_in_minus_one_to_one():
    data = BuiltinDataset("test", resolution=16, count=6)
    seed, _ = SPLITS["test"]
    native, factors = generate(6, seed)
    np.testing.assert_array_equal(data.factors.coarse, factors.coarse)
    assert len(data) == 6
    item = data[2]
    assert item.dtype == torch.float32 and item.shape == (3, 16, 16)
    assert -1.0 <= item.min() and item.max() <= 1.0
    torch.testing.assert_close(item, torch.from_numpy(downscale(native, 16)[2]).float() / 127.5 - 1.0)
    data.set_resolution(4)
    assert data[2].shape == (3, 4, 4)
    data.set_resolution(64)
    torch.testing.assert_close(data[0], torch.from_numpy(native[0]).float() / 127.5 - 1.0)
    train = BuiltinDataset("train", resolution=8, count=6)
    assert not torch.equal(train[0], BuiltinDataset("test", resolution=8, count=6)[0])


def test_mirror_flips_about_half_the_time_from_torch_rng():
    data = BuiltinDataset("test", resolution=8, mirror=True, count=1)
    plain = torch.from_numpy(data.images[0]).float() / 127.5 - 1.0
    torch.manual_seed(7)
    draws = [data[0] for _ in range(200)]
    flipped = [torch.equal(x, plain.flip(-1)) for x in draws]
    assert all(f or torch.equal(x, plain) for f, x in zip(flipped, draws))
    assert 70 < sum(flipped) < 130
    torch.manual_seed(7)
    assert [torch.equal(data[0], plain.flip(-1)) for _ in range(200)] == flipped


@pytest.mark.parametrize(
    "call",
    [
        lambda: BuiltinDataset("validation", count=2),
        lambda: BuiltinDataset("test", resolution=48, count=2),
        lambda: BuiltinDataset("test", resolution=2, count=2),
        lambda: BuiltinDataset("test", resolution=128, count=2),
        lambda: BuiltinDataset("test", count=0),
        lambda: sample_factors(0, seed=1),
        lambda: generate(-3),
        lambda: sample_factors(3, seed=-1),
        lambda: render(sample_factors(2, 0), size=3),
        lambda: combine(sample_factors(2, 0), sample_factors(3, 0)),
        lambda: downscale(np.zeros((1, 3, 64, 64), np.uint8), 48),
        lambda: downscale(np.zeros((1, 3, 48, 48), np.uint8), 16),
        lambda: downscale(np.zeros((1, 3, 64, 64), np.float32), 16),
        lambda: Factors(np.zeros((2, 3)), np.zeros((2, len(FINE_FACTORS)))),
        lambda: sample_factors(1, 0).column("colour"),
    ],
)
def test_bad_arguments_raise_automod_error(call):
    with pytest.raises(AutomodError):
        call()


def test_the_authors_bilinear_downscale_is_their_loaders_resize():
    """recipe.real_downscale = bilinear: what their loader's torchvision Resize transforms (PIL bilinear) give for
    the 64² render enlarged 2×, then brought to the phase's resolution."""
    native, _ = generate(6, seed=5)
    for resolution in (4, 8, 16, 32):
        theirs = transforms.Compose([transforms.Resize(128), transforms.Resize(resolution)])
        expected = np.stack(
            [np.asarray(theirs(Image.fromarray(img.transpose(1, 2, 0)))).transpose(2, 0, 1) for img in native]
        )
        assert np.array_equal(bilinear_downscale(native, resolution), expected)
    data = BuiltinDataset("test", resolution=8, count=6, resample="bilinear")
    assert torch.equal(data[2], torch.from_numpy(bilinear_downscale(data.native, 8)[2]).float() / 127.5 - 1)
    with pytest.raises(AutomodError, match="resampling"):
        BuiltinDataset("test", count=2, resample="lanczos")
