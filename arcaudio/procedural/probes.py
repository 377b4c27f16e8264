"""Analytic probes: read each attribute of the procedural dataset back from audio, with no learned classifier.

Every probe takes float audio (2, L) (or (L,) / (1, L) mono) at any sample rate, reads time and frequency in
seconds and Hz (no resampling), and returns one of the attribute's classes in `synth.ATTRIBUTE_VALUES`. Probes never
fail on odd audio: non-finite samples count as silence, and silence, clipping or a few samples still get a label
(silence reads as quiet, centred, steady noise).
Decision rules are deliberately coarse (nearest class in log-frequency, thresholds halfway between class centres)
so that they also hold for model outputs, which are noisier than the synthesiser.

    probe_all(audio, 44100, ["kind", "pitch", "pan"])   # {"kind": "tone", "pitch": "A4", "pan": "left"}
    score(audio, 44100, attributes)                      # {"kind": True, "pitch": False, ...}
"""

from __future__ import annotations

import math
import numbers
from functools import cached_property

import numpy as np

from .synth import (
    CHORD_INTERVALS,
    LOUDNESS_DB,
    PAN_SIDE_DB,
    PITCH_HZ,
    TEMPOS,
    loudness_db,
    probed_attributes,
)

_TINY = 1e-30
_NOISE_FLATNESS = 0.56  # expected spectral flatness of a Gaussian-noise periodogram (exp(-Euler gamma))
LOUDNESS_THRESHOLD_DB = (LOUDNESS_DB["quiet"] + LOUDNESS_DB["loud"]) / 2
PAN_THRESHOLD_DB = PAN_SIDE_DB / 2
COLOUR_SLOPES = {"white": 0.0, "pink": -10 * math.log10(2), "brown": -20 * math.log10(2)}  # dB per octave
ENVELOPE_THRESHOLD_DB = 6.0  # last third vs first third of the sounding span
ONSET_THRESHOLD_DB = 10.0  # summed band-level rise (dB, all bands) an onset needs to be a hit
HIT_BAND_RISE_DB = 10.0  # new energy (dB) a hit brings to some band; a tone's 2-12 Hz tremolo reaches < 6 dB
HIT_LOOKBACK_S = 0.03  # ... over the band's loudest level 11-30 ms before: 16th-note hats at 160 bpm still clear it
HIT_SEPARATION_S = 0.03  # an onset is a hit only if it is the strongest within +-30 ms
START_BLIND_S = 0.02  # a hit starting in the clip's first 20 ms shows no onset (nothing earlier to rise from)
PULSE_PERIODS_S = (0.07, 1.0)  # the beat of a loop: 16ths at 200 bpm (75 ms) to quarters at 60 bpm (1 s)
PULSE_TOLERANCE_S = 0.015  # timing slack on a beat, at least: a few ms of jitter, ~6 ms hop rounding
# ... and at most this share of the beat's period: the +-17.5 % of the inter-beat interval within which beat-tracking
# evaluation counts a beat as on time (the continuity measures; Davies, Degara & Plumbley 2009). A loop played or
# generated a frame off the grid (the partials codec's 11.6 ms blocks, a DiT's 46 ms frames) is still a loop
PULSE_TOLERANCE_SHARE = 0.175
PULSE_MIN_HITS = 4  # beats with a hit in a chain (a beat at the clip start included): four make a loop
PULSE_FILL = 0.7  # (hits - 1) / beats a chain spans: an unbroken chain 1, one missed beat in four 0.75
PULSE_HIT_SHARE = 0.8  # share of the hits' strength that must be on the beat for "drums"
PULSE_MAX_HITS = 48  # the strongest hits looked at (bounds the cost on long clips)
TONALITY_THRESHOLD = 0.5
SWEEP_OCTAVES_PER_SECOND = 0.25
INHARMONIC_THRESHOLD = 0.3


