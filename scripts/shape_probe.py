#!/usr/bin/env python3
"""Whether built-in models draw the shape kind (docs/results/demo-search.md, "What FD_builtin measures").

For each run (EMA decoder): the share of the 1,024 held-out images whose reconstruction (no layer noise) the
factor network of FD_builtin reads as the kind the renderer drew (disc, square, triangle, star, cross; chance 1/5),
the share a linear probe reads from the codes φ(x) (least squares onto the kinds' one-hot vectors, fitted on 4,096
training images, scored on the held-out ones), and how often each kind is read from the reconstructions and from
as many random samples (layer noise on). With --references: the factor network's reading of the held-out images
themselves (its own limit at that resolution), and FD_builtin between the held-out images and altered copies of
them (every shape one kind, kinds drawn anew, a 3×3 box blur, a trip to half the resolution and back).
Usage: python scripts/shape_probe.py RUN... [--resolution 32] [--references]"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from automod_cli.errors import AutomodError
from automod_cli.locate import load_model
from automod_cli.metrics.builtin.factor_net import TrainingPlan, factor_features
from automod_cli.metrics.builtin.factor_targets import NUM_CONTINUOUS
from automod_cli.metrics.builtin.fd_builtin import image_set_distance
from automod_cli.metrics.builtin.ground_truth import TEST_SEED, builtin_at, model_input
from automod_cli.metrics.fid import quantize
from data_prep.builtin import COARSE_FACTORS, SHAPE_KINDS, Factors, sample_factors

TRAIN_SEED = 20261208  # the probe's fitting images: drawn like the training split's, never the held-out ones
KIND = COARSE_FACTORS.index("shape_kind")


def read_kinds(net: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The shape kind the factor network reads from each uint8 image (N, 3, R, R): its class output's argmax."""
    logits = net(images.float() / 127.5 - 1.0)[:, NUM_CONTINUOUS : NUM_CONTINUOUS + len(SHAPE_KINDS)]
    return logits.argmax(1)


def probe_accuracy(
    codes: torch.Tensor, kinds: torch.Tensor, held_codes: torch.Tensor, held_kinds: torch.Tensor
) -> float:
    """The share of `held_codes` whose kind a linear map fitted by least squares from `codes` to the one-hot
    vectors of `kinds` (ridge 1e-3, with a constant) reads right."""
    design = F.pad(codes.double(), (0, 1), value=1.0)
    targets = F.one_hot(kinds, len(SHAPE_KINDS)).double()
    gram = design.T @ design + 1e-3 * torch.eye(design.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, design.T @ targets)
    read = (F.pad(held_codes.double(), (0, 1), value=1.0) @ weights).argmax(1)
    return (read == held_kinds).double().mean().item()


def histogram(kinds: torch.Tensor) -> str:
    counts = torch.bincount(kinds, minlength=len(SHAPE_KINDS)).tolist()
    return " ".join(f"{name} {count}" for name, count in zip(SHAPE_KINDS, counts))


def decoded(model, latents: torch.Tensor, noise: bool) -> torch.Tensor:
    return torch.cat([quantize(model.decode(batch, noise=noise)) for batch in latents.split(256)])


def references(features, factors: Factors, held: torch.Tensor, resolution: int) -> None:
    """The reader's own limit, and FD_builtin of the held-out images against altered copies of them."""
    truth = torch.as_tensor(factors.column("shape_kind").astype(int))
    print(
        f"held-out images read right: {(read_kinds(features.net, held) == truth).double().mean().item():.3f}"
    )

    def rendered(kinds: np.ndarray) -> torch.Tensor:
        coarse = factors.coarse.copy()
        coarse[:, KIND] = kinds
        return torch.as_tensor(builtin_at(Factors(coarse, factors.fine), resolution))

    altered = {
        f"every shape a {name}": rendered(np.full(len(factors), k)) for k, name in enumerate(SHAPE_KINDS)
    }
    altered["kinds drawn anew"] = rendered(
        np.random.default_rng(0).integers(0, len(SHAPE_KINDS), len(factors))
    )
    pixels = held.float()
    blur = F.avg_pool2d(F.pad(pixels, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    altered["3×3 box blur"] = blur.round().clamp(0, 255).to(torch.uint8)
    trip = F.interpolate(F.avg_pool2d(pixels, 2), scale_factor=2, mode="bilinear")
    altered[f"{resolution // 2}² and back"] = trip.round().clamp(0, 255).to(torch.uint8)
    altered["other real images"] = torch.as_tensor(
        builtin_at(sample_factors(len(factors), TRAIN_SEED), resolution)
    )
    for name, images in altered.items():
        print(f"FD_builtin, held-out images against {name}: {image_set_distance(images, held, features):.1f}")


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--references", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    features, _ = factor_features(TrainingPlan(args.resolution))
    factors = sample_factors(1024, TEST_SEED)
    held = torch.as_tensor(builtin_at(factors, args.resolution))
    truth = torch.as_tensor(factors.column("shape_kind").astype(int))
    fitting = sample_factors(4096, TRAIN_SEED)
    fit_images = model_input(builtin_at(fitting, args.resolution))
    fit_kinds = torch.as_tensor(fitting.column("shape_kind").astype(int))
    if args.references:
        references(features, factors, held, args.resolution)
    for run in args.runs:
        try:
            model = load_model(run)
        except AutomodError as exc:
            raise SystemExit(f"error: {exc}") from None
        if model.resolution != args.resolution:
            raise SystemExit(
                f"error: {run} draws {model.resolution}² images: give --resolution {model.resolution}"
            )
        codes = model.encode(model_input(held.numpy()))
        fit_codes = torch.cat([model.encode(batch) for batch in fit_images.split(512)])
        recon = read_kinds(features.net, decoded(model, codes, noise=False))
        samples = read_kinds(features.net, decoded(model, model.sample_latents(len(held)), noise=True))
        print(run)
        print(f"  reconstructions read right: {(recon == truth).double().mean().item():.3f}")
        print(f"  linear probe of the codes:  {probe_accuracy(fit_codes, fit_kinds, codes, truth):.3f}")
        print(f"  kinds read from the reconstructions: {histogram(recon)}")
        print(f"  kinds read from random samples:      {histogram(samples)}")


if __name__ == "__main__":
    main()
