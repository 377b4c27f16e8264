"""Samplers: plain functions over a velocity callable `model_fn(x (B, C, T), t (B,)) -> v (B, C, T)`.

All share one signature, `sample_<name>(model_fn, x, ts, *, generator=None, callback=None)`, where `x` is the
starting point at time ts[0] (pure noise when ts[0] = 1) and `ts` runs down to 0. Conditioning is bound into
`model_fn` by the caller (see `cfg_velocity`). `rf_schedule` makes the reference's time grid, which every sampler
here uses (stable-audio-tools: one log-SNR grid for Euler, DPM++ and ping-pong alike). `generator` is one
torch.Generator for the batch, or one per batch item (item i's noise then depends on generator i only: per-clip
reproducibility whatever the batch), or a `NoiseQueue` of noise drawn beforehand (captured generation: a CUDA graph
cannot call a CPU generator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .flow import add_noise, x0_from_velocity

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor], None]


class NoiseQueue:
    """Noise drawn beforehand, handed out in order: draw k of a sampling run returns `buffer[k]` (B, ...), with no
    copy and no host work, so the run can be recorded as a CUDA graph that reads the buffer at replay.
    `buffer`: (N, B, ...); None counts the draws instead and returns zeros (a dry run that sizes the buffer).

    Raises:
        IndexError: on a draw past the buffer's N, naming N.
    """

    def __init__(self, buffer: torch.Tensor | None):
        self.buffer, self.drawn = buffer, 0

    def draw(self, shape: Sequence[int], device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        k, self.drawn = self.drawn, self.drawn + 1
        if self.buffer is None:
            return torch.zeros(tuple(shape), device=device, dtype=dtype)
        if k >= len(self.buffer):
            raise IndexError(f"the sampler drew noise {k + 1} times; this queue holds {len(self.buffer)} draws")
        noise = self.buffer[k]
        if tuple(noise.shape) != tuple(shape) or noise.dtype != dtype:
            raise ValueError(f"queued noise is {tuple(noise.shape)} {noise.dtype}, the sampler asked for "
                             f"{tuple(shape)} {dtype}")
        return noise


Generators = torch.Generator | Sequence[torch.Generator] | NoiseQueue | None


def batch_randn(shape: Sequence[int], generator: Generators, device: torch.device | str,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape` (B, ...) on `device` in `dtype`: from one generator, or item i from
    generator[i]. Each draw happens where its generator lives (e.g. a CPU generator for GPU sampling), then moves to
    `device`. A NoiseQueue hands out its next pre-drawn tensor instead.

    Drawn in float32 whatever `dtype`, then cast: a seed gives a bf16 model the noise it gives an fp32 one, on
    every torch version. torch's CPU `randn` in bf16 computes in reduced precision on some versions (pytorch#166853)
    and is several times slower (pytorch#173173); drawn that way on torch 2.11, a bf16 DiT's clips measured latent
    cosine 0.25 to the fp32 clips of the same seed, while one bf16 forward agreed to 0.99983."""
    if isinstance(generator, NoiseQueue):
        return generator.draw(shape, device, dtype)
    if generator is None or isinstance(generator, torch.Generator):
        where = generator.device if generator is not None else device
        return torch.randn(tuple(shape), generator=generator, device=where).to(device=device, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}; give one, or one per item")
    items = [torch.randn(tuple(shape[1:]), generator=g, device=g.device) for g in generator]
    return torch.stack(items).to(device=device, dtype=dtype)  # (B, ...)


def rf_schedule(steps: int, sigma_max: float = 1.0, logsnr_min: float = -6.0,
                logsnr_max: float = 2.0) -> torch.Tensor:
    """The time grid of every rectified-flow sampler (stable-audio-tools' `sample_rf`), (steps + 1,) float64.

    logSNR = linspace(start, logsnr_max, steps + 1) with t = sigmoid(-logSNR), the ends then forced to sigma_max
    and 0. From pure noise (sigma_max = 1) start = logsnr_min, so 8 steps give
    [1, .9933, .9820, .9526, .8808, .7311, .5, .2689, 0]. From part-way (audio-to-audio at strength s = sigma_max)
    the grid is respaced from start = log((1 - s) / s + 1e-6), the log-SNR of t = s, to logsnr_max; for
    s < sigmoid(-logsnr_max) (0.119) that start lies above logsnr_max and the inner times rise towards 0.119
    before the last step, as in the reference. Computed in float32 as the reference does, so the times are
    its times bit for bit.
    """
    _check_steps(steps)
    if not (isinstance(sigma_max, (int, float)) and 0 < sigma_max <= 1):
        raise ValueError(f"sigma_max (the starting time) must be in (0, 1], got {sigma_max!r}")
    start = math.log((1 - sigma_max) / sigma_max + 1e-6) if sigma_max < 1 else logsnr_min
    t = torch.sigmoid(-torch.linspace(start, logsnr_max, steps + 1, dtype=torch.float32))
    t[0], t[-1] = sigma_max, 0.0
    return t.double()


def pingpong_schedule(steps: int, logsnr_min: float = -6.0, logsnr_max: float = 2.0) -> torch.Tensor:
    """ARC's ping-pong grid from pure noise: `rf_schedule(steps)` (kept for callers that name it)."""
    return rf_schedule(steps, 1.0, logsnr_min, logsnr_max)


