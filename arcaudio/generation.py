"""Text -> audio with a loaded TextToAudioModel: condition, sample latents, decode, crop to the asked length."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from .models.text_to_audio import Conditioning, TextToAudioModel
from .sampling import SAMPLERS, Callback, batch_randn, cfg_velocity, check_guidance, rf_schedule

DEFAULTS = {  # objective -> (sampler, steps, cfg_scale)
    "rf_denoiser": ("pingpong", 8, 1.0),
    "rectified_flow": ("euler", 50, 6.0),
}


INIT_POSTERIORS = ("mean", "sample")


class SamplingSettings(NamedTuple):
    sampler: str
    sample_fn: Callable
    steps: int
    cfg_scale: float

    def schedule(self, sigma_max: float = 1.0) -> torch.Tensor:
        """The sampler's times, (steps + 1,) from sigma_max down to 0 (`rf_schedule`, the reference's grid)."""
        return rf_schedule(self.steps, sigma_max)


def sampling_settings(objective: str, sampler: str | None = None, steps: int | None = None,
                      cfg_scale: float | None = None) -> SamplingSettings:
    """The sampler, steps and CFG scale asked for, each defaulting to the objective's (`DEFAULTS`)."""
    default_sampler, default_steps, default_cfg = DEFAULTS[objective]
    sampler = sampler or default_sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
    steps = default_steps if steps is None else steps
    cfg_scale = default_cfg if cfg_scale is None else float(cfg_scale)
    return SamplingSettings(sampler, SAMPLERS[sampler], steps, cfg_scale)


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
    from .data.audio import read_audio

    audio, sample_rate = read_audio(path)  # (C, L)
    return prepare_init_audio(audio, sample_rate, model)


def prepare_init_audio(audio: torch.Tensor, sample_rate: int, model: TextToAudioModel) -> torch.Tensor:
    """Decoded audio (C, L) at `sample_rate` -> (channels, L') float32 at the model's rate and channel count."""
    from .data.audio import resample, to_channels

    return to_channels(resample(audio, sample_rate, model.config.sample_rate), model.config.autoencoder.io_channels)


def _check_init_clip(config, i: int, clip: torch.Tensor) -> None:
    if clip.ndim != 2 or clip.shape[0] != config.autoencoder.io_channels or clip.shape[1] == 0:
        raise ValueError(f"init audio {i} must be ({config.autoencoder.io_channels}, samples) with samples > 0 at "
                         f"{config.sample_rate} Hz, got shape {tuple(clip.shape)}")


@torch.no_grad()
def encode_init_audio(model: TextToAudioModel, audio: Sequence[torch.Tensor], posterior: str = "mean",
                      generator=None) -> torch.Tensor:
    """Clips (C, L_i) -> their latents (B, latent_dim, latent_length): each clip cropped or zero-padded to the
    model's window, so the output keeps the input's timing frame for frame. `posterior`: "mean" (the posterior
    mean) or "sample" (mean + std * noise, as stable-audio-tools encodes init audio; the noise from `generator`,
    one torch.Generator or one per clip, see sampling.batch_randn)."""
    if posterior not in INIT_POSTERIORS:
        raise ValueError(f"posterior must be one of {list(INIT_POSTERIORS)}, got {posterior!r}")
    config = model.config
    window = config.latent_length * config.autoencoder.downsampling_ratio
    batch = []
    for i, clip in enumerate(audio):
        _check_init_clip(config, i, clip)
        clip = clip[:, :window].float()
        batch.append(torch.nn.functional.pad(clip, (0, window - clip.shape[1])))
    audio_batch = torch.stack(batch).to(model.device)  # (B, C, window)
    if posterior == "mean":
        return model.autoencoder.encode(audio_batch, sample=False)  # (B, latent_dim, latent_length)
    mean, std = model.autoencoder.encode_moments(audio_batch)  # (B, latent_dim, latent_length) each
    noise = batch_randn(mean.shape, generator, mean.device, mean.dtype)
    return (mean + std * noise) / model.autoencoder.config.latent_scale


