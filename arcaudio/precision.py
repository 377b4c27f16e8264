"""Numeric precision per component (text encoder, DiT, decoder), and the fastest one that keeps quality on this
machine (`precision="auto"`), decided from what the hardware has, never assumed.

Settings: "fp32"; "bf16"; "fp16" (CUDA only: on a CPU it is emulated and ~100x slower); "int8" (DiT only: its
linear layers int8 on `torch._int_mm`, see nn/int8_linear.py, everything else fp32).

`auto`:
- CUDA: bf16 everywhere where the GPU has it (Ampere and later), else fp16 for the DiT and fp32 elsewhere (T5 and
  the Oobleck decoder overflow in fp16); a DiT narrower than INT8_MIN_FEATURES stays fp32 (little arithmetic to
  save, and the partials codec of the built-in model turns a bf16 DiT's latent differences, cosine 0.99999 to
  fp32, into audible ones: spectrogram SNR 15 dB, measured on CPU);
- x86 CPU with AVX-512 BF16 or AMX: int8 DiT linears (VNNI), bf16 text encoder and Oobleck decoder (bf16 matmuls
  and convolutions run natively there, ~2.4x fp32);
- x86 CPU with AVX2 or VNNI but no native bf16: int8 DiT linears, fp32 elsewhere (bf16 would be emulated);
- anything else: fp32.
int8 only replaces linear layers with both dimensions >= INT8_MIN_FEATURES (and `auto` uses int8, bf16 or fp16
only for DiTs that wide): below that, quantising the activations costs about what the int8 matmul saves. Only a
learned convolutional decoder (Oobleck) runs in bf16 (the spectral decoders need float32 FFTs), and only a T5 text
encoder (a word table has no compute to save).
"""

from __future__ import annotations

import functools
import os
import platform
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

SETTINGS = ("fp32", "bf16", "fp16", "int8")
COMPONENTS = ("text_encoder", "dit", "decoder")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# int8 DiT linears only from this width: on the built-in model (width 192; AVX-512 VNNI, 2 threads) int8 saved only
# 9 % of a batch-1 clip's time, and its partials codec turns the int8 DiT's 3e-5 latent difference into audible ones
INT8_MIN_FEATURES = 256


@dataclass(frozen=True)
class Precision:
    """One setting per component; `int8` is for the DiT only."""

    text_encoder: str = "fp32"
    dit: str = "fp32"
    decoder: str = "fp32"

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = SETTINGS if f.name == "dit" else tuple(s for s in SETTINGS if s != "int8")
            if value not in allowed:
                raise ValueError(f"precision of the {f.name.replace('_', ' ')} must be one of {list(allowed)}, "
                                 f"got {value!r}")

    def __str__(self) -> str:
        return f"text_encoder={self.text_encoder},dit={self.dit},decoder={self.decoder}"

    def dtype(self, component: str) -> torch.dtype:
        """The float dtype a component's parameters are stored in (int8 DiT: fp32 outside the linear layers)."""
        return DTYPES.get(getattr(self, component), torch.float32)


NAMED = {
    "fp32": Precision(),
    "bf16": Precision("bf16", "bf16", "bf16"),
    "fp16": Precision("fp32", "fp16", "fp32"),
    "int8": Precision("fp32", "int8", "fp32"),
    "int8-bf16": Precision("bf16", "int8", "bf16"),
}
CHOICES = ("auto", *NAMED)  # what --precision takes, besides "text_encoder=..,dit=..,decoder=.."


