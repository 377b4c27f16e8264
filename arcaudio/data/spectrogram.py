"""Spectrogram pictures of generated audio, written as PNG with no plotting library.

The picture is the channel-averaged STFT power in dB (Hann window), frequency on a log axis from 20 Hz to Nyquist
(low at the bottom), time left to right, through a perceptually ordered dark-to-bright colour map.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_write

# Colour map anchors (black -> purple -> red -> orange -> pale yellow), linearly interpolated.
_ANCHORS = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                    dtype=np.float64)


def spectrogram_db(audio: torch.Tensor, sample_rate: int, n_fft: int = 2048, hop: int = 512, height: int = 256,
                   f_min: float = 20.0) -> np.ndarray:
    """(C, L) audio -> (height, frames) power in dB, rows on a log-frequency axis from `f_min` to Nyquist, row 0
    the highest band. Frames = L // hop + 1 (centred STFT)."""
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise ValueError(f"audio must be (channels, samples) with samples > 0, got shape {tuple(audio.shape)}")
    x = audio.detach().float().cpu()
    if x.shape[-1] < n_fft:  # short clips: pad so that one full window fits
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True)
    power = spec.abs().pow(2).mean(0).numpy()  # (n_fft / 2 + 1, frames), channel average
    freqs = np.linspace(0, sample_rate / 2, power.shape[0])
    edges = np.geomspace(f_min, sample_rate / 2, height + 1)
    centres = np.sqrt(edges[:-1] * edges[1:])
    rows = np.stack([np.interp(centres, freqs, power[:, j]) for j in range(power.shape[1])], axis=1)  # (H, frames)
    return 10 * np.log10(rows[::-1] + 1e-10)


def colourise(db: np.ndarray, dynamic_range: float = 80.0) -> np.ndarray:
    """(H, W) dB -> (H, W, 3) uint8: the top `dynamic_range` dB below the maximum mapped through the colour map."""
    level = np.clip((db - (db.max() - dynamic_range)) / dynamic_range, 0, 1) * (len(_ANCHORS) - 1)
    low = np.minimum(level.astype(int), len(_ANCHORS) - 2)
    frac = (level - low)[..., None]
    return np.round(_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> the bytes of an 8-bit RGB PNG file."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()  # filter 0 rows

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit, truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def spectrogram_png(audio: torch.Tensor, sample_rate: int, height: int = 256) -> bytes:
    """The spectrogram picture of (C, L) audio as PNG bytes."""
    return encode_png(colourise(spectrogram_db(audio, sample_rate, height=height)))


def write_spectrogram(path: str | Path, audio: torch.Tensor, sample_rate: int, height: int = 256) -> Path:
    """Atomically write the spectrogram picture of (C, L) audio to a PNG file; returns its path."""
    png = spectrogram_png(audio, sample_rate, height)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(png))
