"""Creative controls: the timing measures against literal cases, beat-aligned loops that repeat without a click,
voice pre-processing, and the CLI / server surfaces."""

import base64
import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from arcaudio.creative.loops import generate_loop, guide_track, loop_seconds, seamless_loop, tempo_prompt
from arcaudio.creative.voice import VoicePrep, prepare_voice, voice_to_audio
from arcaudio.eval.timing import (
    contour_correlation,
    grid_share,
    loop_joint_step_db,
    onset_agreement,
    onset_times,
)
from arcaudio.loading import load

SR = 22050


def clicks(times, seconds=2.0, sr=SR):
    x = np.zeros(round(seconds * sr))
    rng = np.random.default_rng(0)
    burst = rng.standard_normal(round(0.01 * sr)) * np.exp(-np.arange(round(0.01 * sr)) / (0.002 * sr))
    for t in times:
        at = round(t * sr)
        x[at:at + burst.size] += burst[: x.size - at]
    return x


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load("tiny")


def test_onsets_are_found_where_the_hits_are():
    times = [0.1, 0.35, 0.6, 0.85, 1.3, 1.55]
    found = onset_times(clicks(times), SR)
    assert len(found) == len(times)
    assert np.abs(found - np.array(times)).max() <= 0.01
    assert onset_times(np.zeros(SR), SR).size == 0


