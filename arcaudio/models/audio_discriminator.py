"""Multi-scale waveform discriminator (MelGAN-style) for the autoencoder's optional adversarial loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ScaleDiscriminator(nn.Module):
    """Strided grouped 1-d convs with leaky ReLU; returns its feature maps, the last being the logits (B, 1, T')."""

    def __init__(self, channels: int, width: int = 16, depth: int = 4):
        super().__init__()
        layers = [nn.Conv1d(channels, width, 15, padding=7)]
        c = width
        for _ in range(depth):
            nxt = min(c * 4, 256)
            layers.append(nn.Conv1d(c, nxt, 41, stride=4, padding=20, groups=max(1, c // 4)))
            c = nxt
        layers.append(nn.Conv1d(c, c, 5, padding=2))
        self.layers = nn.ModuleList(nn.utils.parametrizations.weight_norm(conv) for conv in layers)
        self.out = nn.Conv1d(c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for conv in self.layers:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        feats.append(self.out(x))
        return feats


class MultiScaleDiscriminator(nn.Module):
    """Discriminators on the waveform at 1x, 1/2x and 1/4x rate. (B, C, L) -> list of feature lists."""

    def __init__(self, channels: int, scales: int = 3, width: int = 16):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(channels, width) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            outs.append(disc(x))
        return outs


def hinge_discriminator_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)) / len(real)


def hinge_generator_loss(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(-f[-1].mean() for f in fake) / len(fake)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 between discriminator features of real (detached) and generated audio."""
    terms = [F.l1_loss(f, r.detach()) for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])]
    return sum(terms) / len(terms)