@dataclass(frozen=True)
class Hardware:
    """What the machine offers for the precisions above."""

    device: str  # "cpu" | "cuda" | ...
    cpu_flags: frozenset[str]  # x86 feature flags (/proc/cpuinfo); empty where unknown
    cuda_bf16: bool = False

    @property
    def native_bf16(self) -> bool:
        """bf16 matmuls in hardware: AVX-512 BF16 or AMX on x86 (elsewhere bf16 on a CPU is emulated)."""
        return bool({"avx512_bf16", "amx_bf16"} & self.cpu_flags)

    @property
    def int8(self) -> bool:
        """int8 dot products that beat fp32: VNNI (AVX-512 or AVX) or at least AVX2 (measured ~4x fp32 here)."""
        return bool({"avx512_vnni", "avx_vnni", "avx2"} & self.cpu_flags)

    def describe(self) -> str:
        if self.device != "cpu":
            return f"{self.device}" + (" (bf16)" if self.cuda_bf16 else "")
        shown = sorted(self.cpu_flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16",
                                         "amx_int8"})
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        capped = f"; oneDNN capped at {isa}" if isa else ""
        if os.environ.get("ATEN_CPU_CAPABILITY"):
            capped += f"; ATen kernels {torch.backends.cpu.get_cpu_capability()}"
        return f"cpu ({platform.machine()}: {' '.join(shown) or 'no AVX2/AVX-512'}{capped})"


# flags of native bf16 arithmetic: worth having only where oneDNN (torch's CPU matmuls and convolutions) may use them
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The feature flags this process can use: this CPU's (/proc/cpuinfo on Linux; elsewhere only what torch's
    dispatch level implies), without the bf16 ones when oneDNN is held below its bf16 instructions
    (`ONEDNN_MAX_CPU_ISA=AVX2` or `AVX512_CORE_VNNI`, say: bf16 is then emulated; a 1024^3 bf16 matmul ran at
    1.1 GFLOP/s capped at AVX2 against 975 native, on a 2-core AVX-512 BF16 / VNNI machine)."""
    flags = frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = frozenset(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    if not flags:
        capability = torch.backends.cpu.get_cpu_capability()  # "AVX512", "AVX2", "DEFAULT", ...
        flags = frozenset({"avx2"} if capability in ("AVX2", "AVX512") else set())
    return flags if onednn_bf16() else flags - BF16_FLAGS


def onednn_bf16() -> bool:
    """Whether torch's oneDNN runs bf16 at its native level in this process (False when the CPU lacks it or
    ONEDNN_MAX_CPU_ISA caps it below); True where torch does not say."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def hardware(device: str | torch.device = "cpu") -> Hardware:
    device = torch.device(device)
    if device.type == "cuda":
        return Hardware("cuda", frozenset(), torch.cuda.is_bf16_supported())
    return Hardware(device.type, cpu_flags() if device.type == "cpu" else frozenset())


def auto_precision(hw: Hardware, config=None) -> Precision:
    """The fastest precision per component that keeps quality on `hw` for a model of `config` (a ModelConfig;
    None: Stable Audio Open Small's kind), see the module docstring."""
    conv_decoder = config is None or config.autoencoder.type == "oobleck"
    t5 = config is None or config.conditioning.prompt.words is None  # a word table has nothing to speed up
    wide_dit = config is None or config.dit.embed_dim >= INT8_MIN_FEATURES
    if hw.device == "cuda":
        if hw.cuda_bf16:
            return Precision("bf16" if t5 else "fp32", "bf16" if wide_dit else "fp32",
                             "bf16" if conv_decoder else "fp32")
        return Precision("fp32", "fp16" if wide_dit else "fp32", "fp32")
    if hw.device != "cpu":
        return Precision()
    low = "bf16" if hw.native_bf16 else "fp32"
    return Precision(low if t5 else "fp32", "int8" if hw.int8 and wide_dit else "fp32",
                     low if conv_decoder else "fp32")


