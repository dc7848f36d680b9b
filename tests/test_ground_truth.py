"""Ground-truth mixing and reconstruction scores on the built-in dataset: the renderer itself scores perfectly,
wrong answers score as their independently computed distances, and the model's mix has A on the chosen blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import tiny_model

from automod_cli.errors import AutomodError
from automod_cli.metrics.builtin import ground_truth as gt
from automod_cli.ops.reconstruct import decode, encode, reconstruct
from data_prep.builtin import BuiltinDataset, combine

R = 32


@pytest.fixture(scope="module")
def pairs() -> gt.TruthPairs:
    return gt.truth_pairs(10, R)


def _renderer(pairs: gt.TruthPairs, swap: bool):
    """A mixer that knows every test image's factors (looked up by its pixels) and draws the combination."""
    index = {pairs.images_a[i].tobytes(): i for i in range(len(pairs))}

    def mixer(images_a: torch.Tensor, images_b: torch.Tensor) -> torch.Tensor:
        pixels = ((images_a + 1) * 127.5).round().to(torch.uint8).numpy()
        rows = [index[image.tobytes()] for image in pixels]
        a, b = pairs.a[rows], pairs.b[rows]
        return gt.model_input(gt.builtin_at(combine(a, b) if swap else combine(b, a), R))

    return mixer


def _numpy_mse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((x.astype(np.float64) / 255 - y.astype(np.float64) / 255) ** 2))


def test_pairs_are_consecutive_held_out_images_as_the_dataset_serves_them(pairs):
    test = BuiltinDataset(split="test", resolution=R, count=20).images
    np.testing.assert_array_equal(pairs.images_a, test[0::2])
    np.testing.assert_array_equal(pairs.images_b, test[1::2])
    np.testing.assert_array_equal(gt.truth_pairs(3, R).truth, pairs.truth[:3])  # a smaller n is a prefix


def test_the_truth_is_what_automod_mix_a_b_coarse_should_draw(pairs):
    """`automod mix A B --coarse` takes B's coarse blocks: B's layout (coarse factors) in A's colours."""
    np.testing.assert_array_equal(pairs.truth, gt.builtin_at(combine(pairs.b, pairs.a), R))
    np.testing.assert_array_equal(pairs.swapped, gt.builtin_at(combine(pairs.a, pairs.b), R))


def test_the_truth_has_the_layout_of_whoever_drives_block_0():
    """Block 0 (4²) always carries the layout: B's blocks with it give B's layout, without it A's; a range that
    splits the layout blocks (or the blocks above them) between A and B has no exact truth."""
    layout = range(0, 2)  # 4², 8² of a 4-block (32²) model
    assert (
        gt.truth_of(range(0, 2), layout, 4) == gt.Truth("B")
        and gt.Truth("B").label == "B's layout in A's colours"
    )
    mid = gt.truth_of(range(2, 4), layout, 4)  # --scales mid: B's blocks carry colour, A keeps its layout
    assert mid.layout_from == "A" and mid.exact and mid.label == "A's layout in B's colours"
    assert mid.swapped_label == "B's layout in A's colours"
    assert gt.truth_of(range(1, 3), layout, 4) == gt.Truth("A", "layout")  # 8² to B, 4² to A
    assert gt.truth_of(range(0, 3), layout, 4) == gt.Truth("B", "colour")  # 16² to B, 32² to A
    assert gt.truth_of(range(4, 5), layout, 5) == gt.Truth("A", "colour")  # fine only at 64²: mid stays A's
    assert gt.truth_of(range(0, 3), range(0, 3), 5) == gt.Truth("B")  # a support block: coarse is blocks 0-2


def test_the_truth_of_a_mix_without_block_0_is_a_layout_in_b_colours(pairs):
    flipped = gt.truth_pairs(10, R, layout_from="A")
    np.testing.assert_array_equal(flipped.truth, gt.builtin_at(combine(pairs.a, pairs.b), R))
    np.testing.assert_array_equal(flipped.truth, pairs.swapped)
    np.testing.assert_array_equal(flipped.swapped, pairs.truth)
    right = gt.mixing_error(
        _renderer(pairs, swap=True), flipped, batch_size=4
    )  # draws A's layout in B's colours
    assert right.truth.mse == 0 and right.swapped.mse > 0.02
    model = tiny_model()  # 32²: blocks 0-3, coarse 0-1
    assert gt.truth_for(model, gt.b_blocks(model, "mid")) == gt.Truth("A")
    assert gt.truth_for(model, gt.b_blocks(model, "coarse")) == gt.Truth("B")
    with pytest.raises(AutomodError):
        gt.truth_pairs(2, R, layout_from="C")


