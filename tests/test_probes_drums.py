"""The kind probe reads drum loops in general, not only the procedural set's (hi-hat on every eighth): loops of kicks
alone, snares alone, hats alone, kick and snare with a missing hit, an 808-like kick (a ~50 Hz body, no click), with
jitter or swing, at several tempos and sample rates; and it does not read tones, chords, sweeps, noise, tremolo or a
single plucked note as drums. Every sound is built here with numpy from decaying sines and noise bursts."""

from functools import cache

import numpy as np
import pytest

from arcaudio.procedural.probes import probe_all, probe_kind, probe_tempo

SR = 44100
SECONDS = 3.0


def _time(seconds: float, sr: int) -> np.ndarray:
    return np.arange(round(seconds * sr)) / sr


def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sine gliding 150 -> 50 Hz (30 ms), decaying with a 0.15 s time constant, plus a 2 ms noise click."""
    t = _time(0.4, sr)
    freq = 50 + 100 * np.exp(-t / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.15)
    return body + 0.3 * rng.standard_normal(t.size) * np.exp(-t / 0.002)


def _kick_808(sr: int) -> np.ndarray:
    """An 808-like kick: a sine gliding 110 -> 50 Hz (30 ms), decaying with a 0.2 s time constant, no click."""
    t = _time(1.0, sr)
    freq = 50 + 60 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.2)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A 200 Hz sine (40 ms decay) under a noise burst (60 ms decay)."""
    t = _time(0.25, sr)
    return 0.5 * np.sin(2 * np.pi * 200 * t) * np.exp(-t / 0.04) + 0.6 * rng.standard_normal(t.size) * np.exp(-t / 0.06)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    """High-passed noise (a first difference) decaying with a 15 ms time constant."""
    t = _time(0.08, sr)
    return 0.5 * np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.015)


def _beats(bpm: float, per_beat: int, start: float = 0.05, seconds: float = SECONDS) -> np.ndarray:
    """Onset times (s) of `per_beat` notes per beat (1 quarters, 2 eighths, 4 sixteenths) from `start`."""
    step = 60.0 / bpm / per_beat
    return np.arange(start, seconds - 0.02, step)


def _loop(hits, sr: int = SR, seconds: float = SECONDS) -> np.ndarray:
    """(2, L) audio: each (time s, sound) of `hits` added in at its time, peak-normalised to 0.5."""
    x = np.zeros(round(seconds * sr))
    for at, sound in hits:
        i = round(at * sr)
        n = min(sound.size, x.size - i)
        x[i:i + n] += sound[:n]
    x = 0.5 * x / np.max(np.abs(x))
    return np.stack([x, x])


