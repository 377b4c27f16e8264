"""The harmonic codec (models/harmonic_autoencoder.py) against literal signals: the voice grouping on hand-made
peak lists, each latent channel against the quantity it is defined to hold, and round trips that keep a
sawtooth's partials, a triad's three notes and every probed attribute of procedural clips."""

import math

import numpy as np
import pytest
import torch

from arcaudio.config import AutoencoderConfig, preset
from arcaudio.eval.partials import partial_report
from arcaudio.models.autoencoder import AudioAutoencoder
from arcaudio.models.harmonic_autoencoder import f0_channels, f0_from_channels, group_voices, harmonic_layout
from arcaudio.procedural.probes import score
from arcaudio.procedural.synth import make_clip

SR = 44100
LENGTH = 131072


@pytest.fixture(scope="module")
def codec() -> AudioAutoencoder:
    return AudioAutoencoder(preset("small-harmonic").autoencoder)


@pytest.fixture(scope="module")
def absolute_codec() -> AudioAutoencoder:
    config = preset("small-harmonic").autoencoder
    config.voice_f0 = "absolute"  # the layout of the first harmonic-codec weights
    return AudioAutoencoder(config)


def _round_trip(codec, audio: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    x = torch.tensor(np.asarray(audio), dtype=torch.float32)[None]
    with torch.no_grad():
        z = codec.encode(x, sample=False)
        return z, codec.decode(z)[0].numpy()


def _notes(hz_levels, harmonics=(1.0,)) -> np.ndarray:
    """Stereo (2, LENGTH): each (f0, level) of `hz_levels` with harmonic n at level * harmonics[n - 1]."""
    t = np.arange(LENGTH) / SR
    x = sum(level * a * np.sin(2 * np.pi * (n + 1) * hz * t)
            for hz, level in hz_levels for n, a in enumerate(harmonics) if (n + 1) * hz < 0.45 * SR)
    return np.stack([x, x])


def test_peaks_group_into_voices_by_hand():
    # bins: a tone at 10 with harmonics 2-4 (4 slightly sharp), a note at 12.6 with its 3rd harmonic, one at 15
    frequency = torch.tensor([10.0, 12.6, 15.0, 20.0, 30.0, 37.8, 40.3, 0.0])
    magnitude = torch.tensor([1.0, 0.5, 0.25, 0.5, 0.3, 0.1, 0.2, 0.0])
    order = torch.cat([frequency[:-1].argsort(), torch.tensor([7])])
    f0, levels = group_voices(frequency[order].clone().index_fill_(0, torch.tensor([7]), 41.0),
                              magnitude[order], voices=3, harmonics=4, silent_f0=99.0)
    # voice 1: 10, 20, 30, 40.3 (n = 4: 0.3 bins off, within 0.5 + 0.2); f0 the power-weighted mean of f / n
    weights = torch.tensor([1.0, 0.5, 0.3, 0.2]) ** 2
    want = (weights * torch.tensor([10.0, 10.0, 10.0, 40.3 / 4])).sum() / weights.sum()
    assert float(f0[0]) == pytest.approx(float(want), rel=1e-6)
    assert levels[0].tolist() == pytest.approx([1.0, 0.5, 0.3, 0.2])
    assert float(f0[1]) == pytest.approx(12.6, rel=1e-6)  # 37.8 = 3 x 12.6 joins it as harmonic 3
    assert levels[1].tolist() == pytest.approx([0.5, 0.0, 0.1, 0.0])
    assert float(f0[2]) == pytest.approx(15.0) and levels[2].tolist() == pytest.approx([0.25, 0, 0, 0])
    # nothing sounding: the first voice sits at silent_f0, the next ones at the previous voice's f0
    f0, levels = group_voices(torch.ones(4), torch.zeros(4), voices=2, harmonics=3, silent_f0=99.0)
    assert f0.tolist() == [99.0, 99.0] and not levels.any()


def test_a_bright_tones_upper_harmonics_do_not_start_voices():
    frequency = torch.arange(1, 9, dtype=torch.float32) * 20.0  # harmonics 1-8 of 20 bins
    f0, levels = group_voices(frequency, 1.0 / torch.arange(1, 9), voices=2, harmonics=4, silent_f0=5.0)
    assert f0.tolist() == pytest.approx([20.0, 20.0])  # harmonics 5-8 dropped; voice 2 silent at voice 1's f0
    assert levels[0].tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4]) and not levels[1].any()


def test_latent_channels_hold_f0s_harmonic_levels_balance_and_levels(codec):
    config = codec.config
    layout = harmonic_layout(config)
    assert config.latent_dim == 63 and layout["envelope"].stop == 63
    saw = 0.1 * _notes([(165.0, 1.0)], harmonics=[1 / n for n in range(1, 17)])
    left, right = saw[0], saw[1] * 10 ** (-9 / 20)  # 9 dB to the left
    z, _ = _round_trip(codec, np.stack([left, right]))
    frame = z[0, :, 30]
    assert config.voice_f0 == "interval"  # voice 1 in octaves from A4; the silent voices 0 semitones above it
    assert frame[layout["f0"]].tolist() == pytest.approx([math.log2(165.0 / 440.0), 0.0, 0.0], abs=1.5e-3)
    levels_db = 20 / math.log(10) * (3 * frame[layout["harmonics"]].reshape(3, 16) + 2)  # ln |S| = 3 x + 2
    relative = (levels_db[0] - levels_db[0, 0]).numpy()
    assert relative == pytest.approx(-20 * np.log10(np.arange(1, 17)), abs=0.5)  # a sawtooth's 1 / n
    assert (levels_db[1:] <= 20 / math.log(10) * math.log(1e-3) + 1e-3).all()  # one voice: the others silent
    assert float(frame[layout["balance"]]) * 15 == pytest.approx(9.0, abs=0.05)
    level = 10 * math.log10(np.mean((left**2 + right**2) / 2))
    assert float(frame[layout["envelope"]].mean()) * 20 - 30 == pytest.approx(level, abs=0.3)


