"""Exponential moving average of a module's trainable weights, with a warm-up of the decay."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copies (fp32) of `module`'s parameters that require grad.

    After update k (0-based), shadow <- decay_k * shadow + (1 - decay_k) * param with
    decay_k = min(decay, 1 - (k + 1) ** -power): early updates follow the weights closely (as ema_pytorch's warm-up).
    """

    def __init__(self, module: nn.Module, decay: float = 0.999, power: float = 0.75):
        self.decay, self.power = decay, power
        self.names = [n for n, p in module.named_parameters() if p.requires_grad]
        params = dict(module.named_parameters())
        self.shadow = {n: params[n].detach().float().clone() for n in self.names}
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, 1.0 - (self.updates + 1) ** -self.power)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = self.current_decay()
        params = dict(module.named_parameters())
        for name in self.names:
            self.shadow[name].lerp_(params[name].detach().float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the averaged weights into `module` (same structure as the one tracked)."""
        params = dict(module.named_parameters())
        for name in self.names:
            params[name].copy_(self.shadow[name].to(params[name].dtype))

    def state_dict(self) -> dict:
        return {"shadow": dict(self.shadow), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.names) - set(state["shadow"])
        if missing:
            raise ValueError(f"EMA state lacks {sorted(missing)[:5]} ...")
        from .sharding import distribute_like  # under FSDP the shadows are sharded as their parameters

        self.shadow = {n: distribute_like(state["shadow"][n].float(), self.shadow[n]).clone() for n in self.names}
        self.updates = int(state["updates"])


class swapped_in:
    """Context manager: the module holds the EMA weights inside the block, its own weights again after it."""

    def __init__(self, ema: EMA | None, module: nn.Module):
        self.ema, self.module, self.saved = ema, module, None

    def __enter__(self) -> nn.Module:
        if self.ema is not None:
            params = dict(self.module.named_parameters())
            self.saved = {n: params[n].detach().clone() for n in self.ema.names}
            self.ema.copy_to(self.module)
        return self.module

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            params = dict(self.module.named_parameters())
            with torch.no_grad():
                for name, value in self.saved.items():
                    params[name].copy_(value)
