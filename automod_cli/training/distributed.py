"""Data-parallel training under torchrun: process group set-up, gradient averaging, rank-0-only writing.

Gradients are averaged with one all-reduce per network after each backward pass rather than by wrapping the
networks in DistributedDataParallel: every step trains one network while the other is frozen, and progressive
growth leaves the unused blocks without gradients, both of which DDP's fixed reducer handles poorly. Every rank
starts from the same weights (rank 0's, broadcast) and applies the same averaged gradients, so weights stay equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init_world(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment; a plain run is a world of one."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return World(
        rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def shutdown(world: World) -> None:
    """Leave the process group together: a rank that tears gloo down while its peer is still mid-collective
    or already gone can abort the process at exit ("terminate called without an active exception")."""
    if world.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, world: World) -> None:
    """Give every rank rank 0's parameters and buffers."""
    if world.active:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: nn.Module, world: World) -> None:
    """Average the gradients that exist across ranks with one flattened all-reduce."""
    if not world.active:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def smallest(value: int, world: World, device: torch.device) -> int:
    """The smallest of every rank's `value` (each rank must call this at the same point of its run)."""
    if not world.active:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())
