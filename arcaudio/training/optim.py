"""Optimizers and learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from .config import OptimConfig


def decay_groups(params: Iterable, **options) -> list[dict]:
    """`params` as two AdamW groups: matrices and kernels with weight decay, norms, biases and 1-d gains without;
    `options` (e.g. `lr`) set on both."""
    params = list(params)
    return [{"params": [p for p in params if p.ndim >= 2], **options},
            {"params": [p for p in params if p.ndim < 2], **options, "weight_decay": 0.0}]


def build_optimizer(params: Iterable, config: OptimConfig, lr: float | None = None) -> torch.optim.AdamW:
    """AdamW over `params` (tensors, split by `decay_groups`, or param-group dicts taken as they are)."""
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else decay_groups(params)
    return torch.optim.AdamW(groups, lr=config.lr if lr is None else lr, betas=tuple(config.betas),
                             eps=config.eps, weight_decay=config.weight_decay)


def lr_factor(step: int, total: int, config: OptimConfig) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        span = max(1, total - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, total: int, config: OptimConfig,
                    run_step: Callable[[int], int] | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """The schedule of `config` over a run of `total` steps, for an optimizer whose k-th own step is taken at run
    step `run_step(k)` (default: every run step; ARC's players alternate, so each takes every other one). Its k-th
    step gets lr_factor(run_step(k)): warm-up and decay follow the run's steps, so each player's schedule ends where
    the run ends, whatever share of the steps it takes."""
    at = run_step or (lambda k: k)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(at(k), total, config))