def _as_stereo(audio) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (2, samples), (1, samples) or (samples,), got shape {x.shape}")
    x = np.where(np.isfinite(x), x, 0.0)
    if x.shape[1] == 0:
        x = np.zeros((x.shape[0], 1))
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x


def _fft_size(seconds: float, sample_rate: float) -> int:
    return 2 ** max(4, round(math.log2(seconds * sample_rate)))


def _power_frames(x: np.ndarray, size: int, hop: int, window: np.ndarray) -> np.ndarray:
    """|rfft|^2 of windowed frames of (C, L) audio, summed over channels: (F, size // 2 + 1). Audio shorter than a
    frame is zero-padded to one frame."""
    if x.shape[-1] < size:
        x = np.pad(x, ((0, 0), (0, size - x.shape[-1])))
    frames = np.lib.stride_tricks.sliding_window_view(x, size, axis=-1)[:, ::hop]
    return (np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2).sum(axis=0)


def _blackman_harris(size: int) -> np.ndarray:
    phase = 2 * np.pi * np.arange(size) / size
    return 0.35875 - 0.48829 * np.cos(phase) + 0.14128 * np.cos(2 * phase) - 0.01168 * np.cos(3 * phase)


def _nearest(value: float, centres: dict):
    return min(centres, key=lambda name: abs(value - centres[name]))