@cache
def _loops(sr: int) -> dict[str, np.ndarray]:
    """Drum loops, 3 s at `sr`, by name."""
    rng = np.random.default_rng(sr)
    kick, snare, hat, kick_808 = _kick(sr, rng), _snare(sr, rng), _hat(sr, rng), _kick_808(sr)
    backbeat = _beats(110, 1)  # six beats: kick, snare, kick, snare, (kick left out), snare
    swung, triplet = _beats(100, 4), _beats(100, 4)
    swung[1::2] += 0.015  # every second sixteenth 15 ms late
    triplet[1::2] += 0.05  # ... or a third of an eighth late: long-short, long-short
    jitter = rng.uniform(-0.005, 0.005, size=_beats(100, 2).size)
    # each hit up to 20 ms off the grid, neighbours up to 32 ms apart: as loose as a generated loop (a 15 ms slack
    # alone reads this one as noise)
    eighths = _beats(120, 2)
    loose = eighths + np.random.default_rng(10).uniform(-0.02, 0.02, eighths.size)
    return {
        **{f"kick quarters {bpm} bpm": _loop([(t, kick) for t in _beats(bpm, 1)], sr) for bpm in (70, 120, 170)},
        **{f"kick eighths {bpm} bpm": _loop([(t, kick) for t in _beats(bpm, 2)], sr) for bpm in (70, 170)},
        "snare quarters 100 bpm": _loop([(t, snare) for t in _beats(100, 1)], sr),
        "hats sixteenths 120 bpm": _loop([(t, hat) for t in _beats(120, 4)], sr),
        "hats sixteenths 160 bpm": _loop([(t, hat) for t in _beats(160, 4)], sr),
        "kick and snare, a kick missing": _loop([(t, snare if i % 2 else kick) for i, t in enumerate(backbeat)
                                                 if i != 4], sr),
        "808 kick quarters 90 bpm": _loop([(t, kick_808) for t in _beats(90, 1)], sr),
        "808 kick quarters 120 bpm": _loop([(t, kick_808) for t in _beats(120, 1)], sr),
        "kick eighths 100 bpm, +-5 ms jitter": _loop([(t, kick) for t in _beats(100, 2) + jitter], sr),
        "kick and snare eighths 120 bpm, up to 20 ms off the grid": _loop(
            [(t, snare if i % 4 == 2 else kick) for i, t in enumerate(loose)], sr),
        "swung hats sixteenths 100 bpm": _loop([(t, hat) for t in swung], sr),
        "swung kick and hats": _loop([(t, hat) for t in swung] + [(t, kick) for t in _beats(100, 1)], sr),
        "hats sixteenths 100 bpm, triplet swing": _loop([(t, hat) for t in triplet], sr),
    }


LOOP_NAMES = list(_loops(SR))


@pytest.mark.parametrize("sr", [SR, 22050, 48000])
@pytest.mark.parametrize("name", LOOP_NAMES)
def test_drum_loops_of_any_kit_read_as_drums(name, sr):
    assert probe_kind(_loops(sr)[name], sr) == "drums"


def test_the_808_loop_has_its_energy_at_50_hz():
    # the fixture is what it claims: a low body with no click, the case a broadband onset detector misses
    audio = _loops(SR)["808 kick quarters 90 bpm"][0]
    power = np.abs(np.fft.rfft(audio)) ** 2
    freq = np.fft.rfftfreq(audio.size, 1 / SR)
    assert 45 <= freq[np.argmax(power)] <= 60
    assert power[freq > 200].sum() < 0.01 * power.sum()


@pytest.mark.parametrize("bpm", [80, 100, 120, 140])
def test_a_kick_on_quarter_notes_reads_at_its_tempo(bpm):
    # quarter-note kicks land on every other eighth-note pulse of their tempo class
    rng = np.random.default_rng(bpm)
    audio = _loop([(t, _kick(SR, rng)) for t in _beats(bpm, 1)])
    assert probe_all(audio, SR, ["kind", "tempo"]) == {"kind": "drums", "tempo": bpm}


@pytest.mark.parametrize(("bpm", "read"), [(60, 120), (70, 140), (170, 80), (200, 100)])
def test_tempos_outside_the_classes_read_a_simple_ratio_away(bpm, read):
    # documented in probe_tempo
    rng = np.random.default_rng(bpm)
    assert probe_tempo(_loop([(t, _kick(SR, rng)) for t in _beats(bpm, 1)]), SR) == read


# -- not drums -------------------------------------------------------------------------------------------------------


def _coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power falling as 1 / f^exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=float)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    spectrum[0] = 0
    return np.fft.irfft(spectrum, n)


def _saw(hz: float, t: np.ndarray, sr: int) -> np.ndarray:
    """A band-limited sawtooth: harmonics k = 1, 2, ... below 0.45 sr at 1 / k."""
    return sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, int(0.45 * sr / hz)))


