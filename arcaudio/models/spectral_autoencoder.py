"""The spectral VAE: an encoder and decoder that work on STFT frames instead of waveform samples.

An Oobleck VAE must learn to draw every waveform cycle at 44.1 kHz; on a CPU, in minutes, it learned loudness,
envelope and tempo but not stereo position, and its latents were close to white noise over time (lag-1
autocorrelation -0.12: it encodes phase), which a DiT cannot model. This VAE is for models trained from nothing on
small compute:

- the encoder reads log-magnitudes only, so its latents are phase-free and smooth over time;
- the decoder predicts, per channel, STFT bin and frame, a log-magnitude and a phase *advance*: the phase of bin k
  grows by 2 pi k hop / n_fft per frame (the bin's centre frequency) plus a learned deviation in (-pi, pi), and
  is accumulated over frames: a partial at a bin's centre frequency is coherent from the first step, one between
  bins needs the learned deviations;
- the waveform is the inverse STFT (Hann window, overlap-add).

Measured on the procedural set after 1000 steps (8 CPU minutes): latents smooth over time (lag-1 autocorrelation
0.86), round trips keep stereo position, loudness, envelope, tempo and sweep direction (80-100 %), but partials come
back with sidebands (the learned phase deviations are not yet coherent across frames), so pitch and waveform do not.

With `phase="peak-locked"` the decoder predicts log-magnitudes only (in the encoder's normalised units) and the
phase follows from them (`spectral_phase.py`); it can then be trained on magnitudes alone
(`autoencoder.domain=magnitude`). Measured (`small-spectral`, 3000 steps): still no pitch: the head has to learn a
magnitude template per note, and did not in CPU minutes. The built-in model uses `partials_autoencoder.py`.

Windows and bin frequencies are computed per call, not held as buffers: loading builds models on the meta device.

Shapes: audio (B, C, L) with L a multiple of hop * prod(strides) -> STFT frames F = L / hop ->
latents (B, 2 * latent_dim, F / prod(strides)) from the encoder (mean | scale), and back.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AutoencoderConfig
from .spectral_phase import peak_locked_phase

LOG_MAG_FLOOR = 1e-4  # added to |STFT| before the log in the encoder
LOG_MAG_CENTRE, LOG_MAG_SPREAD = -5.0, 4.0  # encoder input = (log |S| - centre) / spread; decoder output offset
LOG_MAG_MAX = 8.0  # the decoder's log-magnitudes are clamped here (|S| <= e^8): no overflow early in training
LOG_MAG_MIN = -30.0  # ... and here (|S| >= 1e-13, silence): below, gradients ~ |S| turn denormal and crawl


class FrameResBlock(nn.Module):
    """x + conv1(gelu(conv5(groupnorm(x)))): length-preserving. (B, W, F) -> (B, W, F)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, width)
        self.conv = nn.Conv1d(width, width, 5, padding=2)
        self.proj = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.gelu(self.conv(self.norm(x))))


def _widths(config: AutoencoderConfig) -> list[int]:
    return [config.channels * m for m in config.c_mults]


