"""Whether input images look like the data a model was trained on (its provenance: `automod_cli/provenance.py`).

The input check (`looks_builtin`) is a documented heuristic, not a classifier: a built-in picture is a shape in front
of a pale sky over a darker ground, both flat colours up to a small grain, so its top row is sky and its bottom row
ground (the generator's horizon and shape never reach them). An image counts as built-in-like when at least
BUILTIN_SHARE of its pixels lie within BUILTIN_TOLERANCE (per channel, on 0..1) of the median colour of its top
row or of its bottom row, and the top row's median is brighter (max channel) than the bottom row's by at least
BUILTIN_SKY_STEP. On 2,000 generated pictures at 16²–128² (box-downscaled or Lanczos-resized, as inputs are)
the share is ≥ 0.72 and the step ≥ 0.25; on the photographs bundled with scikit-image the share is 0.17–0.6 or
the step below 0.2, except for a flat scan of paper (a page of text), which passes.
"""

from __future__ import annotations

import torch

from automod_cli.provenance import BUILTIN, DATASET_NAMES, Provenance

BUILTIN_TOLERANCE = 0.08  # per channel on 0..1: the generator's grain is at most ±0.06
BUILTIN_SHARE = 0.65  # generated pictures: ≥ 0.72 (module docstring)
BUILTIN_SKY_STEP = 0.2  # sky value ≥ 0.7, ground value ≤ 0.45 in the generator (data_prep/builtin.py)
CHECK_MIN_RESOLUTION = 16  # below this a picture has too few pixels for the statistic


def builtin_share(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image of (N, 3, H, W) in [-1, 1]: the share of pixels near the top row's or the bottom row's median
    colour, and how much brighter (max channel, on 0..1) the top row's median is than the bottom row's."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    top = x[:, :, 0, :].median(dim=-1).values[:, :, None, None]  # (N, 3, 1, 1)
    bottom = x[:, :, -1, :].median(dim=-1).values[:, :, None, None]
    near = torch.minimum((x - top).abs().amax(1), (x - bottom).abs().amax(1)) <= BUILTIN_TOLERANCE
    step = top.flatten(1).amax(1) - bottom.flatten(1).amax(1)
    return near.flatten(1).float().mean(1), step


def looks_builtin(images: torch.Tensor) -> torch.Tensor:
    """(N,) bool: which images look like pictures of the built-in dataset (module docstring)."""
    share, step = builtin_share(images)
    return (share >= BUILTIN_SHARE) & (step >= BUILTIN_SKY_STEP)


def unlike_count(provenance: Provenance, images: torch.Tensor) -> tuple[int, int]:
    """(how many of `images` look unlike the model's training data, how many were checked); (0, 0) when nothing
    can be checked (unknown provenance, pictures too small). See `mismatch`."""
    if not provenance.known or len(images) == 0 or min(images.shape[-2:]) < CHECK_MIN_RESOLUTION:
        return 0, 0
    like = looks_builtin(images)
    odd = int((~like).sum()) if provenance.dataset == BUILTIN else int(like.sum())
    return odd, len(images)


def mismatch_message(provenance: Provenance, odd: int, n: int) -> str | None:
    """The sentence for `odd` of `n` inputs unlike the training data (`unlike_count`, summed over a command's
    inputs); None when there are none."""
    if odd == 0 or not provenance.known:
        return None
    if provenance.dataset == BUILTIN:
        which = "the input does" if n == 1 else f"{odd} of {n} inputs do"
        return (
            f"{which} not look like the built-in shapes this model was trained on (a flat sky over a flat ground): "
            "expect shapes and colours of that dataset, not your pictures; train on your own images "
            "(automod prep, then automod train --data)."
        )
    which = "the input looks" if n == 1 else f"{odd} of {n} inputs look"
    return (
        f"{which} like the built-in shapes dataset, but this model was trained on "
        f"{DATASET_NAMES.get(provenance.dataset, provenance.dataset)}: expect poor results on them."
    )


def mismatch(provenance: Provenance, images: torch.Tensor) -> str | None:
    """One sentence when the inputs look unlike the model's training data, else None.

    Only the built-in dataset has a recognisable look: a built-in model given other pictures (photos) is warned
    about, and so is a model trained on other data given built-in pictures. Unknown provenance: no check."""
    return mismatch_message(provenance, *unlike_count(provenance, images))
