"""The analytic probes read back signals built here with numpy from their textbook definitions (not with the
project's synthesiser): sines at known frequencies, square / sawtooth / triangle waves, major and minor triads,
white / pink / brown noise, click trains at known tempos, rising and falling sweeps, two levels, three pan positions
and three envelopes."""

import numpy as np
import pytest

from arcaudio.procedural.probes import (
    probe_all,
    probe_colour,
    probe_direction,
    probe_envelope,
    probe_kind,
    probe_loudness,
    probe_pan,
    probe_pitch,
    probe_quality,
    probe_tempo,
    probe_waveform,
)

SR = 44100
SECONDS = 2.0
T = np.arange(int(SR * SECONDS)) / SR


def _stereo(x: np.ndarray, left_db: float = 0.0, right_db: float = 0.0) -> np.ndarray:
    """(2, L): the mono signal on both channels, each with its own gain in dB."""
    return np.stack([x * 10 ** (left_db / 20), x * 10 ** (right_db / 20)])


def _sine(hz: float, amplitude: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * T)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- pitch and waveform --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hz", "name"), [(110.0, "A2"), (164.81, "E3"), (220.0, "A3"), (329.63, "E4"),
                                          (440.0, "A4"), (659.26, "E5")])
def test_a_sine_reads_as_a_tone_at_its_pitch(hz, name):
    audio = _stereo(_sine(hz))
    assert probe_all(audio, SR, ["kind", "pitch", "waveform"]) == {"kind": "tone", "pitch": name, "waveform": "sine"}


def test_pitch_is_read_from_the_frequency_not_from_a_fixed_answer():
    # a quarter tone above A4 is still A4, a semitone below E4 (311 Hz) is nearer E4 than A3 in log-frequency
    assert probe_pitch(_stereo(_sine(440 * 2 ** (0.5 / 12))), SR) == "A4"
    assert probe_pitch(_stereo(_sine(311.13)), SR) == "E4"
    assert probe_pitch(_stereo(_sine(120.0)), SR) == "A2"


def _phase(hz: float) -> np.ndarray:
    return (hz * T) % 1.0  # cycles in [0, 1)


@pytest.mark.parametrize("hz", [220.0, 440.0])
def test_waveforms_made_from_their_definitions(hz):
    phase = _phase(hz)
    waves = {
        "sine": np.sin(2 * np.pi * phase),
        "square": np.sign(np.sin(2 * np.pi * phase)),
        "sawtooth": 2 * phase - 1,
        "triangle": 1 - 4 * np.abs(phase - 0.5),
    }
    for name, wave in waves.items():
        assert probe_waveform(_stereo(0.3 * wave), SR) == name, name


# -- chords ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("root", [220.0, 329.63])
def test_major_and_minor_triads(root):
    def triad(third: int) -> np.ndarray:
        return sum(_sine(root * 2 ** (k / 12), 0.15) for k in (0, third, 7))

    major, minor = _stereo(triad(4)), _stereo(triad(3))
    assert probe_quality(major, SR) == "major"
    assert probe_quality(minor, SR) == "minor"
    assert probe_kind(major, SR) == probe_kind(minor, SR) == "chord"


# -- noise colour ----------------------------------------------------------------------------------------------------


