"""The harmonic codec: the partials codec with its peaks grouped into harmonic voices (no learned weights).

The partials codec (partials_autoencoder.py) writes each frame's strongest peaks as 16 free frequencies. A DiT
that generates them has to place every harmonic of a tone on its own within 1 % of n f0; trained for CPU hours it
does not (generated "sawtooth" tones came back with partials at 1.88 and 2.76 f0, read as sines or chords, and
chord thirds landed between major and minor). Here a frame is a few voices, each a fundamental and the levels of
its harmonics, as in a harmonic-plus-noise coder (HILN's harmonic lines, DDSP's harmonic synthesiser): a waveform
is a pattern of levels, a pitch one number, a chord three; the harmonics are exact multiples by construction.

- analysis, per STFT frame: the partials codec's peaks (voices x harmonics of them), then greedily from the lowest
  unassigned peak: it starts a voice, and every unassigned peak within 0.5 + 0.05 n bins of its n-th multiple
  joins it as harmonic n (the louder one's level when two land on one n; above n = harmonics it is dropped, so a
  bright tone's upper harmonics do not start voices of their own). The voice's f0 is the power-weighted mean of
  its members' f / n. Peaks left when every voice is taken are dropped. A silent voice sits at the previous voice's
  f0 (the first at 440 Hz). The noise floor, balance and fine envelope are the partials codec's.
- synthesis: the partials codec's renderer, with voice v's harmonic n as partial slot (v, n) at exactly n f0_v
  (silent at or above Nyquist), so each harmonic is one sinusoid from frame to frame and the harmonics stay
  phase-locked.

Latent channels (each about unit scale): [voice f0 x voices, harmonic levels
((ln |S| - 2) / 3) x voices x harmonics (voice-major), noise levels x noise_bands, balance, block levels x
envelope_blocks]. Shapes: audio (B, 2, L), L a multiple of hop -> latents (B, voices (1 + harmonics) +
noise_bands + 1 + envelope_blocks, L / hop) and back.

The f0 channels (`voice_f0`): "absolute", each voice's log2(f0 / 440 Hz) / 2 (a semitone is 0.042 units, and a
chord's quality is the difference of two channels: a DiT trained for CPU hours placed thirds 1-2 semitones off),
or "interval", voice 1's log2(f0 / 440 Hz) and each later voice's interval above the previous one, s semitones as
sign(s) ln(1 + |s| / 6) 2.5: 0.26 units per semitone around a third, and major vs minor is one channel whatever
the root (0.81 / 1.02 for 3 / 4 semitones), while the wide intervals of noise frames stay within ~7 units.
"""

from __future__ import annotations

import torch

from ..config import AutoencoderConfig
from .partials_autoencoder import (
    AMP_CENTRE,
    AMP_SCALE,
    BALANCE_SCALE,
    FLOOR_MAGNITUDE,
    FREQ_SCALE,
    PartialsDecoder,
    PartialsEncoder,
)

MATCH_BINS, MATCH_BINS_PER_HARMONIC = 0.5, 0.05  # a peak is harmonic n of a voice within 0.5 + 0.05 n bins of n f0
INTERVAL_KNEE, INTERVAL_SCALE = 6.0, 2.5  # "interval" f0 channels: sign(s) ln(1 + |s| / knee) scale, s in semitones
MAX_INTERVAL = 120.0  # semitones; a generated interval is clamped to this before synthesis (10 octaves)
MAX_OCTAVES = 12.0  # |log2(f0 / 440 Hz)| of a generated root is clamped to this


def f0_channels(f0: torch.Tensor, layout: str) -> torch.Tensor:
    """Voice f0s in Hz (..., voices), > 0 -> their latent channels (..., voices) (module docstring)."""
    octaves = torch.log2(f0 / 440.0)  # (..., V)
    if layout == "absolute":
        return octaves / FREQ_SCALE
    semitones = 12.0 * (octaves[..., 1:] - octaves[..., :-1])  # (..., V - 1) above the previous voice
    intervals = torch.sign(semitones) * torch.log1p(semitones.abs() / INTERVAL_KNEE) * INTERVAL_SCALE
    return torch.cat([octaves[..., :1], intervals], -1)


def f0_from_channels(channels: torch.Tensor, layout: str) -> torch.Tensor:
    """The inverse of `f0_channels`: latent channels (..., voices) -> f0 in Hz (..., voices), with generated values
    clamped to MAX_OCTAVES / MAX_INTERVAL so that no frequency overflows."""
    if layout == "absolute":
        return 440.0 * 2 ** (FREQ_SCALE * channels)
    root = channels[..., :1].clamp(-MAX_OCTAVES, MAX_OCTAVES)  # (..., 1) octaves
    intervals = channels[..., 1:]
    semitones = torch.sign(intervals) * INTERVAL_KNEE * torch.expm1(intervals.abs() / INTERVAL_SCALE)
    octaves = root + torch.cumsum(semitones.clamp(-MAX_INTERVAL, MAX_INTERVAL) / 12.0, -1)  # (..., V - 1)
    return 440.0 * 2 ** torch.cat([root, octaves], -1)


