"""Text -> audio with a loaded TextToAudioModel: condition, sample latents, decode, crop to the asked length."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from .flow import add_noise
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


def truncated_prompts(model: TextToAudioModel, prompts: Sequence[str]) -> list[tuple[int, int, int]]:
    """(index, token count, max_length) for each prompt longer than the text encoder takes: it will be truncated."""
    limit = model.config.conditioning.prompt.max_length
    counts = model.conditioners["prompt"].token_counts(prompts)
    return [(i, n, limit) for i, n in enumerate(counts) if n > limit]


def load_init_audio(path: str | Path, model: TextToAudioModel) -> torch.Tensor:
    """Read an audio file for audio-to-audio: resampled to the model's rate and converted to its channel count.
    Returns (channels, L) float32. Raises AudioReadError (a ValueError) naming the file and the reason."""
    from .data.audio import read_audio, resample, to_channels

    audio, sample_rate = read_audio(path)  # (C, L)
    return to_channels(resample(audio, sample_rate, model.config.sample_rate), model.config.autoencoder.io_channels)


def _check_init_clip(config, i: int, clip: torch.Tensor) -> None:
    if clip.ndim != 2 or clip.shape[0] != config.autoencoder.io_channels or clip.shape[1] == 0:
        raise ValueError(f"init audio {i} must be ({config.autoencoder.io_channels}, samples) with samples > 0 at "
                         f"{config.sample_rate} Hz, got shape {tuple(clip.shape)}")


@torch.no_grad()
def encode_init_audio(model: TextToAudioModel, audio: Sequence[torch.Tensor]) -> torch.Tensor:
    """Clips (C, L_i) -> the posterior means of their latents (B, latent_dim, latent_length): each clip cropped or
    zero-padded to the model's window, so the output keeps the input's timing frame for frame."""
    config = model.config
    window = config.latent_length * config.autoencoder.downsampling_ratio
    batch = []
    for i, clip in enumerate(audio):
        _check_init_clip(config, i, clip)
        clip = clip[:, :window].float()
        batch.append(torch.nn.functional.pad(clip, (0, window - clip.shape[1])))
    audio_batch = torch.stack(batch).to(model.device)  # (B, C, window)
    return model.autoencoder.encode(audio_batch, sample=False)  # (B, latent_dim, latent_length)


@torch.no_grad()
def generate(model: TextToAudioModel, prompts: Sequence[str] | str, seconds: float | None = None,
             steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None, seed: int = 0,
             callback: Callback | None = None, init_audio: torch.Tensor | Sequence[torch.Tensor] | None = None,
             strength: float = 1.0, batch_size: int | None = None,
             decode_chunk: int | None = None) -> list[torch.Tensor]:
    """Generate one clip per prompt.

    Defaults follow the model's objective: ping-pong, 8 steps, no CFG for post-trained (`rf_denoiser`) models;
    Euler, 50 steps, CFG 6 for pre-trained flows. `seconds` defaults to the model's full window. Clip i draws its
    noise from seed `seed + i` alone, so it is the same whichever prompts share its batch, and whatever
    `batch_size` (prompts per forward pass; default: all at once).

    Audio-to-audio (style transfer, voice-to-sound): `init_audio` is one (channels, L) clip at the model's rate for
    every prompt, or one per prompt (see `load_init_audio`). Sampling then starts at time `strength` in (0, 1] from
    (1 - strength) * latents(init) + strength * noise, on the sampler's schedule scaled by `strength`: near 0 the
    output is the input's reconstruction, at 1 the input is ignored (plain text-to-audio, bit for bit).
    Prompts longer than the text encoder takes are truncated, with a UserWarning naming them.

    `callback(i, x)` is called after every sampling step of every batch. `decode_chunk`: decode that many latent
    frames at a time, for less memory (AudioAutoencoder.decode).
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
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if init_audio is not None:
        if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
            raise ValueError(f"strength must be in (0, 1], got {strength!r}")
        if isinstance(init_audio, torch.Tensor):
            init_audio = [init_audio] * len(prompts)
        if len(init_audio) != len(prompts):
            raise ValueError(f"got {len(init_audio)} init audio clips for {len(prompts)} prompts; give one for all, "
                             "or one per prompt")
        for i, clip in enumerate(init_audio):
            _check_init_clip(config, i, clip)
    for i, n, limit in truncated_prompts(model, prompts):
        warnings.warn(f"prompt {i} ({prompts[i][:40]!r}...) has {n} tokens; the text encoder takes {limit}, so it "
                      f"was truncated", UserWarning, stacklevel=3)  # past the no_grad wrapper

    batch_size = batch_size or len(prompts)
    clips: list[torch.Tensor] = []
    for start in range(0, len(prompts), batch_size):
        chunk = range(start, min(start + batch_size, len(prompts)))
        init = (None if init_audio is None or strength >= 1  # strength 1 ignores the input: nothing to encode
                else encode_init_audio(model, [init_audio[i] for i in chunk]))
        clips += _generate_batch(model, [prompts[i] for i in chunk], seconds, settings, seed + start, callback,
                                 init, float(strength), decode_chunk)
    return clips


def _generate_batch(model: TextToAudioModel, prompts: list[str], seconds: float, settings: SamplingSettings,
                    seed: int, callback: Callback | None, init_latents: torch.Tensor | None,
                    strength: float, decode_chunk: int | None) -> list[torch.Tensor]:
    config = model.config
    device = model.device
    dtype = model.dit.preprocess_conv.weight.dtype
    cond = model.condition(prompts, seconds)
    generators = [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(len(prompts))]
    shape = (len(prompts), config.dit.io_channels, config.latent_length)
    x = batch_randn(shape, generators, device, dtype)  # (B, C, T) at t = 1
    ts = settings.schedule_fn(settings.steps)  # (steps + 1,) from 1 down to 0
    if init_latents is not None and strength < 1:
        ts = ts * strength  # start part-way: the input's latents, noised to time `strength`
        x = add_noise(init_latents.to(dtype), x, torch.full((len(prompts),), strength, device=device, dtype=dtype))
    model_fn = cfg_velocity(model, cond, settings.cfg_scale)
    latents = settings.sample_fn(model_fn, x, ts, generator=generators, callback=callback)  # (B, C, T)
    audio = model.autoencoder.decode(latents, chunk_frames=decode_chunk).float()  # (B, channels, sample_size)
    length = round(seconds * config.sample_rate)
    return [clip[:, :length] for clip in audio]
