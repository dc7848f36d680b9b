"""Schedule, resumable batch order, mirroring, EMA: the pieces of the loop, each against a written-out reference."""

import copy

import pytest
import torch

from automod_cli.errors import AutomodError
from automod_cli.presets import resolve_train_config
from automod_cli.training.data import Position, ResumableBatchSampler, advance, mirror, permutation
from automod_cli.training.distributed import World
from automod_cli.training.ema import make_ema, update_ema
from automod_cli.training.schedule import phase_at


def test_phase_at_walks_the_schedule_with_fade_in():
    config = resolve_train_config("builtin", {"phase_images": 1000, "fade_fraction": 0.5})
    first = phase_at(config, 0)
    assert (first.resolution, first.alpha, first.start, first.end) == (
        4,
        1.0,
        0,
        1000,
    )  # nothing to fade at 4²
    mid_fade = phase_at(config, 1250)
    assert (mid_fade.resolution, mid_fade.alpha) == (8, 0.5)
    assert phase_at(config, 1500).alpha == 1.0 and phase_at(config, 1999).resolution == 8
    assert phase_at(config, 2000).alpha == 0.0 and phase_at(config, 2000).resolution == 16
    last = phase_at(config, 10_000)  # past the end: the last phase
    assert last.resolution == 32 and last.alpha == 1.0
    assert phase_at(config, 2000).lr == config.lr[16] and phase_at(config, 0).kl_margin == config.kl_margin[4]


def _take(sampler, k):
    it = iter(sampler)
    return [next(it) for _ in range(k)]


def test_batches_cover_each_epoch_once_and_resume_exactly():
    n, batch = 10, 3
    sampler = ResumableBatchSampler(n, batch, World(), seed=5, start=Position())
    batches = _take(sampler, 7)
    first_epoch = sum(batches[:3], [])
    assert sorted(first_epoch) == sorted(permutation(n, 5, 0)[:9].tolist())
    assert len(set(first_epoch)) == 9  # no repeats within an epoch; the 10th image waits for the next one
    position = Position()
    for _ in range(4):
        position = advance(position, n, batch)
    resumed = _take(ResumableBatchSampler(n, batch, World(), seed=5, start=position), 3)
    assert resumed == batches[4:7]


def test_ranks_split_the_global_batch():
    n, batch = 16, 2
    full = _take(ResumableBatchSampler(n, batch * 2, World(), seed=1, start=Position()), 3)
    ranks = [
        _take(ResumableBatchSampler(n, batch, World(rank=r, size=2), seed=1, start=Position()), 3)
        for r in (0, 1)
    ]
    for step in range(3):
        assert ranks[0][step] + ranks[1][step] == full[step]


def test_too_small_dataset_is_refused():
    with pytest.raises(AutomodError, match="fewer than one batch"):
        ResumableBatchSampler(3, 4, World(), 0, Position())


def test_mirror_flips_about_half_reproducibly():
    x = torch.arange(64 * 4, dtype=torch.float32).view(64, 1, 1, 4)
    out = mirror(x, seed=0, step=3)
    flipped = (out != x).any(dim=(1, 2, 3))
    assert torch.equal(out[flipped], x[flipped].flip(-1)) and 16 < flipped.sum() < 48
    assert torch.equal(out, mirror(x, seed=0, step=3)) and not torch.equal(out, mirror(x, seed=0, step=4))


def test_ema_update_matches_formula():
    model = torch.nn.Linear(3, 2)
    ema = make_ema(model)
    before = copy.deepcopy(ema.state_dict())
    with torch.no_grad():
        model.weight.add_(1.0)
    update_ema(ema, model, beta=0.9)
    torch.testing.assert_close(ema.weight, 0.9 * before["weight"] + 0.1 * model.weight)
    assert not any(p.requires_grad for p in ema.parameters())
