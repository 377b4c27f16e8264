"""Audio file I/O and the per-clip transforms of the training data pipeline.

Audio tensors are (channels, samples) float32, nominally in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import atomic_write

WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}
# Suffixes whose codec libsndfile only has when built with it (MP3 since libsndfile 1.1, Ogg/Vorbis/Opus optional).
OPTIONAL_FORMATS = {".mp3": "MP3", ".ogg": "OGG", ".oga": "OGG", ".opus": "OGG"}


class AudioReadError(ValueError):
    """An audio file that cannot be used: unreadable, empty (0 samples) or with non-finite samples."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot use audio file {str(path)!r}: {reason}")


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read a WAV, FLAC, Ogg or MP3 file (anything the installed libsndfile decodes).

    Returns:
        (audio (C, L) float32, sample_rate).

    Raises:
        AudioReadError: for a missing or unreadable file, a format this libsndfile was built without, a file with
            0 samples, or one holding NaN / infinite samples; the message names the path and the reason.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioReadError(path, "no such file")
    fmt = OPTIONAL_FORMATS.get(path.suffix.lower())
    if fmt is not None and fmt not in sf.available_formats():
        raise AudioReadError(path, f"this libsndfile ({sf.__libsndfile_version__}) cannot decode {fmt} "
                                   f"({path.suffix} files); install a libsndfile built with {fmt} support "
                                   "(MP3 needs libsndfile >= 1.1) or convert the file to WAV/FLAC")
    return _decode(str(path), path)


