"""Timing and contour measures for the creative controls (loops, voice-to-audio, style transfer): onset times by
spectral flux, the share of onsets on a tempo grid or on another clip's onsets, loudness-contour correlation, and
the level step where a loop repeats.

All functions take numpy or torch audio, (C, L) or (L,), and the sample rate; channels are averaged.
"""

from __future__ import annotations

import numpy as np

ONSET_HOP_S = 0.005  # spectral-flux frame hop (5 ms: onsets resolved well inside the 20 ms tolerance)
ONSET_WINDOW_S = 0.023
ONSET_MIN_GAP_S = 0.05  # two onsets closer than this are one
TOLERANCE_S = 0.02
CONTOUR_HOP_S = 0.01


def _mono(audio, sample_rate: float) -> np.ndarray:
    x = np.asarray(audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"audio must be (channels, samples) or (samples,) with samples > 0, got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return x


def spectral_flux(audio, sample_rate: float) -> tuple[np.ndarray, float]:
    """The half-wave rectified rise of the log-magnitude spectrum from frame to frame, summed over bins: (frames,)
    and the frame hop in seconds. Frame i covers the window starting at i * hop; its flux is its rise over frame
    i - 1 (frame 0: 0)."""
    x = _mono(audio, sample_rate)
    hop = max(1, round(ONSET_HOP_S * sample_rate))
    size = max(16, round(ONSET_WINDOW_S * sample_rate))
    x = np.concatenate([np.zeros(size // 2), x, np.zeros(size)])  # frame i centred on sample i * hop
    count = 1 + (x.size - size) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop][:count] * np.hanning(size)  # (F, size)
    log_mag = np.log1p(1000.0 * np.abs(np.fft.rfft(frames, axis=1)))  # (F, bins); compressed
    rise = np.maximum(np.diff(log_mag, axis=0, prepend=log_mag[:1]), 0.0).sum(axis=1)  # (F,)
    return rise, hop / sample_rate


def onset_times(audio, sample_rate: float, sensitivity: float = 1.0) -> np.ndarray:
    """Onset times in seconds: peaks of the spectral flux above an adaptive threshold (the local median plus
    `sensitivity` x the flux's median absolute deviation, and 10 % of its maximum), at least ONSET_MIN_GAP_S apart
    (the stronger one wins). Silence has no onsets."""
    flux, hop_s = spectral_flux(audio, sample_rate)
    if flux.max() <= 1e-9:
        return np.zeros(0)
    half = max(1, round(0.1 / hop_s))
    padded = np.pad(flux, half, mode="edge")
    local = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)  # (F,)
    spread = np.median(np.abs(flux - np.median(flux))) + 1e-12
    threshold = np.maximum(local + sensitivity * 3 * spread, 0.1 * flux.max())
    peaks = [i for i in range(1, flux.size - 1) if flux[i] > threshold[i] and flux[i] >= flux[i - 1]
             and flux[i] >= flux[i + 1]]
    kept: list[int] = []
    gap = ONSET_MIN_GAP_S / hop_s
    for i in sorted(peaks, key=lambda j: -flux[j]):
        if all(abs(i - j) >= gap for j in kept):
            kept.append(i)
    return np.sort(np.array(kept, dtype=np.float64)) * hop_s


def grid_share(onsets: np.ndarray, bpm: float, subdivision: int = 2, offset_s: float = 0.0,
               tolerance_s: float = TOLERANCE_S) -> float:
    """The share of onsets within `tolerance_s` of the grid offset_s + k * 60 / (bpm * subdivision) (eighth notes
    by default); nan without onsets."""
    if bpm <= 0 or subdivision < 1:
        raise ValueError(f"bpm must be > 0 and subdivision >= 1, got {bpm}, {subdivision}")
    onsets = np.asarray(onsets, dtype=np.float64)
    if onsets.size == 0:
        return float("nan")
    step = 60.0 / (bpm * subdivision)
    phase = np.mod(onsets - offset_s, step)
    distance = np.minimum(phase, step - phase)
    return float(np.mean(distance <= tolerance_s))


def onset_agreement(output_onsets: np.ndarray, input_onsets: np.ndarray, tolerance_s: float = TOLERANCE_S) -> dict:
    """How well the output's onsets follow the input's: `precision` (share of output onsets within tolerance of an
    input onset), `recall` (share of input onsets matched by an output onset) and their harmonic mean `f1`; nan
    where a side has no onsets."""
    out, ref = np.asarray(output_onsets, dtype=np.float64), np.asarray(input_onsets, dtype=np.float64)
    if out.size == 0 or ref.size == 0:
        nan = float("nan")
        return {"precision": nan, "recall": nan, "f1": nan}
    distance = np.abs(out[:, None] - ref[None, :])  # (out, ref)
    precision = float(np.mean(distance.min(axis=1) <= tolerance_s))
    recall = float(np.mean(distance.min(axis=0) <= tolerance_s))
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def loudness_contour(audio, sample_rate: float, hop_s: float = CONTOUR_HOP_S) -> np.ndarray:
    """Level in dB of each `hop_s` frame (mean square over the frame, floored at -80 dB): (frames,)."""
    x = _mono(audio, sample_rate)
    hop = max(1, round(hop_s * sample_rate))
    count = x.size // hop
    if count == 0:
        return np.zeros(0)
    energy = (x[:count * hop] ** 2).reshape(count, hop).mean(axis=1)
    return 10 * np.log10(np.maximum(energy, 1e-8))


def contour_correlation(a, b, sample_rate: float, hop_s: float = CONTOUR_HOP_S) -> float:
    """Pearson correlation of two clips' loudness contours (dB per `hop_s` frame) over their common length; nan
    when either is flat."""
    ca, cb = loudness_contour(a, sample_rate, hop_s), loudness_contour(b, sample_rate, hop_s)
    n = min(ca.size, cb.size)
    ca, cb = ca[:n], cb[:n]
    if n < 3 or ca.std() < 1e-9 or cb.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(ca, cb)[0, 1])


def loop_joint_step_db(loop, sample_rate: float, window_s: float = 0.005) -> dict:
    """Where a loop repeats (its end followed by its start), against its own insides, worst channel:
    `level_step_db`, the absolute dB difference of the RMS over `window_s` before and after the joint;
    `typical_step_db`, the 95th percentile of that difference between adjacent windows inside the loop (its own
    onsets and decays: a joint no more abrupt than these is not heard as a seam); `jump`, the sample jump across the
    joint over the 99th percentile of the loop's sample-to-sample steps (a click is a jump far above 1)."""
    x = np.asarray(loop.detach().cpu().numpy() if hasattr(loop, "detach") else loop, dtype=np.float64)
    x = x[None] if x.ndim == 1 else x
    w = max(1, round(window_s * sample_rate))
    steps, typical, jumps = [], [], []
    for channel in x:
        levels = 10 * np.log10(np.mean(channel[: channel.size // w * w].reshape(-1, w) ** 2, axis=1) + 1e-12)
        rms = [10 * np.log10(np.mean(v ** 2) + 1e-12) for v in (channel[-w:], channel[:w])]
        steps.append(abs(rms[0] - rms[1]))
        typical.append(float(np.percentile(np.abs(np.diff(levels)), 95)) if levels.size > 1 else 0.0)
        step = np.percentile(np.abs(np.diff(channel)), 99) + 1e-12
        jumps.append(abs(channel[0] - channel[-1]) / step)
    return {"level_step_db": float(max(steps)), "typical_step_db": float(max(typical)), "jump": float(max(jumps))}
