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


TIME_SAMPLERS = ("uniform", "logit_normal", "logsnr_uniform")


def sample_t(kind: str, n: int, generator: torch.Generator | None = None, shift: float = 1.0,
             logsnr_range: tuple[float, float] = (-6.0, 2.0)) -> torch.Tensor:
    """Draw n training times in [0, 1] (float32, CPU).

    kind: "uniform"; "logit_normal", t = sigmoid(N(0, 1)); "logsnr_uniform", logSNR ~ U(logsnr_range) and
    t = sigmoid(-logSNR) (the ping-pong grid's range). `shift` > 1 moves mass towards noise:
    t' = shift t / (1 + (shift - 1) t).
    """
    if kind == "uniform":
        t = torch.rand(n, generator=generator)
    elif kind == "logit_normal":
        t = torch.sigmoid(torch.randn(n, generator=generator))
    elif kind == "logsnr_uniform":
        lo, hi = logsnr_range
        t = torch.sigmoid(-(lo + (hi - lo) * torch.rand(n, generator=generator)))
    else:
        raise ValueError(f"unknown time sampler {kind!r}; choose one of {list(TIME_SAMPLERS)}")
    if shift <= 0:
        raise ValueError(f"time shift must be > 0, got {shift}")
    if shift != 1.0:
        t = shift * t / (1 + (shift - 1) * t)
    return t
