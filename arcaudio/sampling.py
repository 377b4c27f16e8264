"""Samplers: plain functions over a velocity callable `model_fn(x (B, C, T), t (B,)) -> v (B, C, T)`.

All share one signature, `sample_<name>(model_fn, x, ts, *, generator=None, callback=None)`, where `x` is the
starting point at time ts[0] (pure noise when ts[0] = 1) and `ts` runs down to 0. Conditioning is bound into
`model_fn` by the caller (see `cfg_velocity`). `generator` is one torch.Generator for the batch, or one per batch
item (item i's noise then depends on generator i only: per-clip reproducibility whatever the batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .flow import add_noise, x0_from_velocity

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor], None]
Generators = torch.Generator | Sequence[torch.Generator] | None


def batch_randn(shape: Sequence[int], generator: Generators, device: torch.device | str,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape` (B, ...) on `device`: from one generator, or item i from generator[i].
    Each draw happens where its generator lives (e.g. a CPU generator for GPU sampling), then moves to `device`."""
    if generator is None or isinstance(generator, torch.Generator):
        where = generator.device if generator is not None else device
        return torch.randn(tuple(shape), generator=generator, device=where, dtype=dtype).to(device)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}; give one, or one per item")
    items = [torch.randn(tuple(shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generator]
    return torch.stack(items).to(device)  # (B, ...)


def pingpong_schedule(steps: int, logsnr_min: float = -6.0, logsnr_max: float = 2.0) -> torch.Tensor:
    """ARC ping-pong times: t_i = sigmoid(-logsnr_i), logsnr = linspace(logsnr_min, logsnr_max, steps + 1),
    with the ends forced to 1 and 0. Returns (steps + 1,) float64, decreasing."""
    _check_steps(steps)
    t = torch.sigmoid(-torch.linspace(logsnr_min, logsnr_max, steps + 1, dtype=torch.float64))
    t[0], t[-1] = 1.0, 0.0
    return t


def linear_schedule(steps: int) -> torch.Tensor:
    """Uniform times 1 -> 0 for ODE sampling. Returns (steps + 1,) float64."""
    _check_steps(steps)
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def sample_pingpong(model_fn: VelocityFn, x: torch.Tensor, ts: torch.Tensor, *,
                    generator: Generators = None, callback: Callback | None = None) -> torch.Tensor:
    """Ping-pong sampling (Novack et al. 2025, ARC): denoise to x0_hat = x - t v, then re-noise to the next time
    with fresh noise; the last step returns x0_hat."""
    for i in range(len(ts) - 1):
        t = torch.full((x.shape[0],), float(ts[i]), device=x.device)
        x0_hat = x0_from_velocity(x, t, model_fn(x, t))
        t_next = float(ts[i + 1])
        if t_next > 0:
            noise = batch_randn(x.shape, generator, x.device, x.dtype)
            x = add_noise(x0_hat, noise, torch.full_like(t, t_next))
        else:
            x = x0_hat
        if callback is not None:
            callback(i, x)
    return x


def sample_euler(model_fn: VelocityFn, x: torch.Tensor, ts: torch.Tensor, *,
                 generator: Generators = None, callback: Callback | None = None) -> torch.Tensor:
    """Euler integration of the flow ODE dx/dt = v: x <- x + (t_next - t) v. `generator` is unused."""
    for i in range(len(ts) - 1):
        t = torch.full((x.shape[0],), float(ts[i]), device=x.device)
        x = x + (float(ts[i + 1]) - float(ts[i])) * model_fn(x, t)
        if callback is not None:
            callback(i, x)
    return x


SAMPLERS = {"pingpong": (sample_pingpong, pingpong_schedule), "euler": (sample_euler, linear_schedule)}


def cfg_velocity(model, cond, cfg_scale: float = 1.0) -> VelocityFn:
    """Bind conditioning (and classifier-free guidance) into a velocity callable.

    With cfg_scale != 1: v = v_uncond + cfg_scale * (v_cond - v_uncond), where the unconditional branch is
    `cond.null()`: cross-attention tokens zeroed and the seconds condition kept, as in stable-audio-tools.
    A model with `with_context_cache` (TextToAudioModel) gets its cross-attention keys and values computed here,
    once, instead of at every call.
    """
    cache = getattr(model, "with_context_cache", None)  # cross-attention K/V once per generation, not per step
    if cfg_scale == 1.0:
        cond = cache(cond) if cache else cond
        return lambda x, t: model(x, t, cond)
    both = type(cond).cat([cond, cond.null()])
    both = cache(both) if cache else both

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_cond, v_uncond = model(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return v_uncond + cfg_scale * (v_cond - v_uncond)

    return fn