@torch.no_grad()
def generate(model: TextToAudioModel, prompts: Sequence[str] | str, seconds: float | None = None,
             steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None, seed: int = 0,
             callback: Callback | None = None, init_audio: torch.Tensor | Sequence[torch.Tensor] | None = None,
             strength: float = 1.0, batch_size: int | None = None, decode_chunk: int | None = None,
             negative_prompt: str | Sequence[str] | None = None, cfg_interval: tuple[float, float] = (0.0, 1.0),
             cfg_rescale: float = 0.0, init_posterior: str = "mean",
             loras: Sequence[str | Path | tuple[str | Path, float]] | None = None) -> list[torch.Tensor]:
    """Generate one clip per prompt.

    Defaults follow the model's objective: ping-pong, 8 steps, no CFG for post-trained (`rf_denoiser`) models;
    Euler, 50 steps, CFG 6 for pre-trained flows. Every sampler (`pingpong`, `euler`, `dpmpp`) runs on the
    reference's log-SNR time grid (sampling.rf_schedule). `seconds` defaults to the model's full window. Clip i
    draws its noise from seed `seed + i` alone, so it is the same whichever prompts share its batch, and whatever
    `batch_size` (prompts per forward pass; default: all at once).

    Guidance (with cfg_scale != 1): `negative_prompt` (one for all prompts, or one each) takes the place of the
    empty prompt in the unconditional branch; `cfg_interval` (lo, hi) applies CFG only at times lo <= t <= hi;
    `cfg_rescale` in [0, 1] is CFG rescale (stable-audio-tools' `scale_phi`). See sampling.cfg_velocity.

    Audio-to-audio (style transfer, voice-to-sound): `init_audio` is one (channels, L) clip at the model's rate for
    every prompt, or one per prompt (see `load_init_audio`). Sampling then starts at time `strength` in (0, 1] from
    (1 - strength) * latents(init) + strength * noise, on the reference's grid respaced from that time (the
    log-SNR of t = strength up to 2): lower strengths stay closer to the input (below 0.119 the reference's grid
    re-noises up to t = 0.119 before its last step), at 1 the input is ignored (plain text-to-audio, bit for bit).
    `init_posterior`: the input's latents are the encoder's posterior "mean" (default: deterministic, one draw
    fewer) or a posterior "sample" (stable-audio-tools' behaviour).
    Prompts longer than the text encoder takes are truncated, with a UserWarning naming them.

    `loras`: LoRA adapter files (or (file, scale) pairs) merged into the DiT for this call only (nn/lora.py
    `adapters_applied`: the weights are restored exactly afterwards; for many calls apply them once with
    `apply_adapter`).
    `callback(i, x)` is called after every sampling step of every batch. `decode_chunk`: decode that many latent
    frames at a time, for less memory (AudioAutoencoder.decode).
    Returns a list of (channels, round(seconds * sample_rate)) float tensors on the model's device.
    """
    if loras:
        from .nn.lora import adapters_applied

        pairs = [spec if isinstance(spec, tuple) else (spec, 1.0) for spec in loras]
        with adapters_applied(model, pairs):
            return generate(model, prompts, seconds, steps, sampler, cfg_scale, seed, callback, init_audio, strength,
                            batch_size, decode_chunk, negative_prompt, cfg_interval, cfg_rescale, init_posterior)
    prompts = _check_prompts(prompts, "prompts")
    sampling_settings(model.config.objective, sampler, steps, cfg_scale)  # bad settings fail before any work
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if negative_prompt is not None:
        negatives = _check_prompts(negative_prompt, "negative_prompt")
        if len(negatives) not in (1, len(prompts)):
            raise ValueError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts; give one for all, "
                             "or one per prompt")
        negative_prompt = negatives * len(prompts) if len(negatives) == 1 else negatives
        if sampling_settings(model.config.objective, sampler, steps, cfg_scale).cfg_scale == 1.0:
            warnings.warn("negative_prompt has no effect without guidance (cfg_scale 1); set cfg_scale to use it",
                          UserWarning, stacklevel=3)
    if init_audio is not None:
        if isinstance(init_audio, torch.Tensor):
            init_audio = [init_audio] * len(prompts)
        if len(init_audio) != len(prompts):
            raise ValueError(f"got {len(init_audio)} init audio clips for {len(prompts)} prompts; give one for all, "
                             "or one per prompt")
    seconds = resolve_seconds(model.config, seconds)
    _warn_truncated(model, prompts)
    batch_size = batch_size or len(prompts)
    clips: list[torch.Tensor] = []
    for start in range(0, len(prompts), batch_size):
        chunk = slice(start, min(start + batch_size, len(prompts)))
        conditioning = _condition(model, prompts[chunk], seconds,
                                  None if negative_prompt is None else negative_prompt[chunk])
        latents = sample(model, conditioning, seed + start, steps, sampler, cfg_scale, cfg_interval, cfg_rescale,
                         None if init_audio is None else init_audio[chunk], strength, init_posterior, callback)
        clips += decode(model, latents, conditioning.seconds, decode_chunk)
    return clips


