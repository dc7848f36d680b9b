#!/usr/bin/env python3
"""Where the latent cycle 1 − cos(z, φ(θ(z))) of a built-in model stands, split into the codes of the data and the
prior's (docs/results/demo-search.md, "Why the latent cycle stays near 0.9"): for 1,024 held-out images x and as
many random unit latents z (EMA decoder, no layer noise), the cosine of each cycle, the length of the mean code
(0 for codes spread over the sphere, 1 for codes all in one direction), the share of the codes' variance in their
5, 15 and 30 largest directions, and the linear fit of z from φ(θ(z)) (R² on a held-out half).
Usage: python scripts/latent_cycle_probe.py RUN [--seed S]"""

import argparse

import torch
import torch.nn.functional as F

from automod_cli.errors import AutomodError
from automod_cli.locate import load_model
from automod_cli.metrics.builtin.ground_truth import TEST_SEED, builtin_at, model_input
from data_prep.builtin import sample_factors


def spread(codes: torch.Tensor) -> dict[str, float]:
    centred = codes - codes.mean(0)
    eigen = torch.linalg.eigvalsh(torch.cov(centred.T)).flip(0)
    share = {f"var_top{k}": round((eigen[:k].sum() / eigen.sum()).item(), 3) for k in (5, 15, 30)}
    return {"mean_code_length": round(codes.mean(0).norm().item(), 3), **share}


def linear_r2(source: torch.Tensor, target: torch.Tensor) -> float:
    """R² of target from source by least squares fitted on the first half, scored on the second."""
    half = len(source) // 2
    design = torch.cat([source, torch.ones(len(source), 1)], 1)
    weights = torch.linalg.lstsq(design[:half], target[:half]).solution
    error = ((design[half:] @ weights - target[half:]) ** 2).sum()
    return round((1 - error / ((target[half:] - target[half:].mean(0)) ** 2).sum()).item(), 3)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    try:
        model = load_model(args.run)
    except AutomodError as exc:
        raise SystemExit(f"error: {exc}") from None
    # the held-out images `automod eval recon-truth` scores
    x = model_input(builtin_at(sample_factors(1024, TEST_SEED), model.resolution))
    real = model.encode(x)
    z = model.sample_latents(len(x))
    fake = model.encode(model.decode(z))
    print(
        "data:  cos(φ(x), φ(θ(φ(x))))",
        round(F.cosine_similarity(real, model.encode(model.decode(real))).mean().item(), 3),
    )
    print("       codes φ(x):", spread(real))
    print("prior: cos(z, φ(θ(z)))", round(F.cosine_similarity(z, fake).mean().item(), 3))
    print("       codes φ(θ(z)):", spread(fake))
    print("       R² of z from φ(θ(z)):", linear_r2(fake, z))


if __name__ == "__main__":
    main()
