"""FSDP2 (`torch.distributed.fsdp.fully_shard`): parameters, gradients and optimizer state sharded across
processes, for models that do not fit one device (`--strategy fsdp`; DDP replicates them).

A sharded module's parameters are DTensors: each process holds 1 / world_size of every tensor. Checkpoints and
exported models hold full tensors (gathered on every process, written by rank 0), so a run folder reads the same
whichever strategy wrote it; resuming distributes them again (`distribute_like`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .distributed import DistInfo


def _dtensor():
    from torch.distributed.tensor import DTensor

    return DTensor


def shard_model(module: nn.Module, info: DistInfo, units: Iterable[nn.Module]) -> nn.Module:
    """fully_shard each of `units` (e.g. the DiT's blocks: each gathers its parameters only while it runs), then
    `module` itself (the rest of its trainable parameters). Frozen parameters (the autoencoder, an external T5)
    stay whole on every process: they have no gradients or optimizer state to shard, and methods other than
    forward (autoencoder.encode) can use them. Returns `module`, sharded in place."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(info.device.type, (info.world_size,))
    frozen = {p for p in module.parameters() if not p.requires_grad}
    for unit in units:
        if any(p.requires_grad for p in unit.parameters()):
            fully_shard(unit, mesh=mesh, ignored_params=frozen & set(unit.parameters()) or None)
    fully_shard(module, mesh=mesh, ignored_params=frozen or None)
    return module


def is_sharded(module: nn.Module) -> bool:
    DTensor = _dtensor()
    return any(isinstance(p, DTensor) for p in module.parameters())


def full_tensors(tree: Any) -> Any:
    """`tree` (nested dicts / lists / tuples) with every DTensor gathered to a full CPU tensor. A collective: every
    process calls it on the same structure, in the same order."""
    DTensor = _dtensor()
    if isinstance(tree, DTensor):
        return tree.full_tensor().cpu()
    if isinstance(tree, dict):
        return {k: full_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(full_tensors(v) for v in tree)
    return tree


def distribute_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A full tensor as a DTensor placed as `like` (a DTensor), or unchanged when `like` is a plain tensor."""
    DTensor = _dtensor()
    if not isinstance(like, DTensor):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(like.device, like.dtype), like.device_mesh, like.placements)


def distribute_state_dict(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """A full state dict placed as `module`'s (sharded) state dict, ready for `module.load_state_dict`."""
    current = module.state_dict()
    return {k: distribute_like(v, current[k]) if k in current else v for k, v in state.items()}


def distribute_optimizer_state(state: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A full optimizer state dict with each parameter's moment tensors placed as that (sharded) parameter."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    out = {**state, "state": {}}
    for index, entry in state["state"].items():
        param = params[int(index)]
        out["state"][index] = {k: distribute_like(v, param) if torch.is_tensor(v) and v.shape == param.shape else v
                               for k, v in entry.items()}
    return out


def whole_copy(module: nn.Module, info: DistInfo) -> nn.Module | None:
    """Before sharding: a whole CPU copy of `module` on rank 0 (None elsewhere), that exports are written from."""
    return copy.deepcopy(module).cpu() if info.is_main else None


def gathered(module: nn.Module, copy_on_main: nn.Module | None) -> nn.Module | None:
    """The module a file is written from: `module` itself when it is not sharded; under FSDP `copy_on_main`
    (`whole_copy`) loaded with `module`'s state gathered whole on rank 0, None on the other ranks. A collective
    under FSDP: every process calls it."""
    if not is_sharded(module):
        return module
    state = full_tensors(module.state_dict())
    if copy_on_main is None:
        return None
    copy_on_main.load_state_dict(state)
    return copy_on_main


def as_float(value: torch.Tensor) -> float:
    """A scalar tensor, gathered first if it is a DTensor (e.g. clip_grad_norm_'s total norm under FSDP)."""
    DTensor = _dtensor()
    return float(value.full_tensor() if isinstance(value, DTensor) else value)


def local_share(module: nn.Module) -> tuple[int, int]:
    """(trainable weight values this process holds, trainable weight values in all)."""
    DTensor = _dtensor()
    held = total = 0
    for p in module.parameters():
        if p.requires_grad:
            total += p.numel()
            held += p.to_local().numel() if isinstance(p, DTensor) else p.numel()
    return held, total
