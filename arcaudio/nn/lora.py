"""LoRA adapters on the DiT's linear layers: W x + (alpha / r) B A dropout(x), B zero-initialised.

A small module of our own rather than peft: the wrapped layer keeps its own `weight` / `bias` parameters under the
same names, so a base checkpoint's keys load strictly into a model with adapters, and the adapter tensors
(`...lora_A`, `...lora_B`) are the only extra keys. Adapter files are safetensors with the LoRA config, the
targeted layers' shapes (an adapter for another architecture is refused, naming the first mismatch) and the
sha256 of the base weights it was trained on (informational: adapters trained on a flow base are meant to be
applied to its ARC post-training, whose weights differ).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

DEFAULT_TARGETS = ("to_qkv", "to_q", "to_kv", "to_out", "ff")  # self- and cross-attention, feed-forward
ADAPTER_KEY = "arcaudio_lora"


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 16
    alpha: float | None = None  # None: alpha = rank (scale 1)
    dropout: float = 0.0
    targets: tuple[str, ...] = field(default=DEFAULT_TARGETS)  # name fragments of the DiT's linear layers

    def __post_init__(self):
        if not (isinstance(self.rank, int) and self.rank >= 1):
            raise ValueError(f"LoRA rank must be a positive integer, got {self.rank!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if not self.targets:
            raise ValueError("LoRA needs at least one target layer name")

    @property
    def scale(self) -> float:
        return (self.alpha if self.alpha is not None else self.rank) / self.rank

    @classmethod
    def parse(cls, spec: str) -> LoRAConfig:
        """"rank=16,alpha=32,dropout=0.05,targets=to_qkv+to_out" (any subset; targets joined by '+')."""
        values: dict = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, _, value = item.partition("=")
            try:
                if key == "rank":
                    values["rank"] = int(value)
                elif key in ("alpha", "dropout"):
                    values[key] = float(value)
                elif key == "targets":
                    values["targets"] = tuple(t for t in value.split("+") if t)
                else:
                    raise ValueError(f"unknown LoRA setting {key!r}; settings: rank, alpha, dropout, targets")
            except ValueError as err:
                if "unknown LoRA" in str(err):
                    raise
                raise ValueError(f"LoRA setting {item!r} has a bad value") from None
        return cls(**values)


class LoRALinear(nn.Module):
    """A frozen-able nn.Linear with a low-rank update. Keys: `weight`, `bias` (the base layer's), `lora_A` (r, in),
    `lora_B` (out, r). (..., in) -> (..., out). `multiplier` scales the update at run time (adapter strength)."""

    def __init__(self, base: nn.Linear, config: LoRAConfig):
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(config.rank, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, config.rank, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale, self.multiplier = config.scale, 1.0
        self.dropout = nn.Dropout(config.dropout) if config.dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.linear(x, self.weight, self.bias)
        update = nn.functional.linear(nn.functional.linear(self.dropout(x), self.lora_A), self.lora_B)
        return out + (self.scale * self.multiplier) * update

    def merged(self) -> nn.Linear:
        """The plain nn.Linear with the update folded in: W + scale * multiplier * B A."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.weight + (self.scale * self.multiplier) * (self.lora_B @ self.lora_A))
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear


def inject_lora(module: nn.Module, config: LoRAConfig, prefix: str = "") -> list[str]:
    """Wrap, in place, every nn.Linear whose qualified name contains one of `config.targets`; returns their names.

    Raises:
        ValueError: when no layer matches, naming the targets.
    """
    names = []
    for name, child in list(module.named_modules()):
        for attr, sub in list(child.named_children()):
            full = f"{name}.{attr}" if name else attr
            if isinstance(sub, nn.Linear) and any(t in full for t in config.targets):
                setattr(child, attr, LoRALinear(sub, config))
                names.append(f"{prefix}{full}")
    if not names:
        raise ValueError(f"no linear layer matches the LoRA targets {list(config.targets)}")
    return names


def inject_dit_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """`inject_lora` on a TextToAudioModel's DiT only; names as in the model's state dict ("dit....")."""
    return inject_lora(model.dit, config, prefix="dit.")


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if ".lora_" in k}


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace, in place, every LoRALinear by its merged nn.Linear (the model loads and saves like the base)."""
    for name, layer in lora_layers(model).items():
        owner, _, attr = name.rpartition(".")
        setattr(model.get_submodule(owner) if owner else model, attr, layer.merged())
    return model


def _shapes(model: nn.Module, names: list[str]) -> dict[str, list[int]]:
    return {n: list(model.get_submodule(n).weight.shape) for n in names}


def base_weights_sha256(model: nn.Module) -> str:
    """sha256 over the DiT's base weights (names and bytes), LoRA tensors excluded."""
    digest = hashlib.sha256()
    for key, value in sorted(model.dit.state_dict().items()):
        if ".lora_" not in key:
            digest.update(key.encode())
            digest.update(value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_adapter(model: nn.Module, path: str | Path, config: LoRAConfig) -> Path:
    """Write the model's adapter tensors with their config, targeted shapes and base fingerprint (atomically)."""
    from ..checkpoint import save_safetensors

    layers = list(lora_layers(model))
    meta = {"config": {**asdict(config), "targets": list(config.targets)}, "layers": _shapes(model, layers),
            "base_sha256": base_weights_sha256(model)}
    return save_safetensors(path, lora_state_dict(model), {ADAPTER_KEY: json.dumps(meta)})


def read_adapter(path: str | Path) -> tuple[LoRAConfig, dict, dict[str, torch.Tensor]]:
    from ..checkpoint import read_state_dict

    state, meta = read_state_dict(path)
    if ADAPTER_KEY not in meta:
        raise ValueError(f"{str(path)!r} is not an arcaudio LoRA adapter (no {ADAPTER_KEY} metadata)")
    info = json.loads(meta[ADAPTER_KEY])
    config = LoRAConfig(**{**info["config"], "targets": tuple(info["config"]["targets"])})
    return config, info, state


def apply_adapter(model: nn.Module, path: str | Path, scale: float = 1.0, merge: bool = True) -> nn.Module:
    """Apply an adapter file to `model` (a base flow or its ARC post-training) at strength `scale`: merged into the
    weights (fast) or kept as LoRALinear layers (switchable via their `multiplier`). Several adapters apply in turn.

    Raises:
        ValueError: when the model's architecture does not match the adapter's base (naming the first mismatch).
    """
    config, info, state = read_adapter(path)
    for name, shape in info["layers"].items():
        _target_weight(model, path, name, shape)
    if lora_layers(model) and merge:
        merge_lora(model)  # earlier unmerged adapters first
    wrapped = set(inject_dit_lora(model, config)) if not lora_layers(model) else set(lora_layers(model))
    expected = set(info["layers"])
    if not expected <= wrapped:
        raise ValueError(f"adapter {str(path)!r} targets layers this model's LoRA set lacks: "
                         f"{sorted(expected - wrapped)[:3]}")
    model.load_state_dict({k: v.to(model.dit.preprocess_conv.weight.device) for k, v in state.items()},
                          strict=False)
    for name in wrapped - expected:  # injected by `targets` but absent from the file: no update
        model.get_submodule(name).lora_B.data.zero_()
    for layer in lora_layers(model).values():
        layer.multiplier = float(scale)
    return merge_lora(model) if merge else model


def _target_weight(model: nn.Module, path, name: str, shape: list[int]) -> torch.Tensor:
    """The float weight of layer `name`, checked against the adapter's base shape.

    Raises:
        ValueError: no such layer or another shape (another architecture), or no float weight (an int8 DiT).
    """
    try:
        layer = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"adapter {str(path)!r} was trained on another architecture: this model has no layer "
                         f"{name!r}") from None
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        raise ValueError(f"adapter {str(path)!r} needs float linear weights; {name} is {type(layer).__name__} "
                         "(load the model with precision fp32 or bf16)")
    if list(weight.shape) != shape:
        raise ValueError(f"adapter {str(path)!r} was trained on another architecture: {name} is "
                         f"{list(weight.shape)} here, {shape} in its base")
    return weight


