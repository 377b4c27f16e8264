"""Compiled generation: the DiT and the decoder through `torch.compile`, with the mode chosen by the device.

- CUDA: `mode="max-autotune"`: Triton kernels tuned per shape and the calls captured as CUDA graphs, so a DiT step
  is one graph launch instead of hundreds of kernel launches (at batch 1 on a large GPU the launches are most of
  the time). Not yet timed on a GPU; captured generation with mode "default" was (below).
- CPU: the default mode: inductor's C++ kernels fuse SnakeBeta and the residual adds around oneDNN's convolutions.
  It does not pay there: at Stable Audio Open Small's size (`auto`, AVX-512 BF16 and VNNI, 2 threads) the compiled
  decoder took 2.20 s against 1.95 s eager in time tiles (nn/tiling.py, which compiled graphs do not use) and the
  int8 DiT step 215 ms against 185 ms.
- Inside captured generation (arcaudio/captured.py) on CUDA, mode "default" fused the H200's batch-1 decoder from
  18.4 to 9.2 ms and a DiT step from 2.75 to 1.59 ms (37 s of compilation).
- The text encoder (`parts` with "text_encoder") runs once per clip, not once per step: not compiled by default.
  transformers' T5 compiles without a graph break (checked on CPU); its time on a GPU is scripts/gpu_report.py's.
Captured generation (arcaudio/captured.py) records its own CUDA graphs around the compiled modules: compile for it
with a mode that records none ("default" or "max-autotune-no-cudagraphs").
Shapes are static (`dynamic=False`): each new batch size or clip length compiles again, then hits the cache
(torch's inductor cache persists across processes). Compiling pays in a server or a long session, not for one
clip from the command line.
"""

from __future__ import annotations

import torch

from .models.text_to_audio import TextToAudioModel

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
GRAPH_MODES = ("reduce-overhead", "max-autotune")  # inductor records CUDA graphs of its own in these
COMPILE_PARTS = ("text_encoder", "dit", "decoder")
DEFAULT_PARTS = ("dit", "decoder")  # the text encoder runs once per clip, the DiT once per step


def default_compile_mode(device: torch.device) -> str:
    """max-autotune (kernels tuned and captured as CUDA graphs) on CUDA, the default mode elsewhere (CUDA graphs
    do not exist there, and autotuning on a CPU costs minutes for a few percent)."""
    return "max-autotune" if device.type == "cuda" else "default"


def compile_model(model: TextToAudioModel, mode: str | None = None,
                  parts: tuple[str, ...] = DEFAULT_PARTS) -> TextToAudioModel:
    """Compile, in place, the forward of each of `parts` (COMPILE_PARTS; see the module docstring); the first call
    of each compiles. `mode`: one of COMPILE_MODES, default `default_compile_mode(model.device)`. Returns the model.

    Raises:
        ValueError: for an unknown mode or part, or "text_encoder" on a model with no text encoder attached.
    """
    mode = mode or default_compile_mode(model.device)
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode must be one of {list(COMPILE_MODES)}, got {mode!r}")
    unknown = [part for part in parts if part not in COMPILE_PARTS]
    if unknown or not parts:
        raise ValueError(f"compile parts must be a non-empty selection of {list(COMPILE_PARTS)}, got {list(parts)}")
    modules = {"dit": model.dit, "decoder": model.autoencoder.decoder}
    if "text_encoder" in parts:
        modules["text_encoder"] = model.conditioners["prompt"].encoder
        if modules["text_encoder"] is None:
            raise ValueError("the model has no text encoder attached to compile; load it with its T5 "
                             "(arcaudio.load(..., t5=PATH)) or leave 'text_encoder' out of parts")
    for part in parts:
        modules[part].forward = torch.compile(modules[part].forward, mode=mode, dynamic=False)
    model.compile_mode = mode
    return model
