"""What data a model was trained on (its provenance), and whether input images look like that data.

The provenance comes from the checkpoint's metadata alone:
- a training checkpoint (automod's models and LIA) holds its resolved `train_config`: no `data` file means the
  built-in dataset; otherwise a dataset preset (ffhq, celebahq, lsun-bedroom, lsun-car) names the dataset, and for
  the `custom` preset the data file's own record (`automod prep` writes its source and alignment) is read when
  the file is still where training found it;
- a model imported from the authors' code records `source.dataset` (`automod import --dataset`, or the published
  model's, known by its file name `{N}_state.pth`, also for files converted before the field existed);
- any other file (e.g. written by `save_model` from Python) records nothing, and nothing is assumed.

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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from automod_cli.presets import DATASET_PRESETS

BUILTIN = "builtin"
FACE_DATASETS = ("ffhq", "celebahq")  # trained on FFHQ-aligned faces: inputs are aligned the same way by default
DATASET_NAMES = {
    BUILTIN: "the built-in shapes dataset (generated)",
    "ffhq": "FFHQ faces (aligned)",
    "celebahq": "CelebA-HQ faces (aligned)",
    "lsun-bedroom": "LSUN Bedrooms",
    "lsun-car": "LSUN Cars",
    "lsun": "LSUN images",
    "folder": "a folder of images",
    "custom": "a custom data file",
}
# `automod prep` records how faces were framed; these records mean FFHQ-style aligned faces (data_prep/sources.py)
ALIGNED_RECORDS = ("ffhq procedure", "ffhq release", "celeba-hq release")

BUILTIN_TOLERANCE = 0.08  # per channel on 0..1: the generator's grain is at most ±0.06
BUILTIN_SHARE = 0.65  # generated pictures: ≥ 0.72 (module docstring)
BUILTIN_SKY_STEP = 0.2  # sky value ≥ 0.7, ground value ≤ 0.45 in the generator (data_prep/builtin.py)
CHECK_MIN_RESOLUTION = 16  # below this a picture has too few pixels for the statistic


@dataclass(frozen=True)
class Provenance:
    """What a checkpoint says about the data its model was trained on."""

    dataset: str | None  # builtin, a dataset preset, a data file's source (folder, lsun, ...), custom; None: unknown
    resolution: int  # the checkpoint's resolution
    data_file: str | None = None  # the HDF5 file given to `automod train --data`
    alignment: str | None = None  # how the data file framed faces (its `automod prep` record), when it was read
    origin: str = "not recorded in the checkpoint"  # where this knowledge comes from

    @property
    def known(self) -> bool:
        return self.dataset is not None

    @property
    def aligned_faces(self) -> bool:
        """Trained on FFHQ-style aligned faces: a face dataset, or a data file prepared with face alignment."""
        return self.dataset in FACE_DATASETS or (self.alignment or "").startswith(ALIGNED_RECORDS)

    def describe(self) -> str:
        """'the built-in shapes dataset (...) at 32²', 'FFHQ faces (aligned) at 256², data file data/ffhq.h5'."""
        if self.dataset is None:
            return f"not recorded in the checkpoint ({self.resolution}² model)"
        text = f"{DATASET_NAMES.get(self.dataset, self.dataset)} at {self.resolution}²"
        if self.data_file:
            text += f", data file {self.data_file}"
        if self.alignment and self.dataset not in FACE_DATASETS and self.aligned_faces:
            text += " (faces aligned at prep)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aligned_faces": self.aligned_faces, "description": self.describe()}


def _data_record(data: str) -> tuple[str | None, str | None]:
    """The source and alignment `automod prep` recorded in a data file; (None, None) when it cannot be read here."""
    from data_prep.hdf5 import read_info

    if not Path(data).is_file():
        return None, None
    try:
        info = read_info(Path(data))
    except Exception:  # noqa: BLE001 -- a moved, damaged or foreign file: the provenance just knows less
        return None, None
    return info.source, info.alignment


def from_meta(meta: dict[str, Any], resolution: int) -> Provenance:
    """The provenance recorded in a checkpoint's metadata (module docstring)."""
    source = meta.get("source") or {}
    if source.get("format") == "authors":
        from automod_cli import pretrained

        dataset = source.get("dataset") or pretrained.dataset_of_file(str(source.get("file", "")))
        return Provenance(dataset, resolution, origin=f"authors' file {source.get('file', '?')} (imported)")
    train = meta.get("train_config")
    if not isinstance(train, dict):
        return Provenance(None, resolution)
    data = train.get("data")
    if data is None:
        return Provenance(BUILTIN, resolution, origin="training config (no data file)")
    recorded, alignment = _data_record(str(data))
    preset = train.get("preset", "custom")
    dataset = preset if preset in DATASET_PRESETS else (recorded or "custom")
    return Provenance(dataset, resolution, str(data), alignment, origin=f"training config (preset {preset})")


def read(path: Path, resolution: int) -> Provenance:
    """The provenance of the checkpoint file `path` (its header alone is read)."""
    from automod_cli.checkpoint import read_meta

    return from_meta(read_meta(Path(path)), resolution)


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
        return (f"{which} not look like the built-in shapes this model was trained on (a flat sky over a flat ground): "
                "expect shapes and colours of that dataset, not your pictures; train on your own images "
                "(automod prep, then automod train --data).")
    which = "the input looks" if n == 1 else f"{odd} of {n} inputs look"
    return (f"{which} like the built-in shapes dataset, but this model was trained on "
            f"{DATASET_NAMES.get(provenance.dataset, provenance.dataset)}: expect poor results on them.")


def mismatch(provenance: Provenance, images: torch.Tensor) -> str | None:
    """One sentence when the inputs look unlike the model's training data, else None.

    Only the built-in dataset has a recognisable look: a built-in model given other pictures (photos) is warned
    about, and so is a model trained on other data given built-in pictures. Unknown provenance: no check."""
    return mismatch_message(provenance, *unlike_count(provenance, images))
