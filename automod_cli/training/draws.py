"""Where a training step gets its random numbers: one object that the encoder and decoder steps, the decoder's
layer noise and the image pool ask, and nothing else in training draws.

`RandomDraws` draws from the run's generators (torch's global generator, as the checkpoints save and restore it),
so a resumed run draws exactly as the uninterrupted one. `ReplayDraws` serves draws recorded elsewhere, by tag, in
the order they were recorded: the step-parity tests replay the authors' own draws through automod's step with it
(tests/test_parity.py), and a step can be repeated with the same numbers for debugging.

Tags name what a draw is for, as the authors' recordings name them (../shared/fixtures/authors-training): `E.` in
the encoder step and `D.` in the decoder step; `z` (the latents), `z_mix` (the second latents of the mixed rows),
`split` (j); `recon`, `fake1`, `fake2` and `canvas` for the layer noise of a generator call (`fake1` covers the
blocks before the split, `fake2` the rest), `.noise{block}.{k}` for the noise after a block's first (k = 0) or
second (k = 1) convolution; `pool.u` and `pool.slot` for the pool's choices.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import torch

from automod_cli.errors import AutomodError
from automod_cli.models.latents import normalize

# (block, k, like) → noise of like's shape: the layer noise of one generator call (nn/noise.py adds it)
BlockNoise = Callable[[int, int, torch.Tensor], torch.Tensor]


class RandomDraws:
    """The run's own random numbers (torch's global generator, and the CPU's for choices, so no device waits)."""

    def latents(self, tag: str, n: int, dim: int, device) -> torch.Tensor:
        """n unit-norm latents (normal draws projected onto the sphere)."""
        return normalize(torch.randn(n, dim, device=device))

    def split(self, tag: str, top: int) -> int:
        """The split j, uniform on 1..top."""
        return int(torch.randint(1, max(top, 1) + 1, ()).item())

    def layer_noise(self, call: str, split: int | None = None) -> bool | BlockNoise:
        """The layer noise of one generator call: True lets each layer draw its own (nn/noise.py), which is what
        the run's generator gives as well."""
        return True

    def pool_choices(self, rows: int, capacity: int) -> list[int | None]:
        """For each of `rows` generated images offered to a full pool: the slot to swap it with, or None to keep
        it (probability ½ each)."""
        chosen = torch.rand(rows) < 0.5
        slots = torch.randint(0, capacity, (rows,))
        return [int(slot) if keep else None for keep, slot in zip(chosen.tolist(), slots.tolist())]


class ReplayDraws(RandomDraws):
    """Recorded draws served by tag in their recorded order: `records` is a sequence of (tag, value), values as
    the recording holds them (raw normal draws for latents and noise, the integer j, the pool's uniform numbers
    and slots). Every request must find its tag; `finish()` says whether anything recorded was left unused.
    `requested` lists the tags in the order the step asked for them."""

    def __init__(self, records: list[tuple[str, Any]]):
        self.queues: dict[str, deque] = defaultdict(deque)
        for tag, value in records:
            self.queues[tag].append(value)
        self.requested: list[str] = []

    def take(self, tag: str) -> Any:
        queue = self.queues.get(tag)
        if not queue:
            raise AutomodError(
                f"the recorded draws have no (further) draw '{tag}': the step asks for more than the "
                "recording made."
            )
        self.requested.append(tag)
        return queue.popleft()

    def _tensor(self, tag: str, shape, device) -> torch.Tensor:
        value = torch.as_tensor(self.take(tag), dtype=torch.float32)
        if tuple(value.shape) != tuple(shape):
            raise AutomodError(
                f"the recorded draw '{tag}' has shape {tuple(value.shape)}, the step asks for {tuple(shape)}."
            )
        return value.to(device)

    def latents(self, tag: str, n: int, dim: int, device) -> torch.Tensor:
        return normalize(self._tensor(tag, (n, dim), device))

    def split(self, tag: str, top: int) -> int:
        j = int(self.take(tag))
        if not 1 <= j <= max(top, 1):
            raise AutomodError(f"the recorded split {j} ('{tag}') lies outside this step's 1..{top}.")
        return j

    def layer_noise(self, call: str, split: int | None = None) -> BlockNoise:
        def noise(block: int, k: int, like: torch.Tensor) -> torch.Tensor:
            part = "" if split is None else ("1" if block < split else "2")
            return self._tensor(f"{call}{part}.noise{block}.{k}", like.shape, like.device).to(like.dtype)

        return noise

    def pool_choices(self, rows: int, capacity: int) -> list[int | None]:
        choices: list[int | None] = []
        for _ in range(rows):  # the authors' order: a uniform number per row, a slot only when it swaps
            u = float(self.take("E.pool.u"))
            choices.append(int(self.take("E.pool.slot")) if u > 0.5 else None)
        return choices

    def left(self) -> dict[str, int]:
        """Recorded draws not asked for, by tag."""
        return {tag: len(queue) for tag, queue in self.queues.items() if queue}