def resolve_precision(spec: str | Precision | None, device: str | torch.device = "cpu", config=None) -> Precision:
    """A Precision from a name (`CHOICES`), "text_encoder=bf16,dit=int8,decoder=fp32" (unnamed components fp32),
    a Precision, or None (fp32). `config`, the ModelConfig, lets `auto` see the model (decoder type, DiT width).

    Raises:
        ValueError: for an unknown name or setting, fp16 on a CPU, or int8 off the CPU.
    """
    if spec is None:
        precision = Precision()
    elif isinstance(spec, Precision):
        precision = spec
    elif spec == "auto":
        precision = auto_precision(hardware(device), config)
    elif spec in NAMED:
        precision = NAMED[spec]
    elif isinstance(spec, str) and "=" in spec:
        parts = {}
        for item in spec.split(","):
            name, _, value = item.partition("=")
            name = name.strip()
            if name not in COMPONENTS:
                raise ValueError(f"unknown component {name!r} in precision {spec!r}; components: {list(COMPONENTS)}")
            parts[name] = value.strip()
        precision = Precision(**parts)
    else:
        raise ValueError(f"precision must be one of {list(CHOICES)} or 'text_encoder=..,dit=..,decoder=..' with "
                         f"settings {list(SETTINGS)}, got {spec!r}")
    device = torch.device(device)
    values = {getattr(precision, c) for c in COMPONENTS}
    if device.type == "cpu" and "fp16" in values:
        raise ValueError(f"fp16 is not used on a CPU (emulated, ~100x slower than fp32); got {precision}: use bf16 "
                         "or fp32")
    if device.type != "cpu" and precision.dit == "int8":
        raise ValueError(f"int8 runs on the CPU only, not on {device.type!r}; got {precision}")
    if device.type == "cpu" and "bf16" in values and not hardware("cpu").native_bf16:
        warnings.warn(f"{precision}: this CPU has no native bf16 (AVX-512 BF16 or AMX): bf16 is emulated there "
                      "and can be far slower than fp32", UserWarning, stacklevel=2)
    return precision


def component_of(key: str) -> str | None:
    """Which component a state-dict key belongs to: text_encoder, dit, decoder, or None (kept fp32: the audio
    encoder, the seconds conditioner)."""
    if key.startswith("dit."):
        return "dit"
    if key.startswith("autoencoder.decoder."):
        return "decoder"
    if key.startswith("conditioners.prompt."):
        return "text_encoder"
    return None


def apply_precision(model: nn.Module, precision: Precision, only: str | None = None) -> nn.Module:
    """Cast (and quantise) a TextToAudioModel's components in place, materialised or on the meta device (then only
    the structure and dtypes change, for a checkpoint to be loaded into). `only`: just that top-level module
    ("conditioners", "dit" or "autoencoder"). Returns the model."""
    from .nn.int8_linear import int8_linears

    if only in (None, "conditioners"):
        model.conditioners["prompt"].to(precision.dtype("text_encoder"))
    if only in (None, "autoencoder"):
        model.autoencoder.decoder.to(precision.dtype("decoder"))
    if only in (None, "dit"):
        if precision.dit == "int8":
            int8_linears(model.dit, INT8_MIN_FEATURES)
        else:
            model.dit.to(precision.dtype("dit"))
    return model


def precision_of(model: nn.Module) -> Precision:
    """The precision a TextToAudioModel runs in, read from its weights."""
    from .nn.int8_linear import Int8Linear

    names = {v: k for k, v in DTYPES.items()}

    def setting(module: nn.Module) -> str:
        dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
        return names.get(dtype, "fp32")

    prompt = model.conditioners["prompt"]
    text = setting(prompt.encoder) if prompt.encoder is not None else "fp32"
    dit = "int8" if any(isinstance(m, Int8Linear) for m in model.dit.modules()) else setting(model.dit)
    return Precision(text, dit, setting(model.autoencoder.decoder))


def convert_tensor(model: nn.Module, key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """A checkpoint tensor as `model` (prepared with `apply_precision` on the meta device) stores it: cast to the
    owning parameter's dtype, or, for the weight of an Int8Linear, quantised to `weight` + `weight_scale`. Called
    once per tensor while reading, so no full-precision copy of the model is ever held."""
    from .nn.int8_linear import Int8Linear, quantize_weight

    owner, _, leaf = key.rpartition(".")
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        return {key: tensor}  # not in the model: the strict check reports it
    if isinstance(module, Int8Linear) and leaf == "weight":
        if tensor.ndim != 2:
            return {key: tensor}
        q, scale = quantize_weight(tensor.float())
        return {key: q, f"{owner}.weight_scale": scale}
    target = getattr(module, leaf, None)
    if isinstance(target, torch.Tensor) and target.is_floating_point() and tensor.is_floating_point():
        return {key: tensor.to(target.dtype)}
    return {key: tensor}
