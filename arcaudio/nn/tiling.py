"""Exact time tiling of a convolutional stack at inference: the stack runs on overlapping windows of its input and
the windows' centres are stitched, so every intermediate tensor is a tile's size instead of the clip's.

Why: the Oobleck decoder's last stages hold 67-270 MB per activation at Stable Audio Open Small's clip length. On a
CPU every such allocation is a fresh `mmap` (glibc serves blocks over 32 MB that way), page-faulted and zeroed by
the kernel on first touch and unmapped when freed: ~30 ms per 134 MB, dozens of times per clip. Tiles of a few MB
come from the allocator's heap, and an elementwise pass over one runs from cache. Measured on the bf16 decoder
(AVX-512 BF16, 2 threads): 4.9-5.1 s whole, 4.1-4.3 s in tiles of 16 MB, peak memory 0.9-1.1 GB -> 0.95 GB.

Exactness: output sample o of a stack of stride-1 convolutions, pointwise activations and upsamplings depends on
inputs within a fixed distance of o / scale (the receptive field, `context`). A window that extends its tile by
that context on both sides (clamped at the clip's ends, where the layers' own zero padding applies as in the whole
run) gives, for the tile's own span, the same sums as the whole run; what the window's edges get wrong lies in the
context and is dropped. The products and their order within a sample's sum are the same, so results agree up to the
kernels' blocking (fp32: ~1e-8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .layers import SnakeBeta, WNConv1d, WNConvTranspose1d

POINTWISE = (SnakeBeta, nn.ELU, nn.SiLU, nn.Tanh, nn.Identity)


class Upsampler(nn.Module):
    """Marker base for layers that upsample by an integer `stride` with output length exactly stride x input and
    whose output sample o depends on inputs within `kernel_size` / stride of o / stride (NearestRepeat + conv)."""

    stride: int
    kernel_size: int


def geometry(module: nn.Module) -> tuple[int, int, int] | None:
    """(context, scale, width) of a stack: `scale` output samples per input sample; `context`, the input samples on
    each side that an output sample may depend on beyond its own position (conservative); `width`, the most values
    any of its activations holds per input sample (channels x upsampling so far). None when the stack has a layer
    this cannot bound (unknown type, strided downsampling, an upsampling whose output is not exactly stride x
    input): such a stack is run whole."""
    layers = _flatten(module)
    if layers is None:
        return None
    context, scale, width = 0, 1, 0  # context in the current layer's output samples, walking from the output back
    for layer in reversed(layers):
        if isinstance(layer, POINTWISE):
            continue
        if isinstance(layer, WNConv1d):
            if layer.stride != 1:
                return None
            context += layer.dilation * (layer.kernel_size - 1)
        elif isinstance(layer, WNConvTranspose1d):
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            if k - 2 * p != s:  # output length (T - 1) s - 2p + k = s T only then
                return None
            context, scale = math.ceil((context + k) / s) + 1, scale * s
        elif isinstance(layer, Upsampler):
            context, scale = math.ceil((context + layer.kernel_size) / layer.stride) + 1, scale * layer.stride
        else:
            return None
    rate = 1  # output samples of the layer per input sample of the stack, walking forward
    for layer in layers:
        rate *= getattr(layer, "stride", 1) if isinstance(layer, (WNConvTranspose1d, Upsampler)) else 1
        if isinstance(layer, (WNConv1d, WNConvTranspose1d)):
            width = max(width, layer.out_channels * rate)
    return context, scale, width


def _flatten(module: nn.Module) -> list[nn.Module] | None:
    """The layers a stack runs, in order, with wrappers opened (modules with a `tiling_body`: the Sequential their
    forward runs, with at most a pointwise residual skip around it); None for a module whose data flow this file
    does not know."""
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            inner = _flatten(child)
            if inner is None:
                return None
            out += inner
        return out
    body = getattr(module, "tiling_body", None)
    if body is not None:
        return _flatten(body)
    if isinstance(module, (*POINTWISE, WNConv1d, WNConvTranspose1d, Upsampler)):
        return [module]
    return None


def run_tiled(stack: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, context: int, scale: int,
              tile: int) -> torch.Tensor:
    """`stack(x)` computed window by window along the last axis, `tile` input samples at a time (each window that
    plus `context` on both sides). x (..., T) -> (..., T * scale). Layouts are kept (a channels-last (B, C, 1, T)
    input gives a channels-last output)."""
    length = x.shape[-1]
    if tile >= length:
        return stack(x)
    out = None
    for i0 in range(0, length, tile):
        i1 = min(length, i0 + tile)
        a, b = max(0, i0 - context), min(length, i1 + context)
        y = stack(x[..., a:b])  # (..., (b - a) * scale)
        if out is None:
            fmt = torch.channels_last if y.ndim == 4 and y.is_contiguous(memory_format=torch.channels_last) \
                else torch.contiguous_format
            out = torch.empty((*y.shape[:-1], length * scale), dtype=y.dtype, device=y.device, memory_format=fmt)
        out[..., i0 * scale:i1 * scale] = y[..., (i0 - a) * scale:(i1 - a) * scale]
    return out


def tiled_stages(stages: Sequence[nn.Module], x: torch.Tensor, tile_bytes: int) -> torch.Tensor:
    """Run `stages` (each (B, C, [1,] T) -> (B, C', [1,] T')) one after the other, each tiled (`run_tiled`) so that
    its largest activation holds about `tile_bytes` (at least one input sample per tile), or whole when its
    geometry is unknown."""
    for stage in stages:
        shape = geometry(stage)
        if shape is None:
            x = stage(x)
            continue
        context, scale, width = shape
        rows = x.numel() // max(1, x.shape[1] * x.shape[-1])  # batch (x the 1 of the 2-D layout)
        tile = max(1, tile_bytes // max(1, width * rows * x.element_size()))
        x = run_tiled(stage, x, context, scale, tile)
    return x
