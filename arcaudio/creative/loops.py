"""Beat-aligned loops: a length of whole bars (or beats) at a tempo, the tempo said in the prompt the way the model
was trained to read it, an optional rhythmic guide (a click or percussion track at that tempo, or a user's file)
used as init audio at a strength, and a seamless loop (the loop point on a bar line, a short crossfade).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from ..generation import condition, decode, prepare_init_audio, sample
from ..models.text_to_audio import TextToAudioModel

CROSSFADE_S = 0.01  # the seam: the audio after the last bar line fades over the first 10 ms
# generated past the loop point: a model fades out towards the end of the length it was asked for (its training
# clips do), so the loop point and the crossfade must lie before that fade
TAIL_S = 0.12
# from a drum guide, the strength that kept the grid best on the built-in model (scripts/creative_report.py: 0.2 put
# 52-78 % of onsets on the eighth-note grid and read the tempo right at 80-140 bpm; from 0.5 up the guide's rhythm
# was lost); a model that draws drums well can take more
GUIDE_STRENGTH = 0.2
GUIDES = ("click", "drums")
_BPM_WORDS = re.compile(r"\b\d{2,3}\s*(bpm|beats per minute)\b", re.IGNORECASE)


def loop_seconds(bpm: float, bars: float | None = None, beats: float | None = None, beats_per_bar: int = 4) -> float:
    """The length of `bars` bars (or `beats` beats) at `bpm`. Exactly one of bars / beats."""
    if not (isinstance(bpm, (int, float)) and math.isfinite(bpm) and 20 <= bpm <= 400):
        raise ValueError(f"bpm must be a tempo in [20, 400], got {bpm!r}")
    if (bars is None) == (beats is None):
        raise ValueError(f"give bars or beats (one of them), got bars={bars!r}, beats={beats!r}")
    count = beats if beats is not None else bars * beats_per_bar
    if not (math.isfinite(count) and count > 0 and float(count).is_integer()):
        raise ValueError(f"a loop is a whole number of beats, got {count!r} beats")
    return count * 60.0 / bpm


def tempo_prompt(prompt: str, bpm: float) -> str:
    """The prompt with the tempo said as the model's captions say it ("..., 120 bpm"), unless it says one."""
    if _BPM_WORDS.search(prompt):
        return prompt
    return f"{prompt.rstrip(' ,.')}, {round(bpm)} bpm"


def guide_track(kind: str, bpm: float, seconds: float, sample_rate: int, channels: int = 2,
                seed: int = 0) -> torch.Tensor:
    """A rhythmic guide at `bpm`, (channels, round(seconds * sample_rate)), peak 0.5: `click` (a short noise burst
    on every eighth, louder on the beats) or `drums` (a low kick on beats 1 and 3, a snare on 2 and 4, a hi-hat on
    every eighth). Every hit starts exactly on the grid, from t = 0."""
    if kind not in GUIDES:
        raise ValueError(f"guide must be one of {list(GUIDES)} or an audio file, got {kind!r}")
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    out = np.zeros(n)
    eighth = 30.0 / bpm

    def hit(at: int, sound: np.ndarray, gain: float) -> None:
        length = min(sound.size, n - at)
        out[at:at + length] += gain * sound[:length]

    t = np.arange(round(0.25 * sample_rate)) / sample_rate
    tick = rng.standard_normal(t.size) * np.exp(-t / 0.004)
    kick = np.sin(2 * np.pi * np.cumsum(50 + 90 * np.exp(-t / 0.03)) / sample_rate) * np.exp(-t / 0.12)
    snare = 0.6 * np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.05) + 0.4 * np.sin(2 * np.pi * 200 * t) * \
        np.exp(-t / 0.04)
    hat = np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.02)
    for e in range(math.ceil(seconds / eighth)):
        at = round(e * eighth * sample_rate)
        if kind == "click":
            hit(at, tick, 1.0 if e % 2 == 0 else 0.5)
        else:
            hit(at, hat, 0.25 if e % 2 == 0 else 0.15)
            if e % 8 in (0, 4):
                hit(at, kick, 1.0)
            if e % 8 in (2, 6):
                hit(at, snare, 0.7)
    out *= 0.5 / max(float(np.abs(out).max()), 1e-9)
    return torch.from_numpy(np.repeat(out[None], channels, axis=0).astype(np.float32))


