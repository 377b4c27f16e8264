"""Audio file I/O. Audio tensors are (channels, samples) float32 in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import atomic_write

WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


def write_audio(path: str | Path, audio: torch.Tensor, sample_rate: int) -> Path:
    """Atomically write (C, L) audio, clipped to [-1, 1], as 16-bit WAV or FLAC (by suffix)."""
    import soundfile as sf

    path = Path(path)
    if path.suffix.lower() not in WRITE_FORMATS:
        raise ValueError(f"cannot write {path.suffix!r} audio; choose one of {sorted(WRITE_FORMATS)}")
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(audio.shape)}")
    fmt, subtype = WRITE_FORMATS[path.suffix.lower()]
    data = audio.detach().float().clamp(-1, 1).T.cpu().numpy()  # (C, L) -> (L, C)
    return atomic_write(path, lambda tmp: sf.write(tmp, data, sample_rate, subtype=subtype, format=fmt))
