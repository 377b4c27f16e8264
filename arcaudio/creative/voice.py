"""Voice-to-audio and style transfer: a recording (a voice: beatbox, humming, a shouted rhythm; or a loop) as init
audio, so the output keeps its timing and loudness contour while the prompt names the sound.

Pre-processing of a voice before it is encoded, each switchable (what they buy is measured by
scripts/creative_report.py and summarised in the README):
- normalise: peak to -1 dBFS (quiet phone recordings otherwise encode to near-silent latents);
- high-pass: below `highpass_hz` removed (breath pops and handling rumble are onsets the output would copy);
- onset emphasis: a transient shaper (fast over slow envelope) that boosts attacks, so the rhythm survives the
  noise added at higher strengths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..generation import condition, decode, prepare_init_audio, sample
from ..models.text_to_audio import TextToAudioModel

# measured on the built-in model (scripts/creative_report.py, synthesised voices): the voice's loudness contour
# carries into the output with correlation ~0.5 at strength 0.3, ~0.3 at 0.5, ~0 at 0.9, while the output's kind
# follows the prompt more often at 0.5-0.7; 0.5 is the middle of that trade-off
VOICE_STRENGTH = 0.5


@dataclass(frozen=True)
class VoicePrep:
    normalise: bool = True
    highpass_hz: float = 80.0  # 0: off
    onset_emphasis: float = 0.0  # 0: off; 1: attacks up to ~2x louder


def highpass(audio: np.ndarray, sample_rate: float, cutoff_hz: float) -> np.ndarray:
    """Zero-phase high-pass in the frequency domain: bins below cutoff / 2 removed, a raised-cosine ramp up to the
    cutoff. (C, L) -> (C, L)."""
    if cutoff_hz <= 0:
        return audio
    n = audio.shape[-1]
    freq = np.fft.rfftfreq(n, 1.0 / sample_rate)
    ramp = np.clip((freq - cutoff_hz / 2) / (cutoff_hz / 2), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return np.fft.irfft(np.fft.rfft(audio, axis=-1) * gain, n, axis=-1)


def _follow(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    """Peak envelope follower over |x| (L,) with one-pole attack / release coefficients."""
    out = np.empty_like(x)
    level = 0.0
    for i, v in enumerate(x):
        coefficient = attack if v > level else release
        level = coefficient * level + (1 - coefficient) * v
        out[i] = level
    return out


def emphasise_onsets(audio: np.ndarray, sample_rate: float, amount: float) -> np.ndarray:
    """A transient shaper: gain 1 + amount * (fast / slow envelope - 1)+, the envelopes followed on a 1 kHz
    decimation of |x| (1 ms / 30 ms attack). (C, L) -> (C, L)."""
    if amount <= 0:
        return audio
    step = max(1, int(sample_rate // 1000))
    mono = np.abs(audio).mean(axis=0)
    blocks = mono[: mono.size // step * step].reshape(-1, step).max(axis=1) if mono.size >= step else mono[:1]
    fast = _follow(blocks, np.exp(-1 / 1.0), np.exp(-1 / 20.0))
    slow = _follow(blocks, np.exp(-1 / 30.0), np.exp(-1 / 60.0))
    gain_blocks = 1 + amount * np.clip(fast / (slow + 1e-6) - 1, 0.0, 1.0)
    gain = np.interp(np.arange(audio.shape[-1]), np.arange(gain_blocks.size) * step, gain_blocks)
    return audio * gain


def prepare_voice(audio: torch.Tensor, sample_rate: int, prep: VoicePrep = VoicePrep()) -> torch.Tensor:
    """(C, L) recording -> (C, L) float32, high-passed, onset-emphasised and normalised as `prep` says."""
    x = audio.detach().cpu().double().numpy()
    x = highpass(x, sample_rate, prep.highpass_hz)
    x = emphasise_onsets(x, sample_rate, prep.onset_emphasis)
    if prep.normalise:
        peak = float(np.abs(x).max())
        if peak > 1e-6:
            x = x * (10 ** (-1 / 20) / peak)
    return torch.from_numpy(x.astype(np.float32))


@torch.no_grad()
def voice_to_audio(model: TextToAudioModel, voice: torch.Tensor, sample_rate: int, prompt: str,
                   strength: float = VOICE_STRENGTH, prep: VoicePrep | None = VoicePrep(), seed: int = 0,
                   steps: int | None = None, variations: int = 1) -> list[torch.Tensor]:
    """The sound the prompt names, following the voice's rhythm and loudness contour: `variations` clips
    (channels, L) of the voice's length (up to the model's window). `prep=None` sends the recording as it is;
    lower strengths keep more of it (style transfer of a loop is the same call with the loop as `voice`)."""
    clip = voice if prep is None else prepare_voice(voice, sample_rate, prep)
    init = prepare_init_audio(clip, sample_rate, model)  # (channels, L) at the model's rate
    seconds = min(init.shape[-1] / model.config.sample_rate, model.config.max_seconds)
    encoded = condition(model, [prompt], seconds).repeat(variations)
    latents = sample(model, encoded, seeds=seed, steps=steps, init_audio=[init] * variations, strength=strength)
    return decode(model, latents, seconds)
