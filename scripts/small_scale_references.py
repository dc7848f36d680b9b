#!/usr/bin/env python3
"""Reference points for the built-in metrics at one resolution (docs/results/small-scale.md), from the data alone:
what a perfect model, a blurred-but-perfect model and trivial mixers score.
Usage: python scripts/small_scale_references.py [RESOLUTION]   (default 16)"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from automod_cli.metrics.builtin import ground_truth as gt
from automod_cli.metrics.builtin.factor_net import TrainingPlan, factor_features
from automod_cli.metrics.builtin.fd_builtin import image_set_distance
from data_prep.builtin import SPLITS, sample_factors


def blurred(images: np.ndarray) -> np.ndarray:
    """uint8 images with their detail halved: 2×2 box average, bilinear back up."""
    small = F.avg_pool2d(torch.from_numpy(images).float(), 2)
    return (
        F.interpolate(small, scale_factor=2, mode="bilinear", align_corners=False)
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        .numpy()
    )


def main(resolution: int) -> None:
    test = gt.builtin_at(sample_factors(gt.TEST_COUNT, gt.TEST_SEED), resolution)
    train = gt.builtin_at(sample_factors(gt.TEST_COUNT, SPLITS["train"][0]), resolution)
    features, _ = factor_features(TrainingPlan(resolution))
    print(f"FD_builtin at {resolution}², 1,024 images against the 1,024 test images:")
    print(f"  training images (the floor)         {image_set_distance(train, test, features):8.2f}")
    print(f"  training images, 2x blurred         {image_set_distance(blurred(train), test, features):8.2f}")
    recon = gt.reconstruction_error(
        lambda x: gt.model_input(blurred(gt.quantize(x).numpy())), gt.TEST_COUNT, resolution
    )
    print(
        f"reconstruction, 1,024 test images: mean image MSE {recon.mean_image.mse:.4f} "
        f"SSIM {recon.mean_image.ssim:.3f}; "
        f"2x-blurred image MSE {recon.reconstruction.mse:.4f} SSIM {recon.reconstruction.ssim:.3f}"
    )
    pairs = gt.truth_pairs(gt.MAX_PAIRS, resolution)
    index = {pairs.images_a[i].tobytes(): i for i in range(len(pairs))}

    def rows_of(images_a: torch.Tensor) -> list[int]:
        return [index[image.tobytes()] for image in gt.quantize(images_a).numpy()]

    mixers = {
        "returns A": lambda a, b: a,
        "returns B": lambda a, b: b,
        "swapped combination": lambda a, b: gt.model_input(pairs.swapped[rows_of(a)]),
        "truth, 2x blurred": lambda a, b: gt.model_input(blurred(pairs.truth[rows_of(a)])),
    }
    print(f"mix-truth, {len(pairs)} pairs, MSE / SSIM against the truth:")
    for name, mixer in mixers.items():
        scores = gt.mixing_error(mixer, pairs).truth
        print(f"  {name:<24} {scores.mse:.4f} / {scores.ssim:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