def harmonic_layout(config: AutoencoderConfig) -> dict[str, slice]:
    """Which latent channels hold what."""
    v, h, b, e = config.voices, config.harmonics, config.noise_bands, config.envelope_blocks
    levels = v + v * h
    return {"f0": slice(0, v), "harmonics": slice(v, levels), "noise": slice(levels, levels + b),
            "balance": slice(levels + b, levels + b + 1), "envelope": slice(levels + b + 1, levels + b + 1 + e)}


def group_voices(frequency: torch.Tensor, magnitude: torch.Tensor, voices: int, harmonics: int,
                 silent_f0: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Peaks (frequencies in bins (..., K) in ascending order, |S| (..., K), 0 for an unused slot) -> (voice f0 in
    bins (..., voices), harmonic |S| (..., voices, harmonics), 0 where absent). Greedy from the lowest unassigned
    peak (module docstring); a silent voice's f0 is the previous voice's (the first's: `silent_f0`)."""
    free = magnitude > 0
    previous = torch.full(frequency.shape[:-1], silent_f0, device=frequency.device, dtype=frequency.dtype)
    f0s, levels = [], []
    for _ in range(voices):
        sounding = free.any(-1)  # (...)
        lowest = torch.where(free, frequency, torch.full_like(frequency, float("inf"))).amin(-1)  # (...)
        base = torch.where(sounding, lowest, torch.ones_like(lowest))
        n = torch.round(frequency / base[..., None]).clamp_min(1)  # (..., K) nearest harmonic number
        on_series = free & sounding[..., None] & ((frequency - n * base[..., None]).abs()
                                                  <= MATCH_BINS + MATCH_BINS_PER_HARMONIC * n)
        joins = on_series & (n <= harmonics)  # kept as its levels; higher harmonics are dropped, not new voices
        weight = torch.where(joins, magnitude.pow(2), torch.zeros_like(magnitude))
        f0 = (weight * frequency / n).sum(-1) / weight.sum(-1).clamp_min(1e-30)
        f0 = torch.where(sounding, f0, previous)
        level = torch.zeros(*frequency.shape[:-1], harmonics, device=frequency.device, dtype=frequency.dtype)
        slot = (n.clamp(max=harmonics) - 1).long()
        level = level.scatter_reduce(-1, slot, torch.where(joins, magnitude, torch.zeros_like(magnitude)),
                                     reduce="amax")
        f0s.append(f0)
        levels.append(level)
        free = free & ~on_series
        previous = f0
    return torch.stack(f0s, -1), torch.stack(levels, -2)


class HarmonicEncoder(PartialsEncoder):
    """audio (B, 2, L) -> (B, 2 * latent_dim, L / hop): the parameters (module docstring) | a tiny posterior scale."""

    def peak_channels(self, mid: torch.Tensor) -> list[torch.Tensor]:
        c = self.config
        frequency, magnitude = self._partials(mid, count=c.voices * c.harmonics)  # (B, F, K) each
        silent = 440.0 * c.n_fft / self.sample_rate
        f0, levels = group_voices(frequency, magnitude, c.voices, c.harmonics, silent)  # (B, F, V), (B, F, V, H)
        f0_hz = f0 * self.sample_rate / c.n_fft
        return [f0_channels(f0_hz, c.voice_f0), self.magnitude_channel(levels.flatten(-2))]


class HarmonicDecoder(PartialsDecoder):
    """latents (B, latent_dim, F) -> audio (B, 2, F * hop)."""

    @property
    def layout(self) -> dict[str, slice]:
        return harmonic_layout(self.config)

    def synthesis_parameters(self, latents: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """latents (B, D, F) -> (partial frequencies in bins (B, F, voices x harmonics): n f0 of each voice, their
        |S| (0: silent, or at / above Nyquist), noise band |S| (B, F, bands), balance dB (B, F))."""
        c, layout = self.config, self.layout
        x = latents.float()
        f0 = f0_from_channels(x[:, layout["f0"]].transpose(1, 2), c.voice_f0) * c.n_fft / self.sample_rate  # (B, F, V)
        numbers = torch.arange(1, c.harmonics + 1, device=x.device, dtype=x.dtype)
        frequency = (f0[..., None] * numbers).flatten(-2)  # (B, F, V * H) bins
        magnitude = torch.exp(AMP_SCALE * x[:, layout["harmonics"]] + AMP_CENTRE).transpose(1, 2)  # (B, F, V * H)
        audible = (magnitude > 1.001 * FLOOR_MAGNITUDE) & (frequency < c.n_fft // 2)
        magnitude = torch.where(audible, magnitude, torch.zeros_like(magnitude))
        return frequency, magnitude, self.noise_levels(x), BALANCE_SCALE * x[:, layout["balance"]][:, 0]