@cache
def _not_drums(sr: int) -> dict[str, np.ndarray]:
    """Sounds that are not drum loops, 3 s at `sr`, by name."""
    t = _time(SECONDS, sr)
    rng = np.random.default_rng(sr)
    sine, saw = np.sin(2 * np.pi * 220 * t), _saw(110.0, t, sr)
    plucked, swelling = np.exp(-t / 0.4), (t / SECONDS) ** 2
    k = np.log(16) / SECONDS  # 4 octaves over the clip
    sounds = {
        "sine": sine, "saw": saw, "plucked sine": sine * plucked, "plucked saw": saw * plucked,
        "swelling sine": sine * swelling, "swelling saw": saw * swelling,
        "major chord": sum(np.sin(2 * np.pi * 220 * 2 ** (s / 12) * t) for s in (0, 4, 7)),
        "minor saw chord": sum(_saw(110 * 2 ** (s / 12), t, sr) for s in (0, 3, 7)),
        "rising sweep": np.sin(2 * np.pi * 200 * np.expm1(k * t) / k),
        "falling sweep": np.sin(2 * np.pi * 3200 * -np.expm1(-k * t) / k),
        "siren 2 Hz": np.sin(2 * np.pi * np.cumsum(400 * 2 ** np.sin(2 * np.pi * 2 * t)) / sr),
        "one plucked note": saw * np.exp(-(t - 0.5) / 0.3) * (t >= 0.5),
        **{f"{name} noise": _coloured_noise(t.size, e, rng) for e, name in ((0, "white"), (1, "pink"), (2, "brown"))},
    }
    for rate in (4, 6, 8):  # full-depth amplitude modulation
        gain = 0.5 + 0.5 * np.sin(2 * np.pi * rate * t)
        sounds |= {f"tremolo sine {rate} Hz": sine * gain, f"tremolo saw {rate} Hz": saw * gain,
                   f"tremolo chord {rate} Hz": sounds["major chord"] * gain,
                   f"tremolo noise {rate} Hz": _coloured_noise(t.size, 0, rng) * gain}
    return {name: np.stack([0.3 * x / np.max(np.abs(x))] * 2) for name, x in sounds.items()}


NOT_DRUM_NAMES = list(_not_drums(SR))


@pytest.mark.parametrize("sr", [SR, 22050, 48000])
@pytest.mark.parametrize("name", NOT_DRUM_NAMES)
def test_tones_chords_sweeps_noise_and_tremolo_are_not_drums(name, sr):
    assert probe_kind(_not_drums(sr)[name], sr) != "drums"


def test_tremolo_reads_as_its_carrier():
    sounds = _not_drums(SR)
    assert probe_kind(sounds["tremolo saw 4 Hz"], SR) == "tone"
    assert probe_kind(sounds["tremolo chord 6 Hz"], SR) == "chord"
    assert probe_kind(sounds["tremolo noise 8 Hz"], SR) == "noise"


def test_hits_without_a_common_beat_are_not_a_loop():
    rng = np.random.default_rng(3)
    kick = _kick(SR, rng)
    assert probe_kind(_loop([(t, kick) for t in (0.1, 0.43, 1.27, 1.5, 2.61)]), SR) != "drums"
    assert probe_kind(_loop([(t, kick) for t in (0.4, 1.2)]), SR) != "drums"  # two hits are not a loop


def test_four_beats_make_a_loop_even_if_the_first_is_at_the_clip_start():
    rng = np.random.default_rng(4)
    kick, hat = _kick(SR, rng), _hat(SR, rng)
    # four eighths at 80 bpm in 1.5 s, the first on the clip's first sample, where no onset can show
    assert probe_kind(_loop([(t, hat) for t in _beats(80, 2, start=0.0, seconds=1.5)], seconds=1.5), SR) == "drums"
    # three kicks a beat apart are not yet a loop (the beat before the first is not at the clip start)
    assert probe_kind(_loop([(t, kick) for t in (0.7, 1.2, 1.7)]), SR) != "drums"
    assert probe_kind(_loop([(t, kick) for t in (0.7, 1.2, 1.7, 2.2)]), SR) == "drums"