def parse_adapter_spec(spec: str) -> tuple[str, float]:
    """"PATH" or "PATH:SCALE" -> (path, scale)."""
    match = re.fullmatch(r"(.+?)(?::(-?[0-9.]+))?", spec)
    path, scale = match.group(1), float(match.group(2)) if match.group(2) else 1.0
    if not Path(path).is_file():
        raise FileNotFoundError(f"LoRA adapter {path!r} does not exist")
    return path, scale


@contextlib.contextmanager
def adapters_applied(model: nn.Module, adapters: list[tuple[str | Path, float]]):
    """Within the block, `model` has the adapters [(path, scale), ...] merged into its DiT's weights; on exit the
    touched weights are restored exactly (saved copies, not subtraction). Several adapters add up. For one call
    (`generate(..., loras=...)`, one server request) without keeping them.

    Raises:
        ValueError: for an adapter of another architecture, or a DiT without float linear weights (int8).
    """
    saved: dict[str, torch.Tensor] = {}
    try:
        for path, scale in adapters:
            config, info, state = read_adapter(path)
            for name, shape in info["layers"].items():
                weight = _target_weight(model, path, name, shape)
                if name not in saved:
                    saved[name] = weight.detach().clone()
                update = state[f"{name}.lora_B"].float() @ state[f"{name}.lora_A"].float()  # (out, in)
                with torch.no_grad():
                    weight.add_((float(scale) * config.scale * update).to(weight))
        yield model
    finally:
        with torch.no_grad():
            for name, weight in saved.items():
                model.get_submodule(name).weight.copy_(weight)
