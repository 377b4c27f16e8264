"""Oobleck VAE of Stable Audio: waveform (B, C, L) <-> latents (B, latent_dim, L / downsampling_ratio).

Parameter names match stable-audio-tools' `AudioAutoencoder` below its `pretransform.model.` prefix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AutoencoderConfig
from ..nn.layers import SnakeBeta, WNConv1d, WNConvTranspose1d
from ..nn.tiling import Upsampler, tiled_stages

# How the decoder's activations are laid out: "channels_last_2d", (B, C, 1, T) channels-last with (1, k) conv2d, or
# "ncl", plain (B, C, T) with conv1d. By device type: oneDNN runs the first faster on CPU (see channels_last_2d). On
# CUDA (H200, cuDNN, bf16, Stable Audio Open Small's decoder, one 11.9 s clip; scripts/gpu_report.py) channels-last
# took 138 ms against 22 ms for ncl, 124 ms of it in one cuDNN fallback kernel (`conv2d_grouped_direct_kernel`);
# at batch 8 channels-last was the faster, 102 ms against 122 ms. Batch 1 is what a GPU serves fastest: ncl.
# A decoder's `layout` may also name one layout per top-level layer (`OobleckDecoder.layers`), the activations
# converted where it changes: scripts/gpu_report.py times each layer in each layout to find the fallback's layer.
DECODER_LAYOUTS = ("channels_last_2d", "ncl")
DEFAULT_LAYOUT = {"cpu": "channels_last_2d", "cuda": "ncl"}


def channels_last_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) stored channels-last. The Oobleck stacks run in this layout: their convs become
    (1, k) conv2d, which oneDNN runs ~1.6x (k = 7) to ~2x (k = 1) faster on CPU than conv1d's default layout."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def from_channels_last_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, T) -> (B, C, T), contiguous."""
    return x.squeeze(2).contiguous()


def _activation(use_snake: bool, channels: int) -> nn.Module:
    return SnakeBeta(channels) if use_snake else nn.ELU()