def _check_prompts(prompts: Sequence[str] | str, name: str) -> list[str]:
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError(f"no {name} given")
    for p in prompts:
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"{name} must be non-empty strings, got {p!r}")
    return prompts


class GenerationCancelled(Exception):
    """Raised by a sampling callback to stop a generation between steps (the server's cancel)."""


@dataclass
class PromptConditioning:
    """Stage 1 of generation: B prompts at one length, through the text encoder and the seconds conditioner once.
    Reusable: sampling it again with other seeds, steps, sampler or guidance skips the text encoder.
    `cond` / `negative`: Conditioning with batch B; `negative` is the negative prompts' (None: the empty prompt)."""

    prompts: list[str]
    seconds: float
    cond: Conditioning
    negative: Conditioning | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def repeat(self, n: int) -> PromptConditioning:
        """Each prompt n times in a row (B * n items): n variations of every prompt in one forward pass."""
        return self.select(torch.arange(len(self)).repeat_interleave(n).tolist())

    def select(self, index: Sequence[int]) -> PromptConditioning:
        """Items `index` (repeats allowed), in that order: one encoding of each distinct prompt, any batch."""
        rows = torch.as_tensor(list(index), dtype=torch.long)  # (B',)
        return PromptConditioning([self.prompts[i] for i in rows.tolist()], self.seconds, _take(self.cond, rows),
                                  None if self.negative is None else _take(self.negative, rows))


def _take(cond: Conditioning, index: torch.Tensor) -> Conditioning:
    index = index.to(cond.cross_attn_cond.device)
    return Conditioning(cond.cross_attn_cond[index], cond.global_cond[index], cond.prompt_mask[index],
                        cond.global_prompt_from)


@torch.no_grad()
def condition(model: TextToAudioModel, prompts: Sequence[str] | str, seconds: float | None = None,
              negative_prompt: str | Sequence[str] | None = None) -> PromptConditioning:
    """Stage 1: encode prompts (and negative prompts: one for all, or one each) for clips of `seconds` (default:
    the model's window). Prompts longer than the text encoder takes are truncated, with a UserWarning naming them."""
    prompts = _check_prompts(prompts, "prompts")
    seconds = resolve_seconds(model.config, seconds)
    negatives = None
    if negative_prompt is not None:
        negatives = _check_prompts(negative_prompt, "negative_prompt")
        if len(negatives) == 1:
            negatives = negatives * len(prompts)
        if len(negatives) != len(prompts):
            raise ValueError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts; give one for all, "
                             "or one per prompt")
    _warn_truncated(model, prompts)
    return _condition(model, prompts, seconds, negatives)


def _condition(model: TextToAudioModel, prompts: list[str], seconds: float,
               negatives: list[str] | None) -> PromptConditioning:
    return PromptConditioning(prompts, seconds, model.condition(prompts, seconds),
                              None if negatives is None else model.condition(negatives, seconds))


def _warn_truncated(model: TextToAudioModel, prompts: list[str]) -> None:
    for i, n, limit in truncated_prompts(model, prompts):
        warnings.warn(f"prompt {i} ({prompts[i][:40]!r}...) has {n} tokens; the text encoder takes {limit}, so it "
                      f"was truncated", UserWarning, stacklevel=4)  # past condition/generate and no_grad


