"""Text -> audio with a loaded TextToAudioModel: condition, sample latents, decode, crop to the asked length."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from .models.text_to_audio import TextToAudioModel
from .sampling import SAMPLERS, Callback, batch_randn, cfg_velocity

DEFAULTS = {  # objective -> (sampler, steps, cfg_scale)
    "rf_denoiser": ("pingpong", 8, 1.0),
    "rectified_flow": ("euler", 50, 6.0),
}


class SamplingSettings(NamedTuple):
    sampler: str
    sample_fn: Callable
    schedule_fn: Callable
    steps: int
    cfg_scale: float


def sampling_settings(objective: str, sampler: str | None = None, steps: int | None = None,
                      cfg_scale: float | None = None) -> SamplingSettings:
    """The sampler, steps and CFG scale asked for, each defaulting to the objective's (`DEFAULTS`)."""
    default_sampler, default_steps, default_cfg = DEFAULTS[objective]
    sampler = sampler or default_sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
    sample_fn, schedule_fn = SAMPLERS[sampler]
    steps = default_steps if steps is None else steps
    cfg_scale = default_cfg if cfg_scale is None else float(cfg_scale)
    return SamplingSettings(sampler, sample_fn, schedule_fn, steps, cfg_scale)


def resolve_seconds(config, seconds: float | None) -> float:
    """`seconds`, or the model's full window when None; refused outside (0, max_seconds]."""
    seconds = config.max_seconds if seconds is None else float(seconds)
    if not (math.isfinite(seconds) and 0 < seconds <= config.max_seconds):
        raise ValueError(f"seconds must be in (0, {config.max_seconds:.2f}] for this model, got {seconds}")
    return seconds


@torch.no_grad()
def generate(model: TextToAudioModel, prompts: Sequence[str] | str, seconds: float | None = None,
             steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None, seed: int = 0,
             callback: Callback | None = None) -> list[torch.Tensor]:
    """Generate one clip per prompt, all in one batch.

    Defaults follow the model's objective: ping-pong, 8 steps, no CFG for post-trained (`rf_denoiser`) models;
    Euler, 50 steps, CFG 6 for pre-trained flows. `seconds` defaults to the model's full window. Clip i draws its
    noise from seed `seed + i` alone, so it is the same whichever prompts share its batch.
    Returns a list of (channels, round(seconds * sample_rate)) float tensors on the model's device.
    """
    config = model.config
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompts must be non-empty strings, got {p!r}")
    seconds = resolve_seconds(config, seconds)
    settings = sampling_settings(config.objective, sampler, steps, cfg_scale)

    device = model.device
    dtype = model.dit.preprocess_conv.weight.dtype
    cond = model.condition(prompts, seconds)
    generators = [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(len(prompts))]
    shape = (len(prompts), config.dit.io_channels, config.latent_length)
    x = batch_randn(shape, generators, device, dtype)  # (B, C, T) at t = 1
    model_fn = cfg_velocity(model, cond, settings.cfg_scale)
    latents = settings.sample_fn(model_fn, x, settings.schedule_fn(settings.steps), generator=generators,
                                 callback=callback)  # (B, C, T)
    audio = model.autoencoder.decode(latents).float()  # (B, channels, sample_size)
    length = round(seconds * config.sample_rate)
    return [clip[:, :length] for clip in audio]

