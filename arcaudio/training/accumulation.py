"""Gradient accumulation: one optimizer step's batch computed in micro-batches, gradients summed.

Every random draw of the step is made for the whole batch first (so the step draws exactly what it draws without
accumulation) and sliced; each micro-batch's loss is weighted by its share of the batch, so the summed gradient is
the whole batch's mean-loss gradient up to rounding, with a fraction of the activation memory. Under DDP the
gradients are all-reduced once, in the last micro-batch's backward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def micro_batches(batch_size: int, count: int) -> list[tuple[slice, float]]:
    """`count` near-equal consecutive slices of a batch, each with its share (items / batch_size)."""
    if not 1 <= count <= batch_size:
        raise ValueError(f"grad_accum must be in [1, batch_size = {batch_size}], got {count}")
    bounds = [round(k * batch_size / count) for k in range(count + 1)]
    return [(slice(lo, hi), (hi - lo) / batch_size) for lo, hi in zip(bounds, bounds[1:])]


@contextlib.contextmanager
def gradient_sync(module: nn.Module, sync: bool) -> Iterator[None]:
    """Within it, a DistributedDataParallel `module` all-reduces (an FSDP2 one reduce-scatters) gradients only if
    `sync` (the last micro-batch; before it they accumulate locally); any other module is unaffected."""
    if sync:
        yield
    elif hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)
    elif hasattr(module, "no_sync"):  # DDP
        with module.no_sync():
            yield
    else:
        yield