@torch.no_grad()
def sample(model: TextToAudioModel, conditioning: PromptConditioning, seeds: Sequence[int] | int = 0,
           steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None,
           cfg_interval: tuple[float, float] = (0.0, 1.0), cfg_rescale: float = 0.0,
           init_audio: Sequence[torch.Tensor] | None = None, strength: float = 1.0, init_posterior: str = "mean",
           callback: Callback | None = None) -> torch.Tensor:
    """Stage 2: latents (B, C, T) for B = len(conditioning). Item i draws its noise from seed `seeds[i]` alone (an
    int: seeds + i), so it is the same whichever items share its batch. `callback(i, x)` runs after every step and
    may raise GenerationCancelled to stop. `init_audio` (one (C, L) clip per item) with `strength` < 1:
    audio-to-audio (see `generate`)."""
    config = model.config
    settings = sampling_settings(config.objective, sampler, steps, cfg_scale)
    check_guidance(settings.cfg_scale, cfg_interval, cfg_rescale)
    b = len(conditioning)
    seeds = [seeds + i for i in range(b)] if isinstance(seeds, int) else list(seeds)
    if len(seeds) != b:
        raise ValueError(f"got {len(seeds)} seeds for {b} clips; give one seed (item i uses seed + i) or one each")
    if init_posterior not in INIT_POSTERIORS:
        raise ValueError(f"init_posterior must be one of {list(INIT_POSTERIORS)}, got {init_posterior!r}")
    if init_audio is not None:
        if not (isinstance(strength, (int, float)) and 0 < strength <= 1):
            raise ValueError(f"strength must be in (0, 1], got {strength!r}")
        if len(init_audio) != b:
            raise ValueError(f"got {len(init_audio)} init audio clips for {b} prompts; give one per prompt")
        for i, clip in enumerate(init_audio):
            _check_init_clip(config, i, clip)
        if strength >= 1:
            init_audio = None  # 1: the input is unused (plain text-to-audio, bit for bit)
    device, dtype = model.device, model.dit.preprocess_conv.weight.dtype
    generators = [torch.Generator(device="cpu").manual_seed(int(seed)) for seed in seeds]
    x = batch_randn((b, config.dit.io_channels, config.latent_length), generators, device, dtype)  # (B, C, T), t=1
    ts = settings.schedule()  # (steps + 1,) from 1 down to 0
    if init_audio is not None:  # noise, then the input's latents (with their posterior draw): the reference's order
        init_latents = encode_init_audio(model, init_audio, init_posterior, generators)  # (B, C, T)
        ts = settings.schedule(strength)  # the grid respaced from t = strength
        x = init_latents.to(dtype) * (1 - strength) + x * strength  # (1 - s) z + s noise, as the reference has it
    model_fn = cfg_velocity(model, conditioning.cond, settings.cfg_scale, negative=conditioning.negative,
                            cfg_interval=cfg_interval, cfg_rescale=cfg_rescale)
    return settings.sample_fn(model_fn, x, ts, generator=generators, callback=callback)  # (B, C, T)


@torch.no_grad()
def decode(model: TextToAudioModel, latents: torch.Tensor, seconds: float | None = None,
           decode_chunk: int | None = None) -> list[torch.Tensor]:
    """Stage 3: latents (B, C, T) -> B clips (channels, round(seconds * sample_rate)) float32 on the model's device.

    Raises:
        FloatingPointError: when a clip is not finite (NaN or inf), naming it: nothing is written or sent.
    """
    config = model.config
    seconds = resolve_seconds(config, seconds)
    audio = model.autoencoder.decode(latents, chunk_frames=decode_chunk).float()  # (B, channels, sample_size)
    length = round(seconds * config.sample_rate)
    clips = [clip[:, :length] for clip in audio]
    bad = [i for i, clip in enumerate(clips) if not torch.isfinite(clip).all()]
    if bad:
        raise FloatingPointError(f"generated audio of clip(s) {bad} is not finite (NaN or inf); check the model's "
                                 "weights and the sampling settings")
    return clips
