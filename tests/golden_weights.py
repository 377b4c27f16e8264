"""The deterministic weights of the stable-audio-tools parity fixtures (mirror of scripts/make_sat_golden.py)."""

import zlib

import torch


def golden_weight(name: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    w = torch.randn(shape, generator=g)
    if name.endswith(("gamma", "norm.weight")):
        return 1.0 + 0.1 * w
    return w * (0.3 if len(shape) > 1 else 0.1)
