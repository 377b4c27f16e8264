"""The partials codec (models/partials_autoencoder.py) against literal signals: the Hann kernel against a numpy DFT,
each latent channel against the quantity it is defined to hold, and round trips that keep pitch, partials,
level, stereo balance and onsets."""

import math

import numpy as np
import pytest
import torch

from arcaudio.config import AutoencoderConfig, preset
from arcaudio.eval.partials import partial_report
from arcaudio.models.autoencoder import AudioAutoencoder
from arcaudio.models.partials_autoencoder import hann_kernel, latent_layout

SR = 44100


@pytest.fixture(scope="module")
def codec() -> AudioAutoencoder:
    return AudioAutoencoder(preset("small-partials").autoencoder)


def _round_trip(codec, audio: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.tensor(audio, dtype=torch.float32)[None]
    with torch.no_grad():
        z = codec.encode(x, sample=False)
        return z, codec.decode(z)[0].numpy()


def _tone(hz: float, seconds: float = 131072 / SR, partials=(1.0,)) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return sum(a * np.sin(2 * np.pi * (i + 1) * hz * t) for i, a in enumerate(partials))


def test_hann_kernel_matches_a_dft_of_the_window():
    n = 4096
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    for d in (0.0, 0.3, 1.0, 1.5, 2.0, 2.7, 3.5):
        want = abs(np.sum(window * np.exp(2j * np.pi * d * np.arange(n) / n))) / window.sum()
        assert float(hann_kernel(torch.tensor(d, dtype=torch.float64))) == pytest.approx(want, abs=2e-4)


def test_latent_channels_hold_frequencies_balance_and_levels(codec):
    config = codec.config
    layout = latent_layout(config)
    assert config.latent_dim == 44 and layout["envelope"].stop == 44
    tone = 0.3 * _tone(330.0)
    left, right = tone, tone * 10 ** (-9 / 20)  # 9 dB to the left
    z, _ = _round_trip(codec, np.stack([left, right]))
    frame = z[0, :, 30]
    freqs = 440 * 2 ** (2 * frame[layout["frequency"]])
    mags = frame[layout["magnitude"]]
    loudest = int(mags.argmax())
    assert float(freqs[loudest]) == pytest.approx(330.0, rel=1e-3)
    assert int((mags > mags.min() + 0.1).sum()) == 1  # a sine is one partial; the other slots are silent
    assert float(frame[layout["balance"]]) * 15 == pytest.approx(9.0, abs=0.05)
    level = 10 * math.log10(np.mean((left**2 + right**2) / 2))
    assert float(frame[layout["envelope"]].mean()) * 20 - 30 == pytest.approx(level, abs=0.2)


def test_sawtooth_round_trip_keeps_its_partials(codec):
    """The issue's check: a 165 Hz sawtooth's first 10 partials within 1 % and no sideband above -30 dB."""
    saw = 0.3 * _tone(165.0, partials=[1 / k for k in range(1, 60)])
    _, out = _round_trip(codec, np.stack([saw, saw]))
    report = partial_report(out, SR, 165.0)
    assert len(report) == 10
    assert max(abs(p.error) for p in report) < 0.01
    assert max(p.sideband_db for p in report) < -30
    levels = [10 * math.log10(np.mean(out[:, 20000:-20000] ** 2)), 10 * math.log10(np.mean(saw[20000:-20000] ** 2))]
    assert levels[0] == pytest.approx(levels[1], abs=1.0)


def test_a_low_minor_triad_keeps_three_notes(codec):
    """A2 minor: 110, 130.8 and 164.8 Hz, 21 Hz apart at the closest: separate peaks at n_fft 8192."""
    notes = [110.0, 110.0 * 2 ** (3 / 12), 110.0 * 2 ** (7 / 12)]
    chord = 0.2 * sum(_tone(f) for f in notes)
    _, out = _round_trip(codec, np.stack([chord, chord]))
    segment = slice(20000, 20000 + 65536)
    freq = np.fft.rfftfreq(65536, 1 / SR)
    for signal in (chord, out[0]):
        power = np.abs(np.fft.rfft(signal[segment] * np.hanning(65536))) ** 2
        for f in notes:  # each note: its own peak, at its frequency, within 6 dB of the loudest
            near = np.flatnonzero(np.abs(freq - f) < 0.02 * f)
            peak = near[np.argmax(power[near])]
            assert abs(freq[peak] - f) < 1.0  # the FFT bin: 0.67 Hz
            assert 10 * math.log10(power[peak] / power.max()) > -6


def test_a_click_train_keeps_its_onsets(codec):
    """Noise bursts every 0.25 s: the decoded audio's level rises at each burst, within a block (11.6 ms)."""
    rng = np.random.default_rng(0)
    n = 131072
    x = np.zeros(n)
    starts = (np.arange(0.1, 2.9, 0.25) * SR).astype(int)
    for s in starts:
        x[s:s + 2000] += rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    _, out = _round_trip(codec, np.stack([x, x]) * 0.3)
    energy = np.convolve(out[0] ** 2, np.ones(256) / 256, mode="same")
    for s in starts[1:-1]:
        before, after = energy[s - 1500:s - 600].mean(), energy[s:s + 800].mean()
        assert 10 * math.log10(after / before) > 15, f"burst at {s / SR:.2f} s"


def test_silence_stays_silent_and_config_is_checked(codec):
    z, out = _round_trip(codec, np.zeros((2, 131072)))
    assert np.abs(out).max() < 1e-4 and bool(torch.isfinite(z).all())
    base = dict(type="partials", c_mults=[1], strides=[1], n_fft=8192, hop_length=2048, partials=16, noise_bands=7,
                envelope_blocks=4)
    with pytest.raises(ValueError, match="latent_dim 40 must be .* = 44"):
        AutoencoderConfig(**base, latent_dim=40).validate()
    with pytest.raises(ValueError, match="n_fft 2 or 4 times"):
        AutoencoderConfig(**{**base, "n_fft": 3000}, latent_dim=44).validate()
