"""The images a metric compares with: a prepared HDF5 file or the built-in dataset, at the model's resolution.

By default a model is evaluated against the data it was trained on, as recorded in its checkpoint
(`train_config.data`; None means the built-in dataset). Reconstruction metrics need unseen images: the
built-in dataset's test split, or the test file written by `automod prep ... --split test`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import Dataset

from automod_cli.errors import AutomodError
from automod_cli.locate import OpenedModel
from automod_cli.models import Automodulator
from data_prep.builtin import SPLITS, BuiltinDataset
from data_prep.hdf5 import H5Images, read_batch, read_info


@dataclass(frozen=True)
class EvalData:
    """Images as float (3, H, W) tensors in [-1, 1]; `key` identifies their content for caching."""

    dataset: Dataset
    key: str
    label: str
    split: str
    resolution: int

    def __len__(self) -> int:
        return len(self.dataset)


def open_eval_data(path: Path | None, resolution: int, split: str = "train") -> EvalData:
    """The images of an automod HDF5 file at `resolution`, or (path None) the built-in dataset's `split`."""
    if path is None:
        seed, count = SPLITS[split]
        dataset = BuiltinDataset(split=split, resolution=resolution)
        return EvalData(
            dataset, f"builtin-{split}-seed{seed}-n{count}", f"built-in {split} split", split, resolution
        )
    info = read_info(Path(path))
    dataset = H5Images(Path(path), resolution)
    return EvalData(dataset, f"h5-{info.checksum[:24]}", str(path), info.split, resolution)


def data_path(kind: str, data: Path | None, trained_on: Path | None) -> Path | None:
    """The file a metric reads, checked without opening it: for kind "reference" (FID) `--data`, else the model's
    training data; for "test" (reconstructions) `--data`, else the built-in test split (built-in models only).
    None: the built-in dataset."""
    if kind == "reference":
        path = data if data is not None else trained_on
        if data is None and path is not None and not Path(path).is_file():
            raise AutomodError(
                f"the model was trained on '{path}', which is not there now: pass --data FILE.h5."
            )
    else:
        if data is None and trained_on is not None:
            raise AutomodError(
                f"the model was trained on '{trained_on}': pass its test split as --data "
                "(write one with `automod prep ... --split test`)."
            )
        path = data
    if path is not None and not Path(path).is_file():
        raise AutomodError(f"--data '{path}' is not a file: give an .h5 file written by automod prep.")
    return None if path is None else Path(path)


def reference_data(loaded: OpenedModel, data: Path | None) -> EvalData:
    """The reference set for FID: `--data`, else the model's training data."""
    return open_eval_data(data_path("reference", data, loaded.trained_on), loaded.model.resolution, "train")


def unseen_data(loaded: OpenedModel, data: Path | None) -> EvalData:
    """Unseen images for reconstruction metrics: `--data`, else the built-in test split for built-in models."""
    return open_eval_data(data_path("test", data, loaded.trained_on), loaded.model.resolution, "test")


def image_batches(data: EvalData, count: int | None, batch_size: int) -> Iterator[torch.Tensor]:
    """The first `count` images (all when None) in batches of float (N, 3, H, W) tensors in [-1, 1]."""
    total = len(data) if count is None else count
    if total > len(data):
        raise AutomodError(
            f"{data.label} holds {len(data):,} images, fewer than the {total:,} asked for: lower --n."
        )
    for start in range(0, total, batch_size):
        yield torch.stack(read_batch(data.dataset, list(range(start, min(start + batch_size, total)))))


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] to uint8 (N, 3, H, W), rounding as an image file would store them."""
    return ((images.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


MEAN_LATENT_IMAGES = 1000  # training images averaged for the 'mean' start (our choice)


def mean_latent_of(
    model: Automodulator, data: EvalData, count: int = MEAN_LATENT_IMAGES, batch_size: int = 50
) -> torch.Tensor:
    """The 'mean' start: the mean encoding of the first `count` images of `data` (fewer if it has fewer), brought into
    the model's latent space (normalised on the sphere)."""
    device = next(model.parameters()).device
    total: torch.Tensor | None = None
    count_seen = 0
    with torch.inference_mode():
        for batch in image_batches(data, min(count, len(data)), batch_size):
            encoded = model.encode(batch.to(device)).sum(0)
            total = encoded if total is None else total + encoded
            count_seen += len(batch)
    return model.constrain_latent(total / count_seen)