def linear_schedule(steps: int, sigma_max: float = 1.0) -> torch.Tensor:
    """Evenly spaced times sigma_max -> 0, (steps + 1,) float64: not the reference's grid (see rf_schedule); for
    callers who want it explicitly."""
    _check_steps(steps)
    return torch.linspace(float(sigma_max), 0.0, steps + 1, dtype=torch.float64)


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def _times(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((x.shape[0],), t, device=x.device)  # (B,) float32


def sample_pingpong(model_fn: VelocityFn, x: torch.Tensor, ts: torch.Tensor, *,
                    generator: Generators = None, callback: Callback | None = None) -> torch.Tensor:
    """Ping-pong sampling (Novack et al. 2025, ARC): denoise to x0_hat = x - t v, then re-noise to the next time
    with fresh noise; the last step returns x0_hat."""
    for i in range(len(ts) - 1):
        t = _times(x, float(ts[i]))
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
        t = _times(x, float(ts[i]))
        x = x + (float(ts[i + 1]) - float(ts[i])) * model_fn(x, t)
        if callback is not None:
            callback(i, x)
    return x


def sample_dpmpp(model_fn: VelocityFn, x: torch.Tensor, ts: torch.Tensor, *,
                 generator: Generators = None, callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M) for flows (stable-audio-tools' `sample_flow_dpmpp`), deterministic.

    With lambda = log((1 - t) / t), h = lambda(t_next) - lambda(t) and the denoised estimate d = x - t v:
    x <- (t_next / t) x + (1 - t_next) (1 - e^-h) D, where D = d on the first step, and after it the second-order
    extrapolation D = (1 + 1 / 2r) d - (1 / 2r) d_prev, r = h_prev / h. The last step (t_next = 0) returns d.
    From t = 1 the second step is first-order too (r is infinite), as in the reference. The coefficients are
    computed in float32 in the reference's order, so the steps are its steps bit for bit. `generator` is unused.
    """
    t32 = ts.to(torch.float32)  # (steps + 1,)

    def logsnr(t: torch.Tensor) -> torch.Tensor:
        return ((1 - t) / t).log()  # -inf at t = 1

    previous = None
    for i in range(len(ts) - 1):
        t_now, t_next = t32[i], t32[i + 1]
        t = _times(x, float(t_now))
        denoised = x0_from_velocity(x, t, model_fn(x, t))  # (B, C, T)
        if float(t_next) == 0:
            x = denoised
        else:
            h = logsnr(t_next) - logsnr(t_now)
            target = denoised
            if previous is not None:
                r = (logsnr(t_now) - logsnr(t32[i - 1])) / h
                target = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
            x = (t_next / t_now) * x - (1 - t_next) * (-h).expm1() * target
        previous = denoised
        if callback is not None:
            callback(i, x)
    return x


SAMPLERS = {"pingpong": sample_pingpong, "euler": sample_euler, "dpmpp": sample_dpmpp}


def cfg_velocity(model, cond, cfg_scale: float = 1.0, *, negative=None,
                 cfg_interval: tuple[float, float] = (0.0, 1.0), cfg_rescale: float = 0.0) -> VelocityFn:
    """Bind conditioning (and classifier-free guidance) into a velocity callable, as stable-audio-tools' DiT does.

    With cfg_scale != 1 and lo <= t <= hi (`cfg_interval`, checked on the batch's first time):
    v = v_uncond + cfg_scale * (v_cond - v_uncond). The unconditional branch is `cond.null()` (cross-attention
    tokens zeroed, the seconds embedding in the global condition kept) or, with a `negative` Conditioning (a
    negative prompt), `cond.with_negative(negative)`: the negative's cross-attention tokens where the zeros
    would be. Outside the interval the step uses v_cond alone. `cfg_rescale` = phi (the reference's `scale_phi`):
    v <- phi * v * std_c(v_cond) / std_c(v) + (1 - phi) * v, the standard deviations taken over channels.
    With cfg_scale == 1 there is no guidance and `negative` has no effect (as in the reference).
    A model with `with_context_cache` (TextToAudioModel) gets its cross-attention keys and values computed here,
    once, instead of at every call.
    """
    lo, hi = check_guidance(cfg_scale, cfg_interval, cfg_rescale)
    cache = getattr(model, "with_context_cache", None) or (lambda c: c)  # cross-attention K/V once per generation
    if cfg_scale == 1.0:
        cond = cache(cond)
        return lambda x, t: model(x, t, cond)
    uncond = cond.null() if negative is None else cond.with_negative(negative)
    both = cache(type(cond).cat([cond, uncond]))
    alone = cache(cond) if (lo, hi) != (0.0, 1.0) else None

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if alone is not None and not lo <= float(t[0]) <= hi:  # the full interval reads no time back: capturable
            return model(x, t, alone)
        v_cond, v_uncond = model(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)  # (B, C, T) each
        v = v_uncond + cfg_scale * (v_cond - v_uncond)
        if cfg_rescale != 0.0:
            v = cfg_rescale * (v * (v_cond.std(dim=1, keepdim=True) / v.std(dim=1, keepdim=True))) \
                + (1 - cfg_rescale) * v
        return v

    return fn


def check_guidance(cfg_scale: float, cfg_interval, cfg_rescale: float) -> tuple[float, float]:
    if not (isinstance(cfg_scale, (int, float)) and math.isfinite(cfg_scale)):
        raise ValueError(f"cfg_scale must be a finite number, got {cfg_scale!r}")
    try:
        lo, hi = (float(v) for v in cfg_interval)
    except (TypeError, ValueError):
        raise ValueError(f"cfg_interval must be two times (lo, hi), got {cfg_interval!r}") from None
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"cfg_interval must satisfy 0 <= lo <= hi <= 1, got {cfg_interval!r}")
    if not (isinstance(cfg_rescale, (int, float)) and 0 <= cfg_rescale <= 1):
        raise ValueError(f"cfg_rescale must be in [0, 1], got {cfg_rescale!r}")
    return lo, hi
