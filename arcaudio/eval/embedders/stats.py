"""A fixed audio embedding that needs no download: log-mel statistics.

`stats_embedding` maps a clip (channels, samples) to a vector of
- the time mean and time standard deviation of the mid channel's log-mel spectrogram (n_mels each),
- the time mean of the side/mid log-energy ratio in 8 coarse bands (stereo width per region; 0 for mono),
- the mean and standard deviation of the frame log-energy, and the mean of its absolute frame-to-frame change.
It is deterministic and cheap, sees level, timbre, pitch region, envelope, rhythm and stereo image, and plays the
role of the paper's OpenL3 / CLAP embeddings for the procedural set's Frechet distance and diversity. It is not a
perceptual model; CLAP (clap.py) is the learned one. `StatsEmbedder` is its registry entry (`stats`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import Embedder


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filters, (n_mels, n_fft // 2 + 1), each peaking at 1."""
    fmax = fmax or sample_rate / 2

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def power_spectrogram(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """|STFT|^2 with a periodic Hann window, frames without padding. x (samples,) -> (n_fft // 2 + 1, frames)."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    starts = range(0, len(x) - n_fft + 1, hop)
    frames = np.stack([x[s:s + n_fft] * window for s in starts], 1)  # (n_fft, frames)
    return np.abs(np.fft.rfft(frames, axis=0)) ** 2


def stats_embedding(clip: np.ndarray, sample_rate: int, n_mels: int = 64, floor: float = 1e-10) -> np.ndarray:
    """clip (channels, samples) float -> embedding (2 * n_mels + 11,) float64."""
    clip = np.asarray(clip, dtype=np.float64)
    if clip.ndim != 2 or clip.shape[0] not in (1, 2):
        raise ValueError(f"clip must be (1 or 2 channels, samples), got shape {clip.shape}")
    mid = clip.mean(0)
    side = 0.5 * (clip[0] - clip[1]) if clip.shape[0] == 2 else np.zeros_like(mid)
    fb = mel_filterbank(sample_rate, 2048, n_mels)  # (M, F)
    mel_mid = fb @ power_spectrogram(mid)  # (M, frames)
    log_mel = np.log10(mel_mid + floor)
    coarse = fb.reshape(8, n_mels // 8, -1).sum(1) if n_mels % 8 == 0 else fb[:: max(1, n_mels // 8)][:8]
    width = np.log10((coarse @ power_spectrogram(side) + floor) / (coarse @ power_spectrogram(mid) + floor))
    energy = np.log10(mel_mid.sum(0) + floor)  # (frames,)
    flux = np.abs(np.diff(energy)).mean() if len(energy) > 1 else 0.0
    return np.concatenate([log_mel.mean(1), log_mel.std(1), width.mean(1), [energy.mean(), energy.std(), flux]])


def embed_clips(clips, sample_rate: int) -> np.ndarray:
    """A list of (channels, samples) clips -> (N, dim) embeddings."""
    return np.stack([stats_embedding(np.asarray(c), sample_rate) for c in clips])


class StatsEmbedder(Embedder):
    """The log-mel statistics embedding as a registry entry: any rate, mono or stereo, no weights."""

    name = "stats"
    sample_rate = None  # works at the clips' own rate
    channels = 2
    standardise = True  # its features (dB levels, widths, flux) are on unlike scales

    def embed(self, clips, sample_rate: int) -> np.ndarray:
        return embed_clips([np.asarray(c.detach().cpu() if hasattr(c, "detach") else c) for c in clips], sample_rate)
