"""The pool of generated images that the authors' encoder step draws from (their recipe; docs/training.md).

The pool holds up to `capacity` images of the current resolution. While it is not full, every generated image is
added and used as it is. Once it is full, each generated image is, with probability ½, swapped: the batch gets a
random image from the pool and that slot takes the new one. So the encoder sees about half fresh fakes and half
older ones, which keeps it from tracking the decoder's latest mistakes only. Choices are drawn on the CPU (no
device synchronisation); the pool is emptied whenever the resolution changes and is saved with the run's
training state so a resumed run draws exactly as an uninterrupted one.
"""

from __future__ import annotations

import torch

from automod_cli.training.draws import RandomDraws


def pool_capacity(size: int, resolution: int) -> int:
    """The authors' pool: `size` images, half as many from 256² up (memory)."""
    return size if resolution < 256 else size // 2


class ImagePool:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self.images: torch.Tensor | None = None  # (n ≤ capacity, 3, R, R) on the training device

    def __len__(self) -> int:
        return 0 if self.images is None else self.images.shape[0]

    def clear(self) -> None:
        self.images = None

    @torch.no_grad()
    def swap(self, batch: torch.Tensor, draws: RandomDraws | None = None) -> torch.Tensor:
        """The batch the encoder sees: `batch` with about half of its images exchanged for pool images once the
        pool is full; the pool takes the images it gives away (see the module docstring). `draws` makes the
        choices (training/draws.py; default: the run's own random numbers)."""
        if self.capacity <= 0:
            return batch
        batch = batch.detach()
        if self.images is not None and self.images.shape[1:] != batch.shape[1:]:
            self.clear()
        n = batch.shape[0]
        free = self.capacity - len(self)
        if free > 0:  # fill first: these images are used as they are
            take = min(free, n)
            added = batch[:take]
            self.images = added.clone() if self.images is None else torch.cat([self.images, added])
        else:
            take = 0
        rest = n - take
        if rest == 0:
            return batch
        choices = (draws or RandomDraws()).pool_choices(rest, self.capacity)
        out = batch.clone()
        for offset, slot in enumerate(
            choices
        ):  # in order, so a slot drawn twice acts as one image at a time would
            if slot is not None:
                row = take + offset
                old = self.images[slot].clone()
                self.images[slot] = batch[row]
                out[row] = old
        return out

    def state(self) -> dict:
        return {"capacity": self.capacity, "images": self.images.cpu() if self.images is not None else None}

    def load_state(self, state: dict | None, device: torch.device) -> None:
        if not state:
            return
        self.capacity = int(state["capacity"])
        images = state.get("images")
        self.images = None if images is None else images.to(device)
