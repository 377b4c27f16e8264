"""Reconstruction losses for autoencoder training."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stft_magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """|STFT| with a Hann window and hop n_fft / 4. x (N, L) -> (N, n_fft / 2 + 1, frames)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return spec.abs()


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor, sizes: list[int],
                               eps: float = 1e-5) -> torch.Tensor:
    """Mean over FFT sizes of spectral convergence + L1 of log magnitudes (Yamamoto et al. 2020), each channel
    separately. pred, target (B, C, L)."""
    p, t = pred.float().flatten(0, 1), target.float().flatten(0, 1)  # (B * C, L)
    total = p.new_zeros(())
    for n_fft in sizes:
        mp, mt = stft_magnitude(p, n_fft), stft_magnitude(t, n_fft)
        convergence = torch.linalg.norm(mt - mp) / torch.linalg.norm(mt).clamp_min(eps)
        log_mag = F.l1_loss(torch.log(mp + eps), torch.log(mt + eps))
        total = total + convergence + log_mag
    return total / len(sizes)
