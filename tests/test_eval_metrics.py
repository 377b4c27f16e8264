"""Set-level metrics and the fixed stats embedding, against closed forms and second implementations."""

import numpy as np
import pytest

from arcaudio.eval.distribution import conditional_diversity, frechet_distance, standardiser
from arcaudio.eval.embedders.stats import mel_filterbank, stats_embedding


def _fd_via_eigenvalues(x: np.ndarray, y: np.ndarray) -> float:
    """Second implementation: tr((S_x S_y)^1/2) = sum of square roots of the (real, >= 0) eigenvalues of S_x S_y."""
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    eig = np.linalg.eigvals(s_x @ s_y).real.clip(0)
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.sqrt(eig).sum())


def test_frechet_distance_matches_a_second_implementation_and_closed_forms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    y = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 0.5
    assert frechet_distance(x, y) == pytest.approx(_fd_via_eigenvalues(x, y), rel=1e-6)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    a, b = rng.normal(1.0, 2.0, size=(1000, 1)), rng.normal(-1.0, 0.5, size=(1000, 1))  # 1-D: (dmu)^2 + (ds)^2
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(x[:1], y)


def test_conditional_diversity():
    same = np.ones((4, 3))
    orthogonal = np.eye(3)
    assert conditional_diversity([same]) == pytest.approx(0.0)
    assert conditional_diversity([orthogonal]) == pytest.approx(1.0)
    assert conditional_diversity([same, orthogonal]) == pytest.approx(0.5)
    z = standardiser(np.array([[0.0, 10.0], [2.0, 30.0]]))
    assert np.allclose(z(np.array([[1.0, 20.0]])), 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        conditional_diversity([np.ones((1, 3))])


def test_mel_filterbank_peaks_at_its_centres():
    fb = mel_filterbank(44100, 2048, 64)
    assert fb.shape == (64, 1025) and fb.min() >= 0 and fb.max() <= 1
    assert np.all(fb.max(1) > 0.5)  # every filter catches at least one bin near its peak
    assert np.all(np.diff(fb.argmax(1)) >= 0)  # centres rise with the band index


def test_stats_embedding_sees_level_pitch_and_stereo_position():
    sr, t = 44100, np.arange(44100) / 44100
    tone = lambda f: np.sin(2 * np.pi * f * t)  # noqa: E731
    centre = np.stack([tone(440), tone(440)]) * 0.1
    e = stats_embedding(centre, sr)
    assert e.shape == (2 * 64 + 11,)
    louder = stats_embedding(centre * 10, sr)
    assert louder[-3] - e[-3] == pytest.approx(2.0, abs=1e-3)  # frame log10-energy mean: +20 dB
    low = stats_embedding(np.stack([tone(110)] * 2) * 0.1, sr)
    high = stats_embedding(np.stack([tone(3000)] * 2) * 0.1, sr)
    assert np.argmax(low[:64]) < np.argmax(e[:64]) < np.argmax(high[:64])
    left = stats_embedding(np.stack([tone(440), 0.1 * tone(440)]) * 0.1, sr)
    band = int(np.argmin(e[128:136]))  # the coarse band holding 440 Hz: side/mid from about -13 (centre) ...
    assert e[128 + band] < -10 and left[128 + band] == pytest.approx(2 * np.log10(0.45 / 0.55), abs=0.01)