def test_the_renderer_scores_zero_and_the_swapped_renderer_scores_the_wrong_combination(pairs):
    right = gt.mixing_error(_renderer(pairs, swap=False), pairs, batch_size=4)
    assert right.truth.mse == 0 and right.truth.ssim == pytest.approx(1.0)
    wrong = gt.mixing_error(_renderer(pairs, swap=True), pairs, batch_size=3)
    assert wrong.swapped.mse == 0 and wrong.swapped.ssim == pytest.approx(1.0)
    assert wrong.truth.mse == pytest.approx(_numpy_mse(pairs.swapped, pairs.truth), rel=1e-9)
    assert wrong.truth.mse > 0.02 and wrong.truth.ssim < 0.5  # large: layout and colours both wrong
    assert wrong.truth.mse == pytest.approx(right.swapped.mse, rel=1e-9)


def test_a_mixer_that_returns_a_scores_as_a_against_the_truth(pairs):
    result = gt.mixing_error(lambda a, b: a, pairs, batch_size=6)
    assert result.to_a.mse == 0 and result.to_a.ssim == pytest.approx(1.0)
    assert result.truth.mse == pytest.approx(_numpy_mse(pairs.images_a, pairs.truth), rel=1e-9)
    assert result.to_b.mse == pytest.approx(_numpy_mse(pairs.images_a, pairs.images_b), rel=1e-9)
    per_image = [_numpy_mse(pairs.images_a[i], pairs.truth[i]) for i in range(len(pairs))]
    assert result.truth.mse_std == pytest.approx(np.std(per_image, ddof=1), rel=1e-9)


def test_the_grid_sets_each_mix_beside_its_inputs_truth_and_swapped_combination(pairs):
    cells = gt.mixing_grid(_renderer(pairs, swap=False), pairs, rows=3).reshape(3, 5, 3, R, R)
    for column, reference in enumerate(
        (pairs.images_a, pairs.images_b, pairs.truth, pairs.truth, pairs.swapped)
    ):
        torch.testing.assert_close(cells[:, column], gt.model_input(reference[:3]), rtol=0, atol=0)
    wrong = gt.mixing_grid(_renderer(pairs, swap=True), pairs, rows=20)  # rows beyond the pairs: all of them
    assert wrong.shape == (5 * len(pairs), 3, R, R)
    torch.testing.assert_close(wrong[2::5], gt.model_input(pairs.swapped), rtol=0, atol=0)


def test_the_model_mix_gives_b_the_chosen_blocks_and_a_the_rest_as_automod_mix(pairs):
    model = tiny_model()
    a, b = gt.model_input(pairs.images_a[:4]), gt.model_input(pairs.images_b[:4])
    z_a, z_b = encode(model, a), encode(model, b)
    # blocks 0-1 from B, 2-3 from A, assembled by hand as an (N, blocks, D) assignment
    assignment = torch.stack([z_b, z_b, z_a, z_a], dim=1)
    torch.testing.assert_close(gt.model_mixer(model, range(0, 2))(a, b), decode(model, assignment))
    torch.testing.assert_close(gt.model_mixer(model, range(0, 4))(a, b), reconstruct(model, b))
    torch.testing.assert_close(
        gt.model_mixer(model, gt.b_blocks(model, "coarse"))(a, b), decode(model, assignment)
    )


def test_reconstruction_by_identity_is_perfect_and_the_mean_image_baseline_matches_numpy():
    result = gt.reconstruction_error(lambda x: x, 12, R, batch_size=5, mean_count=64)
    assert result.reconstruction.mse == 0 and result.reconstruction.ssim == pytest.approx(1.0)
    test = BuiltinDataset(split="test", resolution=R, count=12).images.astype(np.float64) / 255
    mean = BuiltinDataset(split="train", resolution=R, count=64).images.astype(np.float64).mean(axis=0) / 255
    assert result.mean_image.mse == pytest.approx(np.mean((test - mean) ** 2), rel=1e-9)
    assert 0 < result.mean_image.ssim < 1


def test_bad_counts_and_resolutions_are_one_line_errors():
    with pytest.raises(AutomodError, match="512"):
        gt.truth_pairs(513, R)
    with pytest.raises(AutomodError, match="16"):
        gt.truth_pairs(2, 8)
    with pytest.raises(AutomodError, match="1024"):
        gt.reconstruction_error(lambda x: x, 2000, R)