def seamless_loop(audio: torch.Tensor, loop_samples: int, crossfade_samples: int) -> torch.Tensor:
    """(C, L) audio, L >= loop_samples + crossfade_samples -> (C, loop_samples): the audio past the loop point (a
    bar line) cross-faded (equal power) over the loop's start, so that played end to start it continues as the
    generated audio continued: no step, no click."""
    if audio.shape[-1] < loop_samples + crossfade_samples:
        raise ValueError(f"need {loop_samples + crossfade_samples} samples for a {loop_samples}-sample loop with a "
                         f"{crossfade_samples}-sample crossfade, got {audio.shape[-1]}")
    out = audio[..., :loop_samples].clone()
    if crossfade_samples:
        ramp = torch.linspace(0.0, 1.0, crossfade_samples, dtype=audio.dtype, device=audio.device)  # (X,)
        fade_in, fade_out = torch.sin(ramp * math.pi / 2), torch.cos(ramp * math.pi / 2)
        tail = audio[..., loop_samples:loop_samples + crossfade_samples]  # what followed the loop point
        out[..., :crossfade_samples] = out[..., :crossfade_samples] * fade_in + tail * fade_out
    return out


@dataclass
class Loop:
    audio: torch.Tensor  # (channels, samples): one loop, ready to repeat
    seconds: float
    bpm: float
    prompt: str  # the prompt as sent to the model (tempo words added)
    guide: str | None
    strength: float


@torch.no_grad()
def generate_loop(model: TextToAudioModel, prompt: str, bpm: float, bars: float | None = None,
                  beats: float | None = None, seed: int = 0, steps: int | None = None, guide: str | None = None,
                  guide_audio: torch.Tensor | None = None, strength: float = GUIDE_STRENGTH, beats_per_bar: int = 4,
                  crossfade_s: float = CROSSFADE_S) -> Loop:
    """A loop of `bars` bars (or `beats` beats) at `bpm`: generated TAIL_S longer than the loop (past the fade a
    model puts at the end of what it generates) and closed with `seamless_loop` over `crossfade_s`. With `guide`
    ("click", "drums") or `guide_audio` ((channels, L) at the model's rate, e.g. `generation.load_init_audio`),
    sampling starts from the guide at `strength` (audio-to-audio): lower strengths keep more of its rhythm.

    Raises:
        ValueError: for a bad tempo or length, one longer than the model's window (naming the longest that fits),
            or a bad guide.
    """
    config = model.config
    seconds = loop_seconds(bpm, bars, beats, beats_per_bar)
    beat = 60.0 / bpm
    tail = max(TAIL_S, crossfade_s)
    if seconds + tail > config.max_seconds:
        fits = math.floor((config.max_seconds - tail) / beat)
        raise ValueError(f"{seconds:.2f} s ({seconds / beat:g} beats at {bpm:g} bpm) plus {tail * 1000:.0f} ms "
                         f"generated past the loop point exceeds this model's {config.max_seconds:.2f} s window; at "
                         f"most {fits} beats fit at {bpm:g} bpm")
    if guide is not None and guide_audio is not None:
        raise ValueError("give guide (a built-in guide's name) or guide_audio (your own), not both")
    total = seconds + tail
    init = None
    if guide is not None:
        init = guide_track(guide, bpm, total, config.sample_rate, config.autoencoder.io_channels, seed)
    elif guide_audio is not None:
        if guide_audio.ndim != 2 or guide_audio.shape[-1] == 0:
            raise ValueError(f"guide_audio must be (channels, samples), got shape {tuple(guide_audio.shape)}")
        init = prepare_init_audio(guide_audio, config.sample_rate, model)
    said = tempo_prompt(prompt, bpm)
    encoded = condition(model, [said], total)
    latents = sample(model, encoded, seeds=seed, steps=steps, init_audio=None if init is None else [init],
                     strength=strength if init is not None else 1.0)
    (clip,) = decode(model, latents, total)  # (C, total samples)
    loop_samples = round(seconds * config.sample_rate)
    audio = seamless_loop(clip, loop_samples, round(crossfade_s * config.sample_rate))
    return Loop(audio, seconds, float(bpm), said, guide or ("file" if guide_audio is not None else None),
                strength if init is not None else 1.0)