def _coloured_noise(exponent: float, seed: int) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as 1 / f^exponent (0 white, 1 pink, 2 brown), shaped in the
    frequency domain, normalised to RMS 0.1."""
    spectrum = np.fft.rfft(_rng(seed).standard_normal(T.size))
    f = np.fft.rfftfreq(T.size, 1 / SR)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n=T.size)
    return 0.1 * x / np.sqrt(np.mean(x**2))


@pytest.mark.parametrize(("exponent", "name"), [(0.0, "white"), (1.0, "pink"), (2.0, "brown")])
def test_noise_colour(exponent, name):
    audio = np.stack([_coloured_noise(exponent, 1), _coloured_noise(exponent, 2)])
    assert probe_colour(audio, SR) == name
    assert probe_kind(audio, SR) == "noise"


def test_brown_noise_by_integration_reads_brown_and_white_reads_white():
    white = _rng(3).standard_normal(T.size)
    brown = np.cumsum(white)
    brown -= np.polyval(np.polyfit(T, brown, 1), T)  # the random walk's drift off
    assert probe_colour(_stereo(0.1 * white / white.std()), SR) == "white"
    assert probe_colour(_stereo(0.1 * brown / brown.std()), SR) == "brown"


# -- tempo -----------------------------------------------------------------------------------------------------------


def _clicks(interval: float, seed: int = 0) -> np.ndarray:
    """A 5 ms burst of decaying noise every `interval` seconds, from t = 0.1 s."""
    x = np.zeros(T.size)
    n = int(0.005 * SR)
    burst = _rng(seed).standard_normal(n) * np.exp(-np.arange(n) / (0.001 * SR))
    for start in np.arange(0.1, SECONDS - 0.01, interval):
        i = int(start * SR)
        x[i:i + n] += burst[: x.size - i]
    return 0.5 * x


@pytest.mark.parametrize("bpm", [80, 100, 120, 140])
def test_a_click_train_on_eighth_notes_reads_as_drums_at_its_tempo(bpm):
    audio = _stereo(_clicks(30.0 / bpm))  # eighth notes: two clicks per beat
    assert probe_tempo(audio, SR) == bpm
    assert probe_kind(audio, SR) == "drums"


# -- sweeps ----------------------------------------------------------------------------------------------------------


def _sweep(f0: float, f1: float) -> np.ndarray:
    """Exponential sweep f(t) = f0 (f1 / f0)^(t / SECONDS), phase integrated analytically."""
    k = np.log(f1 / f0) / SECONDS
    return 0.3 * np.sin(2 * np.pi * f0 * (np.exp(k * T) - 1) / k)


def test_rising_and_falling_sweeps():
    up, down = _stereo(_sweep(200, 1600)), _stereo(_sweep(1600, 200))  # 1.5 octaves per second
    assert probe_direction(up, SR) == "up" and probe_direction(down, SR) == "down"
    assert probe_kind(up, SR) == probe_kind(down, SR) == "sweep"


# -- loudness, pan, envelope -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("db", "name"), [(-16.0, "loud"), (-30.0, "quiet"), (-20.0, "loud"), (-26.0, "quiet")])
def test_loudness_of_a_sine_at_a_known_power(db, name):
    amplitude = np.sqrt(2 * 10 ** (db / 10))  # a sine's mean power is amplitude^2 / 2
    assert probe_loudness(_stereo(_sine(440.0, amplitude)), SR) == name
    noise = _rng(4).standard_normal(T.size)
    assert probe_loudness(_stereo(noise / noise.std() * np.sqrt(10 ** (db / 10))), SR) == name


@pytest.mark.parametrize(("left_db", "right_db", "name"), [(0.0, -15.0, "left"), (-15.0, 0.0, "right"),
                                                           (0.0, 0.0, "center"), (-3.0, 0.0, "center"),
                                                           (0.0, -10.0, "left")])
def test_pan_from_channel_gains(left_db, right_db, name):
    assert probe_pan(_stereo(_sine(330.0), left_db, right_db), SR) == name
    noise = 0.1 * _rng(5).standard_normal(T.size)
    assert probe_pan(_stereo(noise, left_db, right_db), SR) == name


def test_a_hard_panned_signal_with_one_silent_channel():
    x = _sine(440.0)
    assert probe_pan(np.stack([x, np.zeros_like(x)]), SR) == "left"
    assert probe_pan(np.stack([np.zeros_like(x), x]), SR) == "right"


@pytest.mark.parametrize(("gain", "name"), [(np.exp(-T / 0.3), "plucked"), (T / SECONDS, "swelling"),
                                            (np.ones_like(T), "steady"), (np.exp((T - SECONDS) / 0.3), "swelling")])
def test_envelope_shapes(gain, name):
    assert probe_envelope(_stereo(_sine(440.0) * gain), SR) == name
    noise = 0.1 * _rng(6).standard_normal(T.size)
    assert probe_envelope(_stereo(noise * gain), SR) == name
