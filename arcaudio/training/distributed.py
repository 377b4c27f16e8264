"""PyTorch's own distributed stack: a process group from torchrun's environment, DDP, small collectives.

Run any training command under `torchrun --nproc_per_node N` (or with --nnodes for several machines); without
torchrun it runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, dev)


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """`module` in DistributedDataParallel when running under torchrun, else unchanged."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def mean_across(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """Average scalar metrics over processes."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t)}


def gather_sets(info: DistInfo, items: set[str]) -> set[str]:
    """Union of a set of strings over processes."""
    if not info.enabled:
        return set(items)
    out: list = [None] * info.world_size
    dist.all_gather_object(out, sorted(items))
    return set().union(*map(set, out))


def gather_objects(info: DistInfo, obj) -> list:
    """A list of one picklable object per process, in rank order."""
    if not info.enabled:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