def test_a_sawtooth_round_trip_keeps_its_partials_exactly_harmonic(codec):
    saw = 0.1 * _notes([(165.0, 1.0)], harmonics=[1 / n for n in range(1, 300)])
    _, decoded = _round_trip(codec, saw)
    report = partial_report(decoded, SR, 165.0, count=10)
    assert max(abs(p.error) for p in report) < 0.001  # within 0.1 % of n f0 (the issue asks 1 %)
    assert max(p.sideband_db for p in report) < -30.0


@pytest.mark.parametrize("layout", ["interval", "absolute"])
def test_a_triad_is_three_voices_at_its_notes(codec, absolute_codec, layout):
    codec = codec if layout == "interval" else absolute_codec
    notes = [220.0 * 2 ** (s / 12) for s in (0, 3, 7)]  # A3 minor, triangle waves (odd harmonics at 1 / n^2)
    triangle = [(1 / n**2 if n % 2 else 0.0) for n in range(1, 12)]
    z, decoded = _round_trip(codec, 0.1 * _notes([(hz, 1.0) for hz in notes], harmonics=triangle))
    channels = z[0, harmonic_layout(codec.config)["f0"], 30]
    if layout == "interval":  # A3 is one octave below A4; then 3 and 4 semitones: 2.5 ln(1 + s / 6)
        want = [-1.0, 2.5 * math.log(1 + 3 / 6), 2.5 * math.log(1 + 4 / 6)]
    else:
        want = [math.log2(hz / 440.0) / 2 for hz in notes]
    assert channels.tolist() == pytest.approx(want, abs=3e-3)
    attributes = {"kind": "chord", "quality": "minor", "pitch": "A3", "waveform": "triangle", "loudness": "loud",
                  "pan": "center", "envelope": "steady"}
    assert score(decoded, SR, attributes) | {"loudness": True} == dict.fromkeys(score(decoded, SR, attributes), True)


def test_harmonics_at_or_above_nyquist_are_silent(codec):
    layout = harmonic_layout(codec.config)
    z = torch.full((1, codec.config.latent_dim, 8), -3.0)
    z[:, layout["f0"]] = torch.tensor([math.log2(8000.0 / 440), 0.0, 0.0])[:, None]  # harmonics 3+ above 22.05 kHz
    z[:, layout["harmonics"].start:layout["harmonics"].start + 16] = 1.0
    frequency, magnitude, _, _ = codec.decoder.synthesis_parameters(z)
    hz = frequency[0, 0, :16] * SR / codec.config.n_fft
    assert hz[:3].tolist() == pytest.approx([8000.0, 16000.0, 24000.0], rel=1e-5)  # exact multiples
    assert (magnitude[0, 0, :2] > 0).all() and not magnitude[0, 0, 2:16].any()


@pytest.mark.parametrize("layout", ["interval", "absolute"])
def test_f0_channels_invert_and_clamp_what_a_dit_generates(layout):
    f0 = torch.tensor([[110.0, 130.8, 164.8], [440.0, 440.0, 440.0], [55.0, 3520.0, 17000.0]])  # Hz
    back = f0_from_channels(f0_channels(f0, layout), layout)
    assert back.flatten().tolist() == pytest.approx(f0.flatten().tolist(), rel=1e-5)
    wild = f0_from_channels(torch.tensor([[40.0, 30.0, -30.0]]), layout)  # far outside any training latent
    assert torch.isfinite(wild).all() and (wild > 0).all()
    if layout == "interval":  # root clamped to 12 octaves above A4, intervals to +-120 semitones
        assert wild[0].tolist() == pytest.approx([440 * 2**12, 440 * 2**22, 440 * 2**12], rel=1e-5)


def test_procedural_clips_keep_every_probed_attribute(codec):
    wrong = []
    for i in range(24):
        clip, attributes, _ = make_clip(11, i)
        audio = np.zeros((2, LENGTH), dtype=np.float32)
        audio[:, :clip.shape[-1]] = clip
        _, decoded = _round_trip(codec, audio)
        result = score(decoded[:, :clip.shape[-1]], SR, attributes)
        wrong += [(attributes["kind"], name) for name, ok in result.items() if not ok]
    # the fine envelope's 11.6 ms blocks lose some of a loop's weakest hits: 2 of these 24 clips' drums read as
    # noise (kind 0.97 on 300 clips); every other attribute of every clip is kept
    assert set(wrong) <= {("drums", "kind")} and len(wrong) <= 2, wrong


def test_latent_dim_must_match_voices_and_harmonics():
    with pytest.raises(ValueError, match=r"voices \* \(1 \+ harmonics\) \+ noise_bands \+ 1 \+ envelope_blocks = 63"):
        AutoencoderConfig(type="harmonic", c_mults=[1], strides=[1], latent_dim=44, n_fft=8192, hop_length=2048,
                          voices=3, harmonics=16, noise_bands=7, envelope_blocks=4).validate()


def test_an_unknown_f0_layout_is_named_with_the_valid_ones():
    config = preset("small-harmonic").autoencoder
    config.voice_f0 = "relative"
    with pytest.raises(ValueError, match=r"voice_f0 'relative' is not one of \('absolute', 'interval'\)"):
        config.validate()
