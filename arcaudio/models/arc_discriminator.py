"""The ARC discriminator: the first blocks of a pre-trained DiT as a feature trunk, plus a small convolutional head
that scores patches of the token sequence.

Trunk: a full DiffusionTransformer (so its state dict is the pre-trained flow's, key for key), called with
`exit_layer`; blocks above it get no gradient and are never run. Head (stable-audio-tools' `conv` head):
4 x [Conv1d(D, D, 4, stride 2, padding 1) -> GroupNorm(32) -> SiLU] -> Conv1d(D, 1, 4), optionally soft-clipped
as `scale * tanh(x / scale)`. For T + 1 tokens (the prepended global token included, as the reference) the head
returns (B, 1, P) patch scores, P = floor((T + 1) / 16) - 3 (257 tokens -> 13).

With `contrastive_head=True` a second head of the same shape reads the same trunk features for the contrastive
term only (not the paper's method, where one head serves both terms): the trunk still learns to read prompts,
but the scores the generator climbs come from a head trained on real-versus-generated pairs alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import DiTConfig
from .dit import DiffusionTransformer
from .text_to_audio import Conditioning


def default_exit_layer(depth: int, fraction: float = 0.75) -> int:
    """0-indexed block after which the trunk stops, keeping round(fraction * depth) blocks (16 -> 11)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"discriminator depth fraction must be in (0, 1], got {fraction}")
    return max(1, round(fraction * depth)) - 1


def resolve_exit_layer(depth: int, exit_layer: int | None, fraction: float = 0.75) -> int:
    """`exit_layer` when given, else `default_exit_layer(depth, fraction)` (the ARC config's two ways to say it)."""
    return exit_layer if exit_layer is not None else default_exit_layer(depth, fraction)


def head_patches(tokens: int, downsamples: int = 4) -> int:
    """Number of patch scores the conv head makes from `tokens` positions."""
    n = tokens
    for _ in range(downsamples):
        n = (n + 2 - 4) // 2 + 1
    return n - 3


class ConvHead(nn.Module):
    """(B, D, N) hidden states -> (B, 1, P) patch scores. Keys `layers.{0,3,6,9}` (convs), `.{1,4,7,10}` (norms),
    `layers.12` (output conv)."""

    def __init__(self, dim: int, downsamples: int = 4, groups: int = 32, soft_clip_scale: float | None = None):
        super().__init__()
        groups = math.gcd(groups, dim)
        layers: list[nn.Module] = []
        for _ in range(downsamples):
            layers += [nn.Conv1d(dim, dim, 4, stride=2, padding=1), nn.GroupNorm(groups, dim), nn.SiLU()]
        layers.append(nn.Conv1d(dim, 1, 4))
        self.layers = nn.Sequential(*layers)
        self.soft_clip_scale = soft_clip_scale

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.layers(h)  # (B, 1, P)
        if self.soft_clip_scale:
            out = self.soft_clip_scale * torch.tanh(out / self.soft_clip_scale)
        return out


class ARCDiscriminator(nn.Module):
    """D(x_s, s, c): trunk = DiT blocks 0..exit_layer, head = ConvHead. Scores (B, 1, P); higher = more real."""

    def __init__(self, config: DiTConfig, exit_layer: int, soft_clip_scale: float | None = None,
                 contrastive_head: bool = False):
        super().__init__()
        if not 0 <= exit_layer < config.depth:
            raise ValueError(f"discriminator exit_layer {exit_layer} must be in [0, {config.depth - 1}] for a DiT of "
                             f"depth {config.depth}")
        self.trunk = DiffusionTransformer(config)
        self.exit_layer = exit_layer
        self.head = ConvHead(config.embed_dim, soft_clip_scale=soft_clip_scale)
        self.contrastive_head = ConvHead(config.embed_dim, soft_clip_scale=soft_clip_scale) if contrastive_head \
            else None
        self.trunk.transformer.layers[exit_layer + 1:].requires_grad_(False)  # never run: no gradient to give
        self.trunk.transformer.project_out.requires_grad_(False)
        self.trunk.postprocess_conv.requires_grad_(False)

    def forward(self, x: torch.Tensor, s: torch.Tensor, cond: Conditioning, both_heads: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T) latents re-noised to level s (B,) -> patch scores (B, 1, P); with `both_heads` (a model built
        with `contrastive_head`) the pair (head's scores, contrastive head's scores), each (B, 1, P)."""
        if both_heads and self.contrastive_head is None:
            raise ValueError("both_heads needs a discriminator built with contrastive_head=True")
        tokens = x.shape[-1] + 1
        if head_patches(tokens) < 1:
            raise ValueError(f"the discriminator head makes no patch score from {x.shape[-1]} latent frames; it needs "
                             "at least 63")
        h = self.trunk(x, s, cond.cross_attn_cond, cond.global_cond, exit_layer=self.exit_layer)  # (B, T + 1, D)
        h = h.transpose(1, 2).to(self.head.layers[0].weight.dtype)  # (B, D, T + 1)
        if both_heads:
            return self.head(h), self.contrastive_head(h)
        return self.head(h)