class SpectralEncoder(nn.Module):
    """audio (B, C, L) -> (B, 2 * latent_dim, L / downsampling_ratio): mean | pre-softplus scale."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        bins = config.n_fft // 2 + 1
        widths = _widths(config)
        layers: list[nn.Module] = [nn.Conv1d(config.io_channels * bins, widths[0], config.in_kernel,
                                             padding=config.in_kernel // 2)]
        for i, stride in enumerate(config.strides):
            out = widths[min(i + 1, len(widths) - 1)]
            layers += [FrameResBlock(widths[i]), nn.Conv1d(widths[i], out, 2 * stride, stride, stride // 2)]
        layers += [FrameResBlock(widths[-1]), nn.GELU(), nn.Conv1d(widths[-1], 2 * config.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def magnitudes(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, C, L) -> |STFT| (B, C, bins, L / hop), float32: the frames the decoder reproduces."""
        c = self.config
        b, channels, length = audio.shape
        window = torch.hann_window(c.n_fft, device=audio.device)
        spec = torch.stft(audio.float().reshape(b * channels, length), c.n_fft, c.hop_length, window=window,
                          return_complex=True)  # (B * C, bins, L / hop + 1)
        spec = spec[..., : length // c.hop_length]  # centred frames; the last one only sees the padding
        return spec.abs().reshape(b, channels, spec.shape[1], spec.shape[2])

    def log_magnitudes(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, C, L) -> normalised log |STFT| (B, C * bins, L / hop), in float32."""
        magnitude = self.magnitudes(audio)  # (B, C, bins, F)
        logmag = (torch.log(magnitude + LOG_MAG_FLOOR) - LOG_MAG_CENTRE) / LOG_MAG_SPREAD
        return logmag.flatten(1, 2)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.log_magnitudes(audio)  # (B, C * bins, F)
        return self.layers(x.to(self.layers[0].weight.dtype))


class SpectralDecoder(nn.Module):
    """latents (B, latent_dim, T) -> audio (B, C, T * downsampling_ratio)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        self.bins = config.n_fft // 2 + 1
        widths = _widths(config)
        layers: list[nn.Module] = [nn.Conv1d(config.latent_dim, widths[-1], 3, padding=1)]
        for i in reversed(range(len(config.strides))):
            stride, width_in = config.strides[i], widths[min(i + 1, len(widths) - 1)]
            layers += [FrameResBlock(width_in), nn.ConvTranspose1d(width_in, widths[i], 2 * stride, stride,
                                                                   stride // 2)]
        self.parts = 2 if config.phase == "learned" else 1  # log-magnitude (| phase deviation) per bin
        layers += [FrameResBlock(widths[0]), FrameResBlock(widths[0]), nn.GELU(),
                   nn.Conv1d(widths[0], config.io_channels * self.parts * self.bins, 1)]
        self.layers = nn.Sequential(*layers)

    def _heads(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, latent_dim, T) -> (B * C, parts, bins, F) float32: log-magnitude (| phase deviation)."""
        h = self.layers(latents).float()  # (B, C * parts * bins, F)
        return h.reshape(h.shape[0] * self.config.io_channels, self.parts, self.bins, h.shape[-1])

    def _magnitude(self, head: torch.Tensor) -> torch.Tensor:
        """The head's log-magnitude channel -> |S|. A peak-locked decoder's head works in the encoder's normalised
        units (log |S| = centre + spread * head), so that a loud partial (log |S| ~ 6 at n_fft 4096) is ~3 units
        from the floor, not ~11: at Adam's ~lr per step, the learned decoder's peaks otherwise grow for ~20k steps."""
        scale = LOG_MAG_SPREAD if self.config.phase == "peak-locked" else 1.0
        return torch.exp((scale * head + LOG_MAG_CENTRE).clamp(LOG_MAG_MIN, LOG_MAG_MAX))

    def magnitudes(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, latent_dim, T) -> the decoded |STFT| (B, C, bins, T * prod(strides)), float32 (what a
        peak-locked decoder is trained on: its phase follows from these)."""
        magnitude = self._magnitude(self._heads(latents)[:, 0])  # (B * C, bins, F)
        return magnitude.reshape(latents.shape[0], self.config.io_channels, self.bins, magnitude.shape[-1])

    def spectrogram(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, latent_dim, T) -> complex STFT (B * C, bins, T * prod(strides)), float32."""
        c = self.config
        h = self._heads(latents)  # (B * C, parts, bins, F)
        magnitude = self._magnitude(h[:, 0])  # (B * C, bins, F)
        if c.phase == "peak-locked":
            return torch.polar(magnitude, peak_locked_phase(magnitude, c.n_fft, c.hop_length))
        advance = 2 * math.pi * c.hop_length / c.n_fft * torch.arange(self.bins, device=h.device)  # rad per hop
        phase = torch.cumsum(advance[:, None] + math.pi * torch.tanh(h[:, 1]), dim=-1)  # (B * C, bins, F)
        return torch.polar(magnitude, phase)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        c = self.config
        spec = self.spectrogram(latents)  # (B * C, bins, F)
        spec = torch.cat([spec, spec[..., -1:]], dim=-1)  # the centred STFT's closing frame: F + 1 in all
        length = (spec.shape[-1] - 1) * c.hop_length
        window = torch.hann_window(c.n_fft, device=spec.device)
        audio = torch.istft(spec, c.n_fft, c.hop_length, window=window, length=length)  # (B * C, L)
        return audio.reshape(latents.shape[0], c.io_channels, length)