class _Analysis:
    """Shared, lazily computed features of one clip; each probe reads what it needs."""

    def __init__(self, audio, sample_rate: float):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Real) or not sample_rate >= 1000:
            raise ValueError(f"sample_rate must be a number >= 1000 Hz, got {sample_rate!r}")
        self.sr = float(sample_rate)
        self.stereo = _as_stereo(audio)
        left, right = self.stereo
        # the channels summed coherently: in phase, or flipped where they are mostly in opposite phase
        self.mix = (left + right if float(left @ right) >= 0 else left - right)[None]
        self.silent = not float(np.max(np.abs(self.stereo))) > 1e-7

    # ---------------------------------------------------------------------------------------------- spectra

    @cached_property
    def spectrum(self) -> tuple[np.ndarray, np.ndarray]:
        """Long-window (~0.37 s, Blackman-Harris) average power spectrum: (frequencies Hz, power)."""
        size = _fft_size(0.37, self.sr)
        power = _power_frames(self.mix, size, size // 2, _blackman_harris(size)).mean(axis=0)
        return np.fft.rfftfreq(size, 1.0 / self.sr), power

    @cached_property
    def peaks(self) -> tuple[np.ndarray, np.ndarray]:
        """Spectral peaks within 30 dB of the strongest, 60 Hz - 5 kHz: (frequencies, powers), low to high."""
        freq, power = self.spectrum
        band = np.flatnonzero((freq >= 60) & (freq <= min(5000.0, 0.45 * self.sr)))
        if self.silent or band.size < 9:
            return np.zeros(0), np.zeros(0)
        p = power[band]
        padded = np.pad(p, 4, constant_values=-1.0)
        neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, 9).max(axis=1)
        local = np.flatnonzero((p >= neighbourhood) & (p > 0))
        if local.size == 0:
            return np.zeros(0), np.zeros(0)
        local = local[p[local] >= p[local].max() * 1e-3]
        lo, mid, hi = (np.log(power[band[local] + d] + _TINY) for d in (-1, 0, 1))
        curvature = lo - 2 * mid + hi
        offset = np.where(curvature < 0, 0.5 * (lo - hi) / np.where(curvature < 0, curvature, -1.0), 0.0)
        step = freq[1] - freq[0]
        return freq[band[local]] + np.clip(offset, -0.5, 0.5) * step, p[local]

    @cached_property
    def fundamental(self) -> float:
        """The lowest peak within 20 dB of the strongest (Hz; 0 when there is none): a tone's pitch, a chord's root."""
        freq, power = self.peaks
        strong = freq[(power >= power.max() * 1e-2) & (freq >= 70)] if power.size else freq
        return float(strong.min()) if strong.size else 0.0

    @cached_property
    def inharmonicity(self) -> float:
        """Share of the peak power not on a harmonic of the fundamental: ~0 for a tone, ~2/3 for a triad."""
        freq, power = self.peaks
        if self.fundamental <= 0:
            return 0.0
        ratio = freq / self.fundamental
        off = (np.abs(ratio - np.round(ratio)) > 0.1) | (np.round(ratio) < 1)
        return float(power[off].sum() / power.sum())

    @cached_property
    def triad(self) -> tuple[float, str]:
        """(root frequency in Hz or 0, quality) of the major or minor triad that best matches the chroma of the
        spectral peaks (60 Hz - 2.5 kHz); the root is the lowest strong peak of the root's pitch class."""
        freq, power = self.peaks
        keep = (freq >= 60) & (freq <= 2500)
        if not keep.any():
            return 0.0, "major"
        classes = np.round(12 * np.log2(freq / 440.0)).astype(np.int64) % 12
        chroma = np.zeros(12)
        np.add.at(chroma, classes[keep], power[keep])
        scores = {(root, quality): sum(chroma[(root + step) % 12] for step in steps)
                  for quality, steps in CHORD_INTERVALS.items() for root in range(12)}
        root, quality = max(scores, key=scores.get)
        strong = keep & (classes == root) & (power >= power.max() * 1e-2)
        return (float(freq[strong].min()) if strong.any() else 0.0), quality

    def _tonality(self, seconds: float) -> float:
        """Power-weighted share of tonal (non-flat) energy in bands from 50 Hz to 12.8 kHz, frames of `seconds`."""
        size = _fft_size(seconds, self.sr)
        power = _power_frames(self.mix, size, size // 2, np.hanning(size))
        freq = np.fft.rfftfreq(size, 1.0 / self.sr)
        floor = power.max() * 1e-12 + _TINY
        top = min(12800.0, 0.45 * self.sr)
        weighted, total = 0.0, 0.0
        lo = 50.0
        while lo < top:
            hi = min(max(2 * lo, lo + 32 * freq[1]), top)  # an octave, or 32 bins where that is wider
            sel = (freq >= lo) & (freq < hi)
            lo = hi
            if sel.sum() < 8:
                continue
            band = power[:, sel] + floor
            mean = band.mean(axis=1)
            # flatness of the log-spectrum minus its straight-line trend in log-frequency, so that a coloured
            # noise's tilt across the band does not read as tonal
            logf = np.log(freq[sel]) - np.log(freq[sel]).mean()
            logp = np.log(band)
            residual = logp - logp.mean(axis=1, keepdims=True)
            residual -= np.outer(residual @ logf / (logf @ logf), logf)
            flatness = np.exp(residual.mean(axis=1)) / np.exp(residual).mean(axis=1)
            weighted += float(np.sum(mean * np.clip(1 - flatness / _NOISE_FLATNESS, 0, 1)))
            total += float(mean.sum())
        return weighted / total if total > 0 else 0.0

    @cached_property
    def tonality(self) -> float:
        """0 for noise, ~1 for tones, chords and sweeps: the best of 370, 93 and 23 ms analyses (close low chord
        notes need the long frames, fast sweeps the short ones)."""
        return 0.0 if self.silent else max(self._tonality(s) for s in (0.37, 0.093, 0.023))

    @cached_property
    def pitch_slope(self) -> float:
        """Median slope (octaves per second) of the per-frame dominant frequency over loud, clearly pitched frames
        (Theil-Sen over pairs at least 0.15 s apart); 0 when it cannot be measured."""
        size = _fft_size(0.093, self.sr)
        hop = size // 4
        freq = np.fft.rfftfreq(size, 1.0 / self.sr)
        band = (freq >= 60) & (freq <= min(5000.0, 0.45 * self.sr))
        if self.silent or band.sum() < 2:
            return 0.0
        power = _power_frames(self.mix, size, hop, np.hanning(size))[:, band]
        energy, peak = power.sum(axis=1), power.max(axis=1)
        # frames within 30 dB of the loudest whose strongest bin stands 20 dB above the band's median bin
        active = np.flatnonzero((energy >= energy.max() * 1e-3) & (peak >= 100 * np.median(power, axis=1)))
        if active.size < 3:
            return 0.0
        active = active[np.linspace(0, active.size - 1, min(active.size, 400)).round().astype(np.int64)]
        # the frame's pitch: power-weighted mean log-frequency of the bins within 10 dB of its strongest bin (steadier
        # than the arg-max, which hops between the notes of a chord)
        frames = power[active]
        weights = np.where(frames >= 0.1 * frames.max(axis=1, keepdims=True), frames, 0.0)
        octaves = weights @ np.log2(freq[band]) / weights.sum(axis=1)
        times = active * hop / self.sr
        i, j = np.triu_indices(active.size, k=1)
        keep = times[j] - times[i] >= 0.15
        if not keep.any():
            return 0.0
        return float(np.median((octaves[j] - octaves[i])[keep] / (times[j] - times[i])[keep]))

    # -------------------------------------------------------------------------------------------- time domain

    @cached_property
    def band_power(self) -> tuple[np.ndarray, float]:
        """Power per ~5.8 ms hop (23 ms Hann frames) in the bands 40-150-400-1k-2.5k-6k-12k Hz-Nyquist (empty bands
        left out): ((frames, bands), hop seconds)."""
        size = _fft_size(0.023, self.sr)
        hop = size // 4
        power = _power_frames(self.mix, size, hop, np.hanning(size))
        freq = np.fft.rfftfreq(size, 1.0 / self.sr)
        edges = [e for e in (40, 150, 400, 1000, 2500, 6000, 12000) if e < self.sr / 2] + [self.sr / 2]
        bands = [power[:, (freq >= lo) & (freq < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])]
        return np.stack([b for b in bands if b.any()] or [power.sum(axis=1)], axis=1), hop / self.sr

    def _rises(self, power: np.ndarray, lookback: float = 0.06) -> np.ndarray:
        """Rise (dB) of each column of (frames, columns) power above its loudest level 11 ms to `lookback` s earlier,
        less a 3 dB dead zone (level jitter, slow swells), floored at 0; levels floor 50 dB below the loudest
        column."""
        hop = round(self.band_power[1] * self.sr)  # samples
        level = 10 * np.log10(power + power.max() * 1e-5 + _TINY)
        # the rise is measured against the loudest level from 11 ms to `lookback` earlier, so that beating partials
        # (amplitude modulation faster than ~17 Hz at 60 ms) do not read as onsets while a hit after a decay does;
        # sound already playing when the clip starts is not an onset
        near, far = max(1, round(0.011 * self.sr / hop)), max(2, round(lookback * self.sr / hop))
        padded = np.concatenate([np.repeat(level[:1], far, axis=0), level])
        window = np.lib.stride_tricks.sliding_window_view(padded[:-near], far - near + 1, axis=0)
        return np.maximum(level - window.max(axis=-1) - 3.0, 0.0)

    @cached_property
    def band_rises(self) -> np.ndarray:
        """Rise (dB) of each band level per hop (`_rises` of `band_power`): (frames, bands)."""
        return self._rises(self.band_power[0])

    @cached_property
    def arrival_rises(self) -> np.ndarray:
        """Rise (dB) per hop of each band's new energy (frames, bands): the least of the band's own rise and the
        rises of its power summed with its lower and with its upper neighbour's. Energy a pitch glide moves across
        a band edge, or the skirt of a louder neighbour, does not raise the pair; a hit raises all three."""
        bands = self.band_power[0]
        rises = self._rises(bands, HIT_LOOKBACK_S)
        if bands.shape[1] < 2:
            return rises
        pairs = self._rises(bands[:, :-1] + bands[:, 1:], HIT_LOOKBACK_S)  # pair k: bands k and k + 1
        lower = np.concatenate([rises[:, :1], pairs], axis=1)  # band k with band k - 1 (band 0: itself)
        upper = np.concatenate([pairs, rises[:, -1:]], axis=1)  # band k with band k + 1 (the top band: itself)
        return np.minimum(rises, np.minimum(lower, upper))

    @cached_property
    def onsets(self) -> tuple[np.ndarray, float]:
        """Onset strength per ~5.8 ms hop: the band rises (`band_rises`, dB) summed over bands; (strength, hop
        seconds)."""
        return self.band_rises.sum(axis=1), self.band_power[1]

    @cached_property
    def hits(self) -> tuple[np.ndarray, np.ndarray]:
        """Percussive hits, in time order: (times s, strengths dB). A hit is an onset of summed strength (`onsets`)
        >= ONSET_THRESHOLD_DB, the strongest within +-HIT_SEPARATION_S, with new energy (`arrival_rises`) of
        >= HIT_BAND_RISE_DB in some band within +-1 hop; its time is its frame's centre (within a few ms of the
        attack). Only the PULSE_MAX_HITS strongest are kept."""
        strength, hop = self.onsets
        reach = max(1, round(HIT_SEPARATION_S / hop))
        strongest = np.lib.stride_tricks.sliding_window_view(np.pad(strength, reach), 2 * reach + 1).max(axis=1)
        arrival = np.lib.stride_tricks.sliding_window_view(np.pad(self.arrival_rises.max(axis=1), 1), 3).max(axis=1)
        frames = np.flatnonzero((strength >= strongest) & (strength >= ONSET_THRESHOLD_DB)
                                & (arrival >= HIT_BAND_RISE_DB))
        if frames.size:
            frames = frames[np.insert(np.diff(frames) > reach, 0, True)]  # a plateau of equal strengths: its first
            frames = np.sort(frames[np.argsort(-strength[frames], kind="stable")[:PULSE_MAX_HITS]])
        return (frames + 2) * hop, strength[frames]  # frames are 4 hops long

    @cached_property
    def pulse(self) -> tuple[float, int, float]:
        """The steadiest beat through the hits: (period s, hits on it, their share of the hits' summed strength).
        For a period P, hits P or 2P apart (one missed beat), within max(PULSE_TOLERANCE_S, PULSE_TOLERANCE_SHARE P),
        are linked, and linked hits chain; a hit is on the beat if its chain has PULSE_MIN_HITS hits and fills
        PULSE_FILL of the beats it spans
        ((hits - 1) / beats); a chain whose beat before its first hit falls in the clip's first START_BLIND_S, where
        no onset can show, counts that beat too. A swung or syncopated loop is several chains at the same period.
        P is the spacing of a hit from one of its next four, within PULSE_PERIODS_S: the one with the largest share
        on the beat, then the most hits; (0, 0, 0) without two hits. A share above 0 means some chain is long
        enough."""
        times, strength = self.hits
        if times.size < 2:
            return 0.0, 0, 0.0
        gaps = np.abs(times[:, None] - times[None])
        lo, hi = PULSE_PERIODS_S
        spacing = np.concatenate([times[k:] - times[:-k] for k in range(1, min(4, times.size - 1) + 1)])
        periods = np.unique(np.round(spacing[(spacing >= lo) & (spacing <= hi)], 3))  # 1 ms steps
        if periods.size == 0:
            return 0.0, 0, 0.0
        beat = periods[:, None, None]
        slack = np.maximum(PULSE_TOLERANCE_S, PULSE_TOLERANCE_SHARE * beat)  # (periods, 1, 1) s
        linked = (np.abs(gaps - beat) <= slack) | (np.abs(gaps - 2 * beat) <= slack)
        chained = (linked | np.eye(times.size, dtype=bool)).astype(np.float32)
        for _ in range(math.ceil(math.log2(times.size))):  # each squaring doubles the chain length followed
            chained = (chained @ chained > 0).astype(np.float32)
        members = chained > 0  # (periods, hit, hits in its chain)
        first, last = np.where(members, times, np.inf).min(axis=2), np.where(members, times, -np.inf).max(axis=2)
        period = periods[:, None]
        lead_in = first - period  # the beat before a chain's first hit
        at_start = (lead_in >= -slack[..., 0]) & (lead_in <= START_BLIND_S + slack[..., 0])
        size = members.sum(axis=2) + at_start
        fill = (size - 1) / np.maximum(np.round((last - first) / period) + at_start, 1)
        on_beat = (size >= PULSE_MIN_HITS) & (fill >= PULSE_FILL)  # (periods, hits)
        count, share = on_beat.sum(axis=1), on_beat @ strength / strength.sum()
        best = max(range(periods.size), key=lambda k: (share[k], count[k]))
        return float(periods[best]), int(count[best]), float(share[best])

    @cached_property
    def tempo_class(self) -> int:
        """The tempo class (bpm) whose eighth-note pulse train, at its best phase, has the largest mean onset strength
        (each pulse reads the strongest onset within +-2 hops)."""
        strength, hop = self.onsets
        padded = np.pad(strength, 2)
        near = np.lib.stride_tricks.sliding_window_view(padded, 5).max(axis=1)
        best, best_mean = TEMPOS[0], -1.0
        for bpm in TEMPOS:
            period = 30.0 / bpm / hop
            phases = np.arange(0.0, period, 1.0)[:, None]
            index = np.round(phases + period * np.arange(int(near.size / period) + 1)[None]).astype(np.int64)
            valid = index < near.size
            values = near[np.minimum(index, near.size - 1)] * valid
            mean = float((values.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)).max())
            if mean > best_mean:
                best, best_mean = bpm, mean
        return best

    @cached_property
    def envelope_db(self) -> float:
        """Level of the last third minus the first third of the sounding span (frames within 40 dB of the loudest)."""
        power = np.mean(self.stereo**2, axis=0)
        frame = max(1, round(0.05 * self.sr))
        count = power.size // frame
        if count < 3:
            return 0.0  # under 150 ms: too short to tell
        frames = power[:count * frame].reshape(count, frame).mean(axis=1)
        active = np.flatnonzero(frames >= frames.max() * 1e-4)
        if self.silent or active.size < 3:
            return 0.0
        span = frames[active[0]:active[-1] + 1]
        third = max(1, span.size // 3)
        return float(10 * np.log10((span[-third:].mean() + _TINY) / (span[:third].mean() + _TINY)))


# ------------------------------------------------------------------------------------------------------ probes

def _kind(a: _Analysis) -> str:
    if a.silent:
        return "noise"
    if a.pulse[2] >= PULSE_HIT_SHARE:  # most of the hits' strength on a steady beat
        return "drums"
    if a.tonality < TONALITY_THRESHOLD:
        return "noise"
    if abs(a.pitch_slope) >= SWEEP_OCTAVES_PER_SECOND:
        return "sweep"
    return "chord" if a.inharmonicity > INHARMONIC_THRESHOLD else "tone"


def _pitch(a: _Analysis) -> str:
    hz = a.fundamental
    if a.inharmonicity > INHARMONIC_THRESHOLD and a.triad[0] > 0:
        hz = a.triad[0]  # a chord: its root, which difference tones below it (distortion) do not displace
    if hz <= 0:
        return "A4"
    return _nearest(math.log2(hz), {name: math.log2(f) for name, f in PITCH_HZ.items()})


def _harmonic_db(a: _Analysis, numbers: tuple[int, ...]) -> float:
    """Power of the given harmonics of the fundamental relative to the fundamental, dB (-inf-ish when absent)."""
    freq, power = a.spectrum
    step = freq[1] - freq[0]
    f0 = a.fundamental

    def at(hz: float) -> float:
        centre = round(hz / step)
        width = max(2, round(0.01 * hz / step))
        lo, hi = max(0, centre - width), min(power.size, centre + width + 1)
        return float(power[lo:hi].max()) if hi > lo else 0.0

    present = [at(n * f0) for n in numbers if n * f0 < 0.45 * a.sr]
    return 10 * math.log10((sum(present) + _TINY) / (at(f0) + _TINY))


def _waveform(a: _Analysis) -> str:
    if a.fundamental <= 0:
        return "sine"
    if _harmonic_db(a, (2, 4)) > -20.0:
        return "sawtooth"  # even harmonics: only the sawtooth has them (-5 dB; square and triangle have none)
    if _harmonic_db(a, (3, 5)) < -30.0:
        return "sine"  # square -8 dB, triangle -19 dB
    numbers = [n for n in (1, 3, 5, 7, 9) if n * a.fundamental < 0.45 * a.sr]
    if len(numbers) < 3:
        return "square" if _harmonic_db(a, (3, 5)) > -13.5 else "triangle"
    levels = [max(_harmonic_db(a, (n,)), -60.0) for n in numbers]
    slope = float(np.polyfit(np.log2(numbers), levels, 1)[0])
    return "square" if slope > -9.0 else "triangle"  # -6 and -12 dB per doubling of the harmonic number


def _quality(a: _Analysis) -> str:
    return a.triad[1]


def _colour(a: _Analysis) -> str:
    freq, power = a.spectrum
    centres = 100.0 * 2.0 ** (np.arange(0, 16) / 3)
    centres = centres[centres * 2 ** (1 / 6) < min(4000.0 * 2 ** (1 / 6), 0.4 * a.sr)]
    levels, octaves = [], []
    for c in centres:
        sel = (freq >= c * 2 ** (-1 / 6)) & (freq < c * 2 ** (1 / 6))
        if sel.any():
            levels.append(10 * math.log10(float(power[sel].mean()) + _TINY))
            octaves.append(math.log2(c))
    if a.silent or len(levels) < 2:
        return "white"
    slope = float(np.polyfit(octaves, levels, 1)[0])
    return _nearest(slope, COLOUR_SLOPES)


def _tempo(a: _Analysis) -> int:
    return a.tempo_class


def _direction(a: _Analysis) -> str:
    return "down" if a.pitch_slope < 0 else "up"


def _loudness(a: _Analysis) -> str:
    return "loud" if loudness_db(a.stereo, a.sr) >= LOUDNESS_THRESHOLD_DB else "quiet"


def _pan(a: _Analysis) -> str:
    left, right = (float(np.sum(channel**2)) for channel in a.stereo)
    ratio_db = 10 * math.log10((left + _TINY) / (right + _TINY))
    return "left" if ratio_db > PAN_THRESHOLD_DB else "right" if ratio_db < -PAN_THRESHOLD_DB else "center"


def _envelope(a: _Analysis) -> str:
    change = a.envelope_db
    return "swelling" if change > ENVELOPE_THRESHOLD_DB else "plucked" if change < -ENVELOPE_THRESHOLD_DB else "steady"


_PROBES = {"kind": _kind, "pitch": _pitch, "waveform": _waveform, "quality": _quality, "colour": _colour,
           "tempo": _tempo, "direction": _direction, "loudness": _loudness, "pan": _pan, "envelope": _envelope}


def probe_kind(audio, sample_rate: float) -> str:
    """tone, chord, noise, drums or sweep: drums when percussive hits repeat at a steady beat (any period from 70 ms
    to 1 s: quarters, eighths or sixteenths at ~60-200 bpm, some beats missing, swung, or off the grid by up to
    17.5 % of the beat (44 ms on 120 bpm eighths); four beats at least), noise when the spectrum is flat, sweep
    when the pitch glides, chord when much of the peak power is not harmonic to the lowest strong peak, else tone.

    A hit is a sharp rise of new energy in some frequency band: a kick, snare, hat or 808 (a ~50 Hz body, once the
    last one's tail has fallen ~12 dB) makes one; a tremolo, a pitch glide, steady noise or a tone does not. One
    plucked note is one hit, not a loop; plucked notes or arpeggios at a steady pace are a loop (the probe reads
    rhythm and attack, not timbre)."""
    return _kind(_Analysis(audio, sample_rate))


def probe_pitch(audio, sample_rate: float) -> str:
    """The pitch class nearest in log-frequency to the lowest strong spectral peak, or for chord-like (inharmonic)
    audio to the root of the best-matching triad."""
    return _pitch(_Analysis(audio, sample_rate))


def probe_waveform(audio, sample_rate: float) -> str:
    """sine, square, sawtooth or triangle from the harmonics of the fundamental: even ones mean sawtooth (~1/n);
    none sine; odd ones only, falling ~6 dB (square, ~1/n) or ~12 dB (triangle, ~1/n^2) per doubling of n."""
    return _waveform(_Analysis(audio, sample_rate))


def probe_quality(audio, sample_rate: float) -> str:
    """major or minor: the triad template that best matches the chroma of the spectral peaks."""
    return _quality(_Analysis(audio, sample_rate))


def probe_colour(audio, sample_rate: float) -> str:
    """white, pink or brown: the nearest of 0 / -3 / -6 dB per octave to the spectral slope over 100 Hz - 4 kHz."""
    return _colour(_Analysis(audio, sample_rate))


def probe_tempo(audio, sample_rate: float) -> int:
    """The tempo class (bpm) whose eighth-note pulse train, at its best phase, lands on the strongest onsets.

    Kicks on quarter notes hit every other eighth and read at their tempo. A loop at a tempo outside the classes
    reads as the class whose eighths line up best with its hits, mostly a simple ratio away: 60 -> 120, 70 -> 140,
    90 -> 120, 150 -> 100, 160 and 170 -> 80, 180 -> 120, 200 -> 100; 110 and 130 fall between (80 or 100)."""
    return _tempo(_Analysis(audio, sample_rate))


def probe_direction(audio, sample_rate: float) -> str:
    """up or down: the sign of the pitch's slope over time."""
    return _direction(_Analysis(audio, sample_rate))


def probe_loudness(audio, sample_rate: float) -> str:
    """quiet or loud: `synth.loudness_db` against the midpoint of the two class levels (-23 dB)."""
    return _loudness(_Analysis(audio, sample_rate))


def probe_pan(audio, sample_rate: float) -> str:
    """left, center or right: the left/right energy ratio against +-7.5 dB (half the dataset's 15 dB)."""
    return _pan(_Analysis(audio, sample_rate))


def probe_envelope(audio, sample_rate: float) -> str:
    """steady, plucked or swelling: the last third's level against the first third's over the sounding span
    (+-6 dB)."""
    return _envelope(_Analysis(audio, sample_rate))


def probe_all(audio, sample_rate: float, attributes_to_probe) -> dict:
    """{name: probed class} for each attribute name, sharing one analysis of the audio."""
    names = list(attributes_to_probe)
    unknown = [name for name in names if name not in _PROBES]
    if unknown:
        raise ValueError(f"unknown attribute(s) {unknown}; probes exist for {list(_PROBES)}")
    analysis = _Analysis(audio, sample_rate)
    return {name: _PROBES[name](analysis) for name in names}


def score(audio, sample_rate: float, attributes: dict) -> dict[str, bool]:
    """For each probed attribute of the reference `attributes` (`synth.probed_attributes`), whether the probe reads
    the same class from `audio`. Kind-specific probes run whatever `probe_kind` says (a prompt for an A4 tone is
    scored on pitch even if the audio sounds like noise)."""
    names = probed_attributes(attributes)
    found = probe_all(audio, sample_rate, names)
    return {name: found[name] == attributes[name] for name in names}
