"""Training data: the dataset for a run, and a batch order that can be resumed exactly from a saved position.

The order is a fresh permutation per epoch, seeded by (seed, epoch). A position is (epoch, cursor); each global
batch takes the next `batch × world size` indices and each rank its slice, so a run resumed from a checkpoint
sees exactly the batches the uninterrupted run would have seen. Mirror flips are drawn from (seed, step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from automod_cli.config import TrainConfig
from automod_cli.errors import AutomodError
from automod_cli.training.distributed import World
from data_prep.builtin import BuiltinDataset
from data_prep.hdf5 import H5Images, read_batch


@dataclass(frozen=True)
class Position:
    epoch: int = 0
    cursor: int = 0


def permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def advance(position: Position, n: int, global_batch: int) -> Position:
    """The position after one more global batch (an epoch's leftover that cannot fill a batch is skipped)."""
    epoch, cursor = position.epoch, position.cursor
    if cursor + global_batch > n:
        epoch, cursor = epoch + 1, 0
    return Position(epoch, cursor + global_batch)


def too_few_images(n: int, global_batch: int, resolution: int) -> str:
    """The one line for a data set smaller than one global batch at `resolution`, naming the setting to change."""
    smaller = 1 << max(n.bit_length() - 1, 0)  # the largest power of two the data can fill
    return (
        f"the data set has {n} images, fewer than one batch of {global_batch} at {resolution}²: add data, or "
        f"lower the batch size (--set batch_size.{resolution}={smaller}, or --set batch_size={smaller} for every "
        "resolution)."
    )


def check_batches(n: int, config: TrainConfig, level: int, ranks: int) -> None:
    """Before any work: one AutomodError when a phase from `level` on needs more images per global batch than the
    data set's `n`."""
    for resolution in config.resolutions[level:]:
        if n < config.batch_size[resolution] * ranks:
            raise AutomodError(too_few_images(n, config.batch_size[resolution] * ranks, resolution))


class ResumableBatchSampler(Sampler):
    """Endless index batches for one rank, starting at a saved position."""

    def __init__(self, n: int, batch_size: int, world: World, seed: int, start: Position):
        if n < batch_size * world.size:  # runs check every phase first (`check_batches`)
            raise AutomodError(
                f"the data set has {n} images, fewer than one batch of {batch_size * world.size}: add "
                "data or lower the batch size (--set batch_size=N)."
            )
        self.n, self.batch_size, self.world, self.seed, self.start = n, batch_size, world, seed, start

    def __iter__(self):
        global_batch = self.batch_size * self.world.size
        position, order, order_epoch = self.start, None, -1
        while True:
            nxt = advance(position, self.n, global_batch)
            if nxt.epoch != order_epoch:
                order, order_epoch = permutation(self.n, self.seed, nxt.epoch), nxt.epoch
            begin = nxt.cursor - global_batch + self.world.rank * self.batch_size
            yield order[begin : begin + self.batch_size].tolist()
            position = nxt


class FirstImages(Dataset):
    """The first `count` images of a progressive dataset (keeps its `set_resolution`)."""

    def __init__(self, dataset: Dataset, count: int):
        self.dataset, self.count = dataset, min(count, len(dataset))

    def set_resolution(self, resolution: int) -> None:
        self.dataset.set_resolution(resolution)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list:
        """A batch, read by the wrapped dataset's own batch read where it has one (data_prep/hdf5.py)."""
        for index in indices:
            if not 0 <= index < self.count:
                raise IndexError(index)
        return read_batch(self.dataset, indices)


def open_training_data(config: TrainConfig, split: str = "train") -> Dataset:
    """The built-in data set when no file is given, else the prepared HDF5 file; both start at 4×4."""
    first = config.resolutions[0]
    if config.data is None:
        count = config.data_limit if split == "train" else min(config.data_limit or 64, 64)
        return BuiltinDataset(
            split=split, resolution=first, count=count, resample=config.recipe.real_downscale
        )
    dataset = H5Images(config.data, resolution=first)
    return FirstImages(dataset, config.data_limit) if config.data_limit else dataset


def make_loader(
    dataset: Dataset, batch_size: int, world: World, config: TrainConfig, start: Position, pin: bool
) -> DataLoader:
    sampler = ResumableBatchSampler(len(dataset), batch_size, world, config.seed, start)
    workers = config.workers
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(config.seed),  # keeps the global RNG untouched (exact resume)
    )


def mirror(batch: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """Flip a random half (in expectation) of the batch horizontally, reproducibly per step."""
    generator = torch.Generator().manual_seed(seed * 7_919 + step)
    flips = torch.rand(batch.shape[0], generator=generator) < 0.5
    if batch.is_cuda:  # from pinned memory the copy is queued; from pageable memory it would wait for the GPU
        flips = flips.pin_memory()
    flips = flips.to(batch.device, non_blocking=True)
    return torch.where(flips[:, None, None, None], batch.flip(-1), batch)
