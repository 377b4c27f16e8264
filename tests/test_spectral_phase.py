"""Phase from magnitudes (models/spectral_phase.py) and the partial measurement (eval/partials.py), against
literal signals: sinusoids, a band-limited sawtooth, amplitude-modulated tones with known sidebands."""

import math

import numpy as np
import pytest
import torch

from arcaudio.config import AutoencoderConfig
from arcaudio.eval.partials import partial_report
from arcaudio.models.autoencoder import AudioAutoencoder
from arcaudio.models.spectral_phase import _nearest_peak, peak_frequencies, peak_locked_phase

SR, N_FFT, HOP = 44100, 2048, 512


def _sawtooth(f0: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, int(0.45 * SR / f0) + 1)) * 0.3


def _resynthesise(x: np.ndarray, phase_fn) -> np.ndarray:
    """STFT magnitudes of x (L,) -> phase_fn(magnitude) -> inverse STFT, float64 throughout."""
    signal = torch.from_numpy(x)
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    magnitude = torch.stft(signal, N_FFT, HOP, window=window, return_complex=True).abs()
    spec = torch.polar(magnitude, phase_fn(magnitude))
    return torch.istft(spec, N_FFT, HOP, window=window, length=x.size).numpy()


def test_partial_report_reads_known_frequencies_and_sidebands():
    t = np.arange(2 * SR) / SR
    detuned = 165.0 * 1.004  # +0.4 %
    clean = np.sin(2 * np.pi * detuned * t)
    report = partial_report(clean, SR, 165.0, count=1)
    assert report[0].error == pytest.approx(0.004, abs=1e-4)
    assert report[0].sideband_db < -80
    # amplitude modulation at 43 Hz with depth m: sidebands at +-43 Hz, each m/2 of the carrier's amplitude
    depth = 0.2
    modulated = (1 + depth * np.cos(2 * np.pi * 43.0 * t)) * np.sin(2 * np.pi * 440.0 * t)
    report = partial_report(modulated, SR, 440.0, count=1)
    assert report[0].sideband_db == pytest.approx(20 * math.log10(depth / 2), abs=0.5)  # -20 dB


def test_partial_report_refuses_short_audio():
    with pytest.raises(ValueError, match="samples"):
        partial_report(np.zeros(1000), SR, 165.0)


def test_peak_frequencies_are_the_parabola_vertex():
    rng = np.random.default_rng(0)
    magnitude = torch.from_numpy(rng.uniform(0.01, 1.0, (1, 40, 3)))
    is_peak, frequency = peak_frequencies(magnitude, floor_db=-200.0)
    log_mag = np.log(magnitude.numpy()[0] + 1e-9)
    for k in range(1, 39):
        for f in range(3):
            a, b, c = log_mag[k - 1, f], log_mag[k, f], log_mag[k + 1, f]
            peak = b >= a and b > c
            assert bool(is_peak[0, k, f]) == peak
            want = k + float(np.clip(0.5 * (a - c) / (a - 2 * b + c), -0.5, 0.5)) if peak else k
            assert float(frequency[0, k, f]) == pytest.approx(want, abs=1e-9)


def test_every_bin_belongs_to_its_nearest_peak():
    rng = np.random.default_rng(1)
    is_peak = torch.from_numpy(rng.random((2, 30, 5)) < 0.15)
    is_peak[0, :, 4] = False  # a frame with no peak
    owner = _nearest_peak(is_peak).numpy()
    for b in range(2):
        for f in range(5):
            peaks = np.flatnonzero(is_peak[b, :, f].numpy())
            for k in range(30):
                want = -1 if peaks.size == 0 else int(peaks[np.argmin(np.abs(peaks - k))])  # ties: the lower
                assert owner[b, k, f] == want


@pytest.mark.parametrize("bin_position", [40.0, 40.3, 57.5, 200.81])
def test_a_sinusoid_comes_back_at_its_frequency_and_level(bin_position):
    freq = bin_position * SR / N_FFT
    t = np.arange(SR) / SR
    x = 0.5 * np.sin(2 * np.pi * freq * t + 0.3)
    y = _resynthesise(x, lambda m: peak_locked_phase(m, N_FFT, HOP))
    report = partial_report(y, SR, freq, count=1)
    assert abs(report[0].error) < 5e-4
    assert report[0].sideband_db < -40
    middle = slice(SR // 4, 3 * SR // 4)
    assert np.sqrt(np.mean(y[middle] ** 2)) == pytest.approx(0.5 / math.sqrt(2), rel=0.02)


def test_sawtooth_partials_survive_and_bin_centre_phases_do_not():
    """The issue's check on true magnitudes: the first 10 partials of a 165 Hz sawtooth within 1 % and every
    sideband below -30 dB. Advancing each bin at its own centre frequency instead (no peak locking) smears them."""
    x = _sawtooth(165.0)
    locked = partial_report(_resynthesise(x, lambda m: peak_locked_phase(m, N_FFT, HOP)), SR, 165.0)
    assert max(abs(p.error) for p in locked) < 0.005
    assert max(p.sideband_db for p in locked) < -35

    def bin_centre(magnitude):
        k = torch.arange(magnitude.shape[-2], dtype=magnitude.dtype)[:, None]
        frames = torch.arange(1, magnitude.shape[-1] + 1, dtype=magnitude.dtype)
        return 2 * math.pi * HOP / N_FFT * k * frames

    unlocked = partial_report(_resynthesise(x, bin_centre), SR, 165.0)
    assert max(p.sideband_db for p in unlocked) > -20


def test_phase_depends_only_on_magnitudes_and_keeps_shape():
    magnitude = torch.rand(3, 2, N_FFT // 2 + 1, 7)
    phase = peak_locked_phase(magnitude, N_FFT, HOP)
    assert phase.shape == magnitude.shape
    assert torch.equal(phase, peak_locked_phase(magnitude.clone(), N_FFT, HOP))
    with pytest.raises(ValueError, match="1025"):
        peak_locked_phase(torch.rand(1, 100, 4), N_FFT, HOP)


def test_peak_locked_decoder_predicts_magnitudes_only():
    base = dict(type="spectral", io_channels=2, channels=16, c_mults=[1, 2], strides=[2, 2], latent_dim=4,
                n_fft=256, hop_length=64)
    learned = AudioAutoencoder(AutoencoderConfig(**base))
    locked = AudioAutoencoder(AutoencoderConfig(**base, phase="peak-locked"))
    assert learned.decoder.layers[-1].out_channels == 2 * 2 * 129
    assert locked.decoder.layers[-1].out_channels == 2 * 129
    assert locked.decode(torch.randn(1, 4, 6)).shape == (1, 2, 6 * 256)
    with pytest.raises(ValueError, match="autoencoder.phase 'griffin'"):
        AutoencoderConfig(**base, phase="griffin").validate()
