"""Training throughput: samples per second, the model FLOPs of a step (counted once, by torch's FLOP counter) and
the model FLOP utilisation against the accelerator's peak.

The FLOPs are those of a step's matmuls and convolutions, forward and backward, as `torch.utils.flop_counter`
counts them on a side computation the stage runs once (`step_flops(batch)`: its forward and a real backward pass,
the gradients then zeroed, no other state touched; `autograd.grad` to the parameters would count no backward under
FSDP, whose parameters the graph never reaches). Not on the step itself: the counter's dispatch mode changes
the rounding of some kernels, and a resumed run would then differ from an uninterrupted one. MFU = achieved FLOP/s
/ (peak FLOP/s x processes), with the dense peak of the GPU model for the run's precision, from a small table (None
elsewhere: CPUs and GPUs not in it; `ARCAUDIO_PEAK_TFLOPS` sets it). The autoencoder stage (no `step_flops`)
reports samples/s only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

# dense tensor-core peak per device, TFLOP/s: (bf16, fp32 with TF32 off), from the vendors' data sheets
PEAK_TFLOPS = {"H200": (989.0, 67.0), "H100": (989.0, 67.0), "A100": (312.0, 19.5), "L40S": (362.0, 91.6),
               "A10G": (70.0, 31.2), "L4": (121.0, 30.3)}


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The peak FLOP/s of one `device` at `precision` ('bf16' or 'fp32'), or None when unknown."""
    if os.environ.get("ARCAUDIO_PEAK_TFLOPS"):
        return float(os.environ["ARCAUDIO_PEAK_TFLOPS"]) * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, (bf16, fp32) in PEAK_TFLOPS.items():
        if key in name:
            return (bf16 if precision == "bf16" else fp32) * 1e12
    return None


def counted_flops(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """Run `fn(*args)` under torch's FLOP counter: (its result, the FLOPs it did)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        result = fn(*args)
    return result, int(counter.get_total_flops())


class Throughput:
    """Per-log-window figures: samples/s over all processes, achieved TFLOP/s and MFU (when the peak is known)."""

    def __init__(self, batch_size: int, world_size: int, device: torch.device, precision: str):
        self.samples_per_step = batch_size * world_size
        self.world_size = world_size
        self.peak = peak_flops(device, precision)
        self.step_flops: float | None = None  # model FLOPs of one step of one process (stage.step_flops)

    def figures(self, steps_per_s: float) -> dict[str, float]:
        out = {"samples_per_s": steps_per_s * self.samples_per_step}
        if self.step_flops:
            achieved = self.step_flops * self.world_size * steps_per_s
            out["tflops"] = achieved / 1e12
            if self.peak:
                out["mfu"] = achieved / (self.peak * self.world_size)
        return out
