"""Reconstruction losses for autoencoder training."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stft_magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """|STFT| with a Hann window and hop n_fft / 4. x (N, L) -> (N, n_fft / 2 + 1, frames)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, return_complex=True)
    return spec.abs()


def spectral_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Spectral convergence + L1 of log magnitudes between two magnitude spectrograms of one resolution, any
    matching shapes (... bins, frames) (Yamamoto et al. 2020)."""
    pred, target = pred.float(), target.float()
    convergence = torch.linalg.norm(target - pred) / torch.linalg.norm(target).clamp_min(eps)
    return convergence + F.l1_loss(torch.log(pred + eps), torch.log(target + eps))


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor, sizes: list[int],
                               eps: float = 1e-5) -> torch.Tensor:
    """Mean over FFT sizes of spectral convergence + L1 of log magnitudes (Yamamoto et al. 2020), each channel
    separately. pred, target (B, C, L)."""
    p, t = pred.float().flatten(0, 1), target.float().flatten(0, 1)  # (B * C, L)
    total = p.new_zeros(())
    for n_fft in sizes:
        total = total + spectral_loss(stft_magnitude(p, n_fft), stft_magnitude(t, n_fft), eps)
    return total / len(sizes)


def frame_energy(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Mean square of non-overlapping frames of `hop` samples (a trailing partial frame is dropped).
    x (B, C, L) -> (B, C, L // hop)."""
    return x.unfold(-1, hop, hop).pow(2).mean(-1)


def log_energy_l1(pred: torch.Tensor, target: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """L1 between log frame energies (B, C, frames), floored at `floor` times each item's loudest target frame."""
    eps = floor * target.amax(dim=(1, 2), keepdim=True).clamp_min(1e-10)
    return (torch.log(pred + eps) - torch.log(target + eps)).abs().mean()


def log_envelope_loss(pred: torch.Tensor, target: torch.Tensor, hops: list[int],
                      floor: float = 1e-6) -> torch.Tensor:
    """Mean over frame sizes of L1 between log frame energies, per channel. pred, target (B, C, L).

    Phase-blind and level-exact: it carries loudness, stereo position and envelope even while the per-bin spectral
    losses, which cannot yet place a tone's few loud bins, pull a young decoder's output level down. The floor is
    `floor` times each item's loudest target frame (-60 dB by default), so silence does not dominate.
    """
    total = pred.new_zeros((), dtype=torch.float32)
    for hop in hops:
        total = total + log_energy_l1(frame_energy(pred.float(), hop), frame_energy(target.float(), hop), floor)
    return total / len(hops)
