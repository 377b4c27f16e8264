"""Rectified flow, the one time convention of the project.

t in [0, 1], t = 1 is pure noise:  x_t = (1 - t) * x0 + t * eps,  target velocity v = eps - x0,
one-step clean estimate x0_hat = x_t - t * v.  (stable-audio-tools uses the same convention, so its checkpoints
load with no sign flips.)  Tensors are latents (B, C, T); t is (B,).
"""

from __future__ import annotations

import torch


def _bcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))  # (B,) -> (B, 1, 1)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t) x0 + t noise."""
    tb = _bcast(t, x0)
    return (1 - tb) * x0 + tb * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = noise - x0, the regression target of the flow."""
    return noise - x0


def x0_from_velocity(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """x0_hat = x_t - t v."""
    return x_t - _bcast(t, x_t) * v
