"""Partials of a periodic tone: where each harmonic landed and how much energy leaked beside it.

The check an autoencoder must pass to render pitch: a band-limited sawtooth goes through encode -> decode, and each
of its first harmonics must come back at its frequency (error in %), with no sideband (energy between the
harmonics, away from the partial's own main lobe) close to it in level.

    report = partial_report(audio, 44100, f0=165.0)   # one entry per harmonic
    max(abs(p.error) for p in report), max(p.sideband_db for p in report)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..procedural.probes import _blackman_harris

ANALYSIS_SECONDS = 0.75  # the steady middle of the clip analysed with one long window
LOBE_HZ = 8.0  # half-width of a partial's own main lobe (Blackman-Harris, 0.75 s: ~4 bins of 1.35 Hz = 5.4 Hz)


@dataclass
class Partial:
    number: int  # harmonic number h (1: the fundamental)
    frequency_hz: float  # measured, parabolic-interpolated peak in [h - 1/2, h + 1/2] * f0
    error: float  # frequency_hz / (h * f0) - 1
    sideband_db: float  # strongest bin in the harmonic's window outside +-LOBE_HZ of the peak, dB re the peak


def partial_report(audio, sample_rate: int, f0: float, count: int = 10) -> list[Partial]:
    """The first `count` harmonics of f0 Hz in audio (L,) or (C, L) (channels summed), measured on the middle
    ANALYSIS_SECONDS of the clip. Harmonics at or above 0.45 sample_rate are left out."""
    x = np.asarray(audio, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1]).sum(axis=0)
    size = round(ANALYSIS_SECONDS * sample_rate)
    if x.size < size or not f0 > 0:
        raise ValueError(f"need f0 > 0 and at least {size} samples ({ANALYSIS_SECONDS} s), got f0={f0!r}, "
                         f"{x.size} samples")
    start = (x.size - size) // 2
    power = np.abs(np.fft.rfft(x[start:start + size] * _blackman_harris(size))) ** 2 + 1e-30
    freq = np.fft.rfftfreq(size, 1.0 / sample_rate)
    step = freq[1]
    report = []
    for h in range(1, count + 1):
        if h * f0 >= 0.45 * sample_rate:
            break
        window = np.flatnonzero((freq > (h - 0.5) * f0) & (freq < (h + 0.5) * f0))
        i = int(window[np.argmax(power[window])])
        a, b, c = np.log(power[i - 1:i + 2])
        offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        peak_hz = freq[i] + offset * step
        outside = window[np.abs(freq[window] - peak_hz) > LOBE_HZ]
        side = float(power[outside].max()) if outside.size else 1e-30
        report.append(Partial(h, float(peak_hz), float(peak_hz / (h * f0) - 1),
                              10 * math.log10(side / float(power[i]))))
    return report