def audio_frames(path: str | Path) -> tuple[int, int] | None:
    """(frames, sample_rate) from the file's header, without decoding it; None when the header does not say (some
    MP3s) or the file is unreadable (read_audio then reports why)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    return (int(info.frames), int(info.samplerate)) if info.frames > 0 else None


def read_audio_window(path: str | Path, start: int, frames: int) -> tuple[torch.Tensor, int]:
    """Frames [start, start + frames) of a file (fewer at its end), decoded alone: the cost follows the window, not
    the file. Returns ((C, n) float32, sample_rate); AudioReadError as read_audio."""
    import soundfile as sf

    path = Path(path)
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(max(0, start))
            data = f.read(max(0, frames), dtype="float32", always_2d=True)  # (n, C)
            rate = f.samplerate
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioReadError(path, f"unreadable ({err})") from err
    if not np.isfinite(data).all():
        raise AudioReadError(path, f"{int((~np.isfinite(data)).sum())} non-finite (NaN or infinite) sample values")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def read_audio_bytes(data: bytes, name: str = "upload") -> tuple[torch.Tensor, int]:
    """`read_audio` for the bytes of an audio file held in memory (an upload: no name of the client's ever
    reaches the filesystem). `name` only labels errors. Raises AudioReadError as read_audio does."""
    import io

    return _decode(io.BytesIO(data), name)


def _decode(source, label: str | Path) -> tuple[torch.Tensor, int]:
    import soundfile as sf

    try:
        data, sample_rate = sf.read(source, dtype="float32", always_2d=True)  # (L, C)
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioReadError(label, f"unreadable ({err})") from err
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioReadError(label, f"empty ({data.shape[0]} samples, {data.shape[1]} channels)")
    if not np.isfinite(data).all():
        raise AudioReadError(label, f"{int((~np.isfinite(data)).sum())} non-finite (NaN or infinite) sample values")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sample_rate)


def resample(audio: torch.Tensor, from_sr: int, to_sr: int) -> torch.Tensor:
    """Resample (C, L) audio with soxr (quality "HQ") to (C, L') with L' = round(L * to_sr / from_sr).

    Returns `audio` itself when the rates are equal. The result is float32 on the input's device (soxr runs on CPU).
    """
    if from_sr <= 0 or to_sr <= 0:
        raise ValueError(f"sample rates must be positive, got from_sr={from_sr}, to_sr={to_sr}")
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(audio.shape)}")
    if from_sr == to_sr:
        return audio
    import soxr

    data = np.ascontiguousarray(audio.detach().float().cpu().numpy().T)  # (L, C)
    out = soxr.resample(data, from_sr, to_sr, quality="HQ")
    return torch.from_numpy(np.ascontiguousarray(out.T)).to(audio.device)


def to_channels(audio: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert (C, L) audio to (channels, L).

    - same count: returned unchanged;
    - to mono: the average of all channels;
    - from mono: the channel duplicated;
    - any other change (e.g. 5.1 -> stereo, stereo -> 4): averaged down to mono, then duplicated. The channel layout
      of a multichannel file is unknown, so no layout-specific downmix (e.g. ITU 5.1 coefficients) is attempted.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(audio.shape)}")
    if audio.shape[0] == channels:
        return audio
    mono = audio if audio.shape[0] == 1 else audio.mean(dim=0, keepdim=True)
    return mono if channels == 1 else mono.expand(channels, -1).contiguous()


def crop_or_pad(audio: torch.Tensor, length: int, offset: int, sample_rate: int) -> tuple[torch.Tensor, float]:
    """Take the window [offset, offset + length) of (C, L) audio, zero-padded at the end where the audio runs out.

    Args:
        audio: (C, L).
        length: window length in samples.
        offset: first sample of the window, in [0, max(0, L - length)]; the caller chooses it (0, or random).
        sample_rate: of `audio`, to express `seconds_total` in seconds.

    Returns:
        (window (C, length), seconds_total): seconds_total is the duration of real (non-padded) audio in the
        window, min(L - offset, length) / sample_rate, what the model's seconds_total conditioning should say.
    """
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(audio.shape)}")
    if length <= 0 or sample_rate <= 0:
        raise ValueError(f"length and sample_rate must be positive, got length={length}, sample_rate={sample_rate}")
    n = audio.shape[-1]
    max_offset = max(0, n - length)
    if not 0 <= offset <= max_offset:
        raise ValueError(f"offset must be in [0, {max_offset}] for {n} samples and a window of {length}, got {offset}")
    window = audio[:, offset:offset + length]
    real = window.shape[-1]
    # a copy either way, so the window never keeps the whole file's storage alive
    window = torch.nn.functional.pad(window, (0, length - real)) if real < length else window.clone()
    return window, real / sample_rate


def write_audio(path: str | Path, audio: torch.Tensor, sample_rate: int) -> Path:
    """Atomically write (C, L) audio, clipped to [-1, 1], as 16-bit WAV or FLAC (by suffix)."""
    import soundfile as sf

    path = Path(path)
    if path.suffix.lower() not in WRITE_FORMATS:
        raise ValueError(f"cannot write {path.suffix!r} audio; choose one of {sorted(WRITE_FORMATS)}")
    fmt, subtype = WRITE_FORMATS[path.suffix.lower()]
    data = _pcm_ready(audio)  # (L, C)
    return atomic_write(path, lambda tmp: sf.write(tmp, data, sample_rate, subtype=subtype, format=fmt))


def audio_bytes(audio: torch.Tensor, sample_rate: int, fmt: str = "wav") -> bytes:
    """(C, L) audio, clipped to [-1, 1], as the bytes of a 16-bit WAV or FLAC file (`fmt` "wav" or "flac")."""
    import io

    import soundfile as sf

    if f".{fmt}" not in WRITE_FORMATS:
        raise ValueError(f"cannot encode {fmt!r} audio; choose one of {sorted(s[1:] for s in WRITE_FORMATS)}")
    container, subtype = WRITE_FORMATS[f".{fmt}"]
    buffer = io.BytesIO()
    sf.write(buffer, _pcm_ready(audio), sample_rate, subtype=subtype, format=container)
    return buffer.getvalue()


def _pcm_ready(audio: torch.Tensor):
    """(C, L) finite audio -> (L, C) float32 numpy clipped to [-1, 1]; non-finite audio is refused, not written."""
    if audio.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(audio.shape)}")
    if not torch.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf samples; refusing to write it")
    return audio.detach().float().clamp(-1, 1).T.cpu().numpy()