def test_grid_share_and_onset_agreement_are_literal_shares():
    assert grid_share(np.array([0.0, 0.25, 0.5, 1.0]), bpm=120) == 1.0  # eighths at 120 bpm: every 0.25 s
    assert grid_share(np.array([0.125, 0.375]), bpm=120) == 0.0  # half-way between eighths
    assert grid_share(np.array([0.0, 0.26, 0.3, 0.125]), bpm=120) == 0.5  # 0.26 is within 20 ms, 0.3 is not
    assert math.isnan(grid_share(np.array([]), bpm=120))
    agreement = onset_agreement(np.array([0.1, 0.5, 0.9]), np.array([0.11, 0.5, 2.0, 3.0]))
    assert agreement["precision"] == pytest.approx(2 / 3) and agreement["recall"] == pytest.approx(0.5)
    assert agreement["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_contour_correlation_follows_the_envelope():
    t = np.arange(SR) / SR
    carrier = np.sin(2 * np.pi * 440 * t)
    rising, falling = carrier * 10 ** (-2 * (1 - t)), carrier * 10 ** (-2 * t)  # 40 dB ramps up and down
    assert contour_correlation(rising, rising * 0.5, SR) == pytest.approx(1.0, abs=1e-6)  # gain does not matter
    assert contour_correlation(rising, falling, SR) < -0.9


def test_a_seamless_loop_repeats_without_a_click_where_a_cut_one_clicks():
    t = np.arange(round(1.1 * SR)) / SR
    tone = torch.from_numpy(np.stack([np.sin(2 * np.pi * 333.3 * t)] * 2)).float()  # not a whole number of periods
    loop = round(1.0 * SR)
    cut = loop_joint_step_db(tone[:, :loop], SR)
    closed = loop_joint_step_db(seamless_loop(tone, loop, round(0.01 * SR)), SR)
    assert cut["jump"] > 5 and closed["jump"] < 1.5
    assert closed["level_step_db"] < 1.5  # equal-power fade: at most a small swell on correlated material
    with pytest.raises(ValueError, match="need 22271 samples"):
        seamless_loop(tone[:, :loop], loop, 221)


def test_loop_lengths_tempo_words_and_guides():
    assert loop_seconds(120, bars=2) == 4.0 and loop_seconds(80, beats=3) == 2.25
    assert tempo_prompt("a drum loop", 120) == "a drum loop, 120 bpm"
    assert tempo_prompt("drums at 90 BPM", 120) == "drums at 90 BPM"  # says a tempo already
    for bad, message in [({"bpm": 0, "bars": 1}, "bpm must be"), ({"bpm": 120}, "give bars or beats"),
                         ({"bpm": 120, "beats": 2.5}, "whole number of beats"),
                         ({"bpm": 120, "bars": 1, "beats": 4}, "one of them")]:
        with pytest.raises(ValueError, match=message):
            loop_seconds(**bad)
    for kind in ("click", "drums"):
        guide = guide_track(kind, 100, 2.4, SR)
        assert guide.shape == (2, round(2.4 * SR)) and abs(float(guide.abs().max()) - 0.5) < 1e-6
        assert grid_share(onset_times(guide, SR), bpm=100) == 1.0  # its hits are on the eighth-note grid


def test_generate_loop_lands_the_length_and_refuses_what_does_not_fit(tiny):
    sr = tiny.config.sample_rate
    loop = generate_loop(tiny, "a drum loop", bpm=120, beats=2, steps=2, guide="click", strength=0.7)
    assert loop.audio.shape == (2, sr) and loop.prompt == "a drum loop, 120 bpm" and loop.guide == "click"
    assert torch.isfinite(loop.audio).all()
    with pytest.raises(ValueError, match=r"exceeds this model's 2.97 s window; at most 4 beats fit at 100 bpm"):
        generate_loop(tiny, "drums", bpm=100, bars=2)


def test_voice_preparation_high_passes_normalises_and_emphasises_attacks():
    t = np.arange(SR) / SR
    rumble = 0.3 * np.sin(2 * np.pi * 30 * t)
    syllables = np.sin(2 * np.pi * 300 * t) * (np.mod(t, 0.25) < 0.12) * 0.05
    voice = torch.from_numpy(np.stack([rumble + syllables])).float()
    plain = prepare_voice(voice, SR, VoicePrep(highpass_hz=80)).numpy()[0]
    spectrum = np.abs(np.fft.rfft(plain))
    assert spectrum[30] < 1e-3 * spectrum[300]  # 30 Hz rumble gone, 300 Hz kept
    assert abs(np.abs(plain).max() - 10 ** (-1 / 20)) < 1e-6  # peak -1 dBFS
    emphasised = prepare_voice(voice, SR, VoicePrep(highpass_hz=80, onset_emphasis=1.0)).numpy()[0]
    attack, sustain = slice(round(0.005 * SR), round(0.02 * SR)), slice(round(0.08 * SR), round(0.1 * SR))
    ratio = lambda x: np.abs(x[attack]).mean() / np.abs(x[sustain]).mean()  # noqa: E731
    assert ratio(emphasised) > 1.3 * ratio(plain)


def test_voice_to_audio_keeps_the_voice_length(tiny):
    voice = torch.from_numpy(clicks([0.1, 0.4, 0.7], seconds=1.0)[None]).float()
    (clip,) = voice_to_audio(tiny, voice, SR, "a drum loop", strength=0.6, steps=2)
    assert clip.shape == (2, tiny.config.sample_rate) and torch.isfinite(clip).all()


def test_cli_writes_a_loop_and_checks_its_options(tmp_path, capsys):
    from arcaudio.cli import main

    assert main(["generate", "tiny", "a drum loop", "--bpm", "120", "--beats", "2", "--steps", "2", "--guide",
                 "drums", "--out", str(tmp_path), "--no-progress"]) == 0
    (path,) = tmp_path.glob("*.wav")
    data, rate = sf.read(path, always_2d=True)
    assert "120bpm_loop" in path.name and data.shape[0] == rate  # 2 beats at 120 bpm: 1 s
    assert main(["generate", "tiny", "a", "--bars", "2", "--out", str(tmp_path)]) == 2
    assert "give --bpm too" in capsys.readouterr().err
    assert main(["generate", "tiny", "a", "--bpm", "120", "--seconds", "1", "--out", str(tmp_path)]) == 2
    assert "does not combine with --seconds" in capsys.readouterr().err


def test_server_loop_endpoint(tiny):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from arcaudio.server.app import create_app

    with TestClient(create_app(tiny, "tiny")) as client:
        answer = client.post("/v1/generate/loop", json={"prompt": "drums", "bpm": 120, "beats": 2, "steps": 2,
                                                         "guide": "click", "variations": 2})
        assert answer.status_code == 200, answer.text
        for clip in answer.json()["clips"]:
            data, rate = sf.read(io.BytesIO(base64.b64decode(clip["audio"])), always_2d=True)
            assert data.shape == (rate, 2)
        too_long = client.post("/v1/generate/loop", json={"prompt": "drums", "bpm": 100, "bars": 2})
        assert too_long.status_code == 422 and "at most 4 beats fit" in too_long.json()["detail"]
        bad = client.post("/v1/generate/loop", json={"prompt": "drums", "bpm": 120, "beats": 1.5})
        assert bad.status_code == 422 and "whole number of beats" in bad.json()["detail"]