class ResidualUnit(nn.Module):
    """x + conv1(act(conv7_dilated(act(x)))), length-preserving. (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, dilation: int, use_snake: bool):
        super().__init__()
        self.layers = nn.Sequential(
            _activation(use_snake, channels),
            WNConv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            _activation(use_snake, channels),
            WNConv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).add_(x)  # in place: the last conv's output is a fresh tensor

    @property
    def tiling_body(self) -> nn.Sequential:  # nn/tiling.py: the skip is pointwise
        return self.layers


class EncoderBlock(nn.Module):
    """3 residual units (dilation 1, 3, 9), activation, strided conv. (B, C_in, T) -> (B, C_out, T / stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool):
        super().__init__()
        self.layers = nn.Sequential(
            *(ResidualUnit(in_channels, d, use_snake) for d in (1, 3, 9)),
            _activation(use_snake, in_channels),
            WNConv1d(in_channels, out_channels, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class NearestRepeat(Upsampler):
    """Nearest-neighbour upsampling by `stride`, then the left/right zero padding of torch's padding='same' for a
    kernel of 2 * stride. (B, C, T) -> (B, C, T * stride + 2 * stride - 1); the unpadded conv of kernel 2 * stride
    that follows brings it to T * stride."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride, self.kernel_size = stride, 2 * stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = 2 * self.stride
        return F.pad(x.repeat_interleave(self.stride, dim=-1), ((k - 1) // 2, k // 2))


class DecoderBlock(nn.Module):
    """Activation, upsampling (transposed conv, or nearest + conv), 3 residual units.
    (B, C_in, T) -> (B, C_out, T * stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, use_snake: bool, nearest: bool = False):
        super().__init__()
        # nearest: a constant input stays constant, so no pattern of period `stride` (keys as stable-audio-tools)
        upsample = (nn.Sequential(NearestRepeat(stride), WNConv1d(in_channels, out_channels, 2 * stride, bias=False))
                    if nearest else WNConvTranspose1d(in_channels, out_channels, 2 * stride, stride=stride,
                                           padding=math.ceil(stride / 2)))
        self.layers = nn.Sequential(
            _activation(use_snake, in_channels),
            upsample,
            *(ResidualUnit(out_channels, d, use_snake) for d in (1, 3, 9)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @property
    def tiling_body(self) -> nn.Sequential:
        return self.layers


class OobleckEncoder(nn.Module):
    """(B, io_channels, L) -> (B, 2 * latent_dim, L / ratio): the VAE's mean | scale."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        ch, mults = config.channels, [1, *config.c_mults]
        layers: list[nn.Module] = [WNConv1d(config.io_channels, ch * mults[0], 7, padding=3)]
        for i, stride in enumerate(config.strides):
            layers.append(EncoderBlock(ch * mults[i], ch * mults[i + 1], stride, config.use_snake))
        layers += [_activation(config.use_snake, ch * mults[-1]),
                   WNConv1d(ch * mults[-1], 2 * config.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)
        with torch.no_grad():  # start with a narrow posterior (std ~1.5e-4): training from scratch then transmits
            layers[-1].bias[config.latent_dim:] = -10.0  # information at once instead of collapsing to the prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_channels_last_2d(self.layers(channels_last_2d(x)))


class OobleckDecoder(nn.Module):
    """(B, latent_dim, T) -> (B, io_channels, T * ratio).

    At inference (no autograd) on a CPU each upsampling block runs in time tiles of about `tile_bytes` per
    activation (nn/tiling.py: exact, so that no activation of the clip's size is allocated but the blocks'
    outputs); the layers after the last block run in its tiles. On a GPU the whole clip runs at once (its
    allocator caches blocks; tiles would only add launches). `tile_bytes = 0` runs every layer on the whole clip,
    as do traced and compiled graphs (ONNX export, torch.compile: their runtimes plan their own buffers)."""

    tile_bytes = 16 << 20
    # one of DECODER_LAYOUTS, or one per top-level layer (len(self.layers)); None: DEFAULT_LAYOUT for the input's
    # device type. Per-layer layouts run untiled.
    layout: str | tuple[str, ...] | None = None

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        ch, mults = config.channels, [1, *config.c_mults]
        layers: list[nn.Module] = [WNConv1d(config.latent_dim, ch * mults[-1], 7, padding=3)]
        for i in range(len(config.strides), 0, -1):
            layers.append(DecoderBlock(ch * mults[i], ch * mults[i - 1], config.strides[i - 1], config.use_snake,
                                       nearest=config.use_nearest_upsample))
        layers += [_activation(config.use_snake, ch * mults[0]),
                   WNConv1d(ch * mults[0], config.io_channels, 7, padding=3, bias=False),
                   nn.Tanh() if config.final_tanh else nn.Identity()]
        self.layers = nn.Sequential(*layers)

    def stages(self) -> list[nn.Module]:
        """The layers grouped for tiling: those before the first upsampling block one by one, each block, and the
        last block together with the layers after it."""
        blocks = [i for i, layer in enumerate(self.layers) if isinstance(layer, DecoderBlock)]
        if not blocks:
            return [self.layers]
        return [*self.layers[:blocks[-1]], nn.Sequential(*self.layers[blocks[-1]:])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = self.layout or DEFAULT_LAYOUT.get(x.device.type, "channels_last_2d")
        if isinstance(layout, (tuple, list)):
            return self._forward_per_layer(x, tuple(layout))
        if layout not in DECODER_LAYOUTS:
            raise ValueError(f"decoder layout must be one of {list(DECODER_LAYOUTS)} or a tuple of them, one per "
                             f"layer; got {layout!r}")
        if layout == "ncl":
            return self.layers(x.contiguous())
        x = channels_last_2d(x)
        tiled = self.tile_bytes and x.device.type == "cpu"  # a GPU's allocator caches: tiles only add launches
        if tiled and not (torch.is_grad_enabled() or torch.compiler.is_compiling() or torch.jit.is_tracing()):
            return from_channels_last_2d(tiled_stages(self.stages(), x, self.tile_bytes))
        return from_channels_last_2d(self.layers(x))

    def _forward_per_layer(self, x: torch.Tensor, layouts: tuple[str, ...]) -> torch.Tensor:
        """Layer i in layouts[i]; the activations change layout where the layouts do. (B, C, T) -> (B, C', T')."""
        bad = [name for name in layouts if name not in DECODER_LAYOUTS]
        if len(layouts) != len(self.layers) or bad:
            raise ValueError(f"a per-layer decoder layout needs {len(self.layers)} entries, each one of "
                             f"{list(DECODER_LAYOUTS)}; got {len(layouts)} entries" + (f", {bad[0]!r}" if bad else ""))
        current = "ncl"
        for layer, layout in zip(self.layers, layouts):
            if layout != current:
                x = channels_last_2d(x) if layout == "channels_last_2d" else from_channels_last_2d(x)
                current = layout
            x = layer(x)
        return from_channels_last_2d(x) if current == "channels_last_2d" else x.contiguous()


def vae_moments(encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split encoder output (B, 2C, T) into mean and std = softplus(scale) + 1e-4, each (B, C, T)."""
    mean, scale = encoded.chunk(2, dim=1)
    return mean, F.softplus(scale) + 1e-4


def vae_kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, std^2) || N(0, 1)) * 2, summed over channels, averaged over batch and time (as the reference)."""
    var = std * std
    return (mean * mean + var - var.log() - 1).sum(1).mean()


def _dtype(module: nn.Module) -> torch.dtype:
    """The dtype a module computes in: its parameters', float32 for a module with none (the partials codec)."""
    return next((p.dtype for p in module.parameters()), torch.float32)


class SkippedEncoder(nn.Module):
    """Stands in for an encoder that was not loaded (text-to-audio never encodes; `arcaudio.load(...,
    encoder=False)` saves its memory). Calling it raises an error that says how to load it."""

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model was loaded without its autoencoder's encoder (text-to-audio does not need "
                           "it); load it with arcaudio.load(..., encoder=True) for audio-to-audio or encoding")


class AudioAutoencoder(nn.Module):
    """Encoder + VAE bottleneck + decoder: Oobleck's, or the spectral ones (`config.type`).

    `encode` maps audio (B, io_channels, L), L a multiple of the downsampling ratio, to latents
    (B, latent_dim, L / ratio) divided by `latent_scale`; `decode` inverts it.
    """

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        if config.type == "spectral":
            from .spectral_autoencoder import SpectralDecoder, SpectralEncoder

            self.encoder, self.decoder = SpectralEncoder(config), SpectralDecoder(config)
        elif config.type == "partials":
            from .partials_autoencoder import PartialsDecoder, PartialsEncoder

            self.encoder = PartialsEncoder(config, config.sample_rate)
            self.decoder = PartialsDecoder(config, config.sample_rate)
        elif config.type == "harmonic":
            from .harmonic_autoencoder import HarmonicDecoder, HarmonicEncoder

            self.encoder = HarmonicEncoder(config, config.sample_rate)
            self.decoder = HarmonicDecoder(config, config.sample_rate)
        else:
            self.encoder, self.decoder = OobleckEncoder(config), OobleckDecoder(config)

    @property
    def downsampling_ratio(self) -> int:
        return self.config.downsampling_ratio

    def encode_moments(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, C, L) -> mean, std of the latent posterior, each (B, latent_dim, L / ratio), unscaled."""
        if audio.ndim != 3 or audio.shape[1] != self.config.io_channels:
            raise ValueError(f"audio must be (batch, {self.config.io_channels}, samples), got {tuple(audio.shape)}")
        if audio.shape[-1] % self.downsampling_ratio:
            raise ValueError(f"audio length {audio.shape[-1]} is not a multiple of the downsampling ratio "
                             f"{self.downsampling_ratio}; pad or crop it first")
        return vae_moments(self.encoder(audio.to(_dtype(self.encoder))))

    def encode(self, audio: torch.Tensor, sample: bool = True,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """audio (B, C, L) -> latents (B, latent_dim, L / ratio): a posterior sample, or its mean if not `sample`."""
        mean, std = self.encode_moments(audio)
        if sample:  # drawn where the generator lives (e.g. a CPU generator for reproducible runs), then moved
            device = generator.device if generator is not None else mean.device
            noise = torch.randn(mean.shape, generator=generator, device=device, dtype=mean.dtype).to(mean.device)
            mean = mean + std * noise
        return mean / self.config.latent_scale

    def decode(self, latents: torch.Tensor, chunk_frames: int | None = None, overlap_frames: int = 16) -> torch.Tensor:
        """latents (B, latent_dim, T) -> audio (B, io_channels, T * ratio).

        `chunk_frames`: decode `chunk_frames` latent frames at a time, each with `overlap_frames` of context on both
        sides that is decoded and dropped, so peak memory follows the chunk, not the clip. The decoder is
        convolutional: when the overlap covers its receptive field (Oobleck at Stable Audio Open Small's strides:
        ~10 frames), the result equals the whole decode up to float rounding.
        """
        if latents.ndim != 3 or latents.shape[1] != self.config.latent_dim:
            raise ValueError(f"latents must be (batch, {self.config.latent_dim}, frames), got {tuple(latents.shape)}")
        if chunk_frames is not None and (chunk_frames < 1 or overlap_frames < 0):
            raise ValueError(f"chunk_frames must be >= 1 and overlap_frames >= 0, got {chunk_frames}, "
                             f"{overlap_frames}")
        latents = (latents * self.config.latent_scale).to(_dtype(self.decoder))
        frames = latents.shape[-1]
        if chunk_frames is None or chunk_frames >= frames:
            return self.decoder(latents)
        ratio, pieces = self.downsampling_ratio, []
        for start in range(0, frames, chunk_frames):
            lo, hi = max(0, start - overlap_frames), min(frames, start + chunk_frames + overlap_frames)
            audio = self.decoder(latents[:, :, lo:hi])  # (B, C, (hi - lo) * ratio)
            keep = min(chunk_frames, frames - start) * ratio
            pieces.append(audio[:, :, (start - lo) * ratio:(start - lo) * ratio + keep])
        return torch.cat(pieces, dim=-1)  # (B, C, T * ratio)
