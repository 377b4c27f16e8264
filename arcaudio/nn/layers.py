"""Small layers shared by the models. Leaf parameter names match stable-audio-tools."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm over the last dim with a learned gain `gamma` and a fixed zero `beta` buffer (no learned bias)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], weight=self.gamma, bias=self.beta, eps=self.eps)


class SnakeBeta(nn.Module):
    """SnakeBeta activation, `x + 1/(beta + 1e-9) * sin(alpha * x)^2` per channel, with
    `alpha = exp(a)`, `beta = exp(b)` (log-scale parameters, BigVGAN). Input and output (B, C, ...): channels on
    dim 1, as (B, C, T) or the channels-last (B, C, 1, T) of the fast autoencoder path."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast over channels: (1, C, 1[, 1])
        alpha = self.alpha.exp().view(shape).to(x.dtype)
        inv_beta = 1.0 / (self.beta.exp() + 1e-9)
        training = torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad or self.beta.requires_grad)
        if training or torch.compiler.is_compiling():  # compiled: fused into one kernel (and dynamo breaks its graph
            return x + inv_beta.view(shape).to(x.dtype) * torch.sin(x * alpha).pow(2)  # at an `out=` below)
        # inference: one new tensor instead of four and four passes instead of five: x + (sqrt(1/beta) sin(ax))^2
        # (on CPU 2.7x faster than the expression above, where large allocations page-fault)
        s = torch.mul(x, alpha).sin_().mul_(inv_beta.sqrt().view(shape).to(x.dtype))
        return torch.addcmul(x, s, s, out=s)


class _WeightNorm(nn.Module):
    """Weight normalisation `w = g * v / ||v||` with the norm over all dims but 0, stored as `weight_g`, `weight_v`
    (the key names of torch.nn.utils.weight_norm, which stable-audio-tools checkpoints use)."""

    def _init_weight_norm(self, weight: torch.Tensor, bias: nn.Parameter | None) -> None:
        self.weight_v = nn.Parameter(weight.detach().clone())
        self.weight_g = nn.Parameter(_norm_except_dim0(weight.detach()))
        self.bias = bias
        if bias is not None:  # zero, not torch's uniform default: in a deep conv stack on quiet audio, random
            nn.init.zeros_(bias)  # biases swamp the signal and a VAE trained from scratch stops transmitting it

    @property
    def weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.norm(dim=tuple(range(1, v.ndim)), keepdim=True)


class WNConv1d(_WeightNorm):
    """Weight-normalised Conv1d. (B, C_in, T) -> (B, C_out, T_out); also (B, C_in, 1, T) -> (B, C_out, 1, T_out)
    as a (1, k) conv2d, which keeps a channels-last input channels-last (oneDNN's fastest CPU layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True):
        super().__init__()
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         bias=bias)
        self._init_weight_norm(conv.weight, conv.bias)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return F.conv2d(x, self.weight[:, :, None, :], self.bias, (1, self.stride), (0, self.padding),
                            (1, self.dilation))
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNorm):
    """Weight-normalised ConvTranspose1d (norm per input channel, as torch's default dim=0).
    (B, C_in, T) -> (B, C_out, T_out); (B, C_in, 1, T) -> (B, C_out, 1, T_out) as a (1, k) conv_transpose2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self._init_weight_norm(conv.weight, conv.bias)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return F.conv_transpose2d(x, self.weight[:, :, None, :], self.bias, (1, self.stride), (0, self.padding))
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding)


class FourierFeatures(nn.Module):
    """Random Fourier features with a learned `weight` (out/2, in): x -> [cos(2 pi x W^T), sin(2 pi x W^T)].
    (B, in) -> (B, out)."""

    def __init__(self, in_features: int, out_features: int, std: float = 1.0):
        super().__init__()
        if out_features % 2:
            raise ValueError(f"FourierFeatures out_features must be even, got {out_features}")
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T  # (B, out/2)
        return torch.cat([f.cos(), f.sin()], dim=-1)


class LearnedFourierEmbedding(nn.Module):
    """Scalar -> [x, sin(2 pi x w), cos(2 pi x w)] with learned `weights` (dim/2,). (N,) -> (N, dim + 1)."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2:
            raise ValueError(f"LearnedFourierEmbedding dim must be even, got {dim}")
        self.weights = nn.Parameter(torch.randn(dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None]  # (N, 1)
        freqs = x * self.weights[None, :] * 2 * math.pi  # (N, dim/2)
        return torch.cat([x, freqs.sin(), freqs.cos()], dim=-1)


class NumberEmbedder(nn.Module):
    """A number in [0, 1] -> a `features`-wide vector: learned Fourier features then a Linear.
    Keys: `embedding.0.weights`, `embedding.1.{weight,bias}`. (...) -> (..., features)."""

    def __init__(self, features: int, dim: int = 256):
        super().__init__()
        self.features = features
        self.embedding = nn.Sequential(LearnedFourierEmbedding(dim), nn.Linear(dim + 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x.reshape(-1)).view(*x.shape, self.features)
