"""Autoencoder reconstruction losses against literal numpy formulas."""

import numpy as np
import pytest
import torch

from arcaudio.training.audio_losses import log_envelope_loss, multi_resolution_stft_loss


def _signals(seed: int = 0, shape=(2, 2, 3000)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def _np_stft_mag(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Centred (reflect-padded) STFT magnitude with a periodic Hann window and hop n_fft / 4. x (L,) -> (F, T)."""
    hop = n_fft // 4
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(x, n_fft // 2, mode="reflect")
    frames = [padded[i:i + n_fft] * window for i in range(0, len(padded) - n_fft + 1, hop)]
    return np.abs(np.fft.rfft(np.stack(frames, 1), axis=0))


def test_multi_resolution_stft_loss_matches_formula():
    pred, target = _signals()
    sizes, eps = [256, 64], 1e-3
    expected = 0.0
    for n in sizes:
        mp = np.stack([_np_stft_mag(s, n) for s in pred.reshape(-1, pred.shape[-1]).numpy()])
        mt = np.stack([_np_stft_mag(s, n) for s in target.reshape(-1, target.shape[-1]).numpy()])
        expected += np.linalg.norm(mt - mp) / np.linalg.norm(mt) + np.abs(np.log(mp + eps) - np.log(mt + eps)).mean()
    got = multi_resolution_stft_loss(pred, target, sizes, eps=eps)
    assert float(got) == pytest.approx(expected / len(sizes), rel=1e-5)
    assert float(multi_resolution_stft_loss(target, target, sizes)) == 0.0


def test_log_envelope_loss_matches_formula():
    pred, target = _signals(1)
    hops, floor = [1000, 300], 1e-6
    expected = 0.0
    for hop in hops:
        n = target.shape[-1] // hop
        ep = (pred[..., : n * hop].numpy().reshape(2, 2, n, hop) ** 2).mean(-1)
        et = (target[..., : n * hop].numpy().reshape(2, 2, n, hop) ** 2).mean(-1)
        eps = floor * et.max(axis=(1, 2), keepdims=True)
        expected += np.abs(np.log(ep + eps) - np.log(et + eps)).mean()
    assert float(log_envelope_loss(pred, target, hops, floor)) == pytest.approx(expected / len(hops), rel=1e-5)


def test_log_envelope_loss_measures_level_and_stereo_position():
    t = torch.arange(8192) / 44100
    tone = torch.sin(2 * torch.pi * 441 * t)[None, None].repeat(1, 2, 1)  # (1, 2, L), stereo centre
    assert float(log_envelope_loss(0.5 * tone, tone, [2048])) == pytest.approx(np.log(4), rel=1e-4)  # -6 dB
    left = tone * torch.tensor([1.0, 0.1])[None, :, None]
    assert float(log_envelope_loss(tone, left, [2048])) == pytest.approx(np.log(100) / 2, rel=1e-3)  # R 20 dB off
    shifted = torch.roll(tone, 1234, -1)  # phase-blind: a time shift of a steady tone costs nothing
    assert float(log_envelope_loss(shifted, tone, [2048])) < 1e-3
