"""`arcaudio.load`: a preset, an arcaudio checkpoint, or a stable-audio-tools checkpoint -> TextToAudioModel.

Accepted sources:
- `default`: the built-in trained model shipped in the package (arcaudio/weights/, see its MODEL_CARD.md), and
  `default-rf`, the rectified-flow model it was post-trained from (its DiT only; the rest is default's), when installed;
- a preset name (`sao-small`, `tiny`): random weights;
- an arcaudio `.safetensors` file (config in its metadata);
- a stable-audio-tools folder with `model_config.json` and `model.safetensors` or `model.ckpt`, or such a weights
  file with `model_config.json` beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import (
    TORCH_SUFFIXES,
    StateDictMismatchError,
    check_state_dict,
    load_state_dict_strict,
    read_config,
    read_model_state,
)
from .compat.sao import model_config_from_sao, sao_key
from .config import PRESETS, ModelConfig, preset
from .models.autoencoder import SkippedEncoder
from .models.conditioners import load_pretrained_t5
from .models.text_to_audio import TextToAudioModel
from .precision import Precision, apply_precision, convert_tensor, resolve_precision

SAO_WEIGHT_NAMES = ("model.safetensors", "model.ckpt")
DEFAULT_MODEL = "default"
WEIGHTS_DIR = Path(__file__).parent / "weights"
BUILTIN_MODELS = {DEFAULT_MODEL: WEIGHTS_DIR / "default.safetensors",  # ARC post-trained: 8 steps, no CFG
                  "default-rf": WEIGHTS_DIR / "default-rf.safetensors"}  # its rectified-flow base: 50 steps + CFG
DEFAULT_WEIGHTS = BUILTIN_MODELS[DEFAULT_MODEL]


def model_names() -> list[str]:
    """Every name `load` accepts besides paths: the built-in trained models whose weights are installed, then the
    presets (random weights)."""
    return [*(name for name, path in BUILTIN_MODELS.items() if path.is_file()), *sorted(PRESETS)]


@dataclass
class ModelSource:
    """Where a model comes from: its config and, unless it is a preset, its weights file and their format."""

    config: ModelConfig
    weights: Path | None  # None: a preset with random weights
    format: str  # "preset" | "arcaudio" | "sao"


def resolve_source(path_or_preset: str | Path) -> ModelSource:
    """Find the config and weights file of a preset name or a path; raise a clear error when neither fits."""
    if str(path_or_preset) in BUILTIN_MODELS:
        weights = BUILTIN_MODELS[str(path_or_preset)]
        if not weights.is_file():
            raise FileNotFoundError(f"the built-in model {str(path_or_preset)!r}'s weights are missing ({weights}); "
                                    "reinstall arcaudio, or rebuild them with scripts/train_default.sh")
        return resolve_source(weights)
    path = Path(path_or_preset).expanduser()
    if not path.exists():
        if str(path_or_preset) in PRESETS:
            return ModelSource(preset(str(path_or_preset)), None, "preset")
        raise FileNotFoundError(f"{str(path_or_preset)!r} is neither an existing file or folder nor a model name "
                                f"({model_names()})")
    if path.is_dir():
        if (path / "model_config.json").is_file():
            for name in SAO_WEIGHT_NAMES:
                if (path / name).is_file():
                    return _sao_source(path / "model_config.json", path / name)
            raise FileNotFoundError(f"{str(path)!r} has model_config.json but none of {list(SAO_WEIGHT_NAMES)}")
        candidates = sorted(path.glob("*.safetensors"))
        if len(candidates) == 1:
            return resolve_source(candidates[0])
        raise FileNotFoundError(f"{str(path)!r} holds neither a stable-audio-tools model (model_config.json + "
                                f"{' or '.join(SAO_WEIGHT_NAMES)}) nor exactly one arcaudio .safetensors file")
    if path.suffix == ".safetensors":
        config = read_config(path)
        if config is not None:
            return ModelSource(config, path, "arcaudio")
    elif path.suffix not in TORCH_SUFFIXES:
        raise ValueError(f"{str(path)!r}: unknown checkpoint type {path.suffix!r}; expected .safetensors or one of "
                         f"{list(TORCH_SUFFIXES)}")
    sao_config = path.parent / "model_config.json"
    if not sao_config.is_file():
        raise FileNotFoundError(f"{str(path)!r} carries no arcaudio config and has no model_config.json beside it; "
                                "a stable-audio-tools checkpoint needs its model_config.json")
    return _sao_source(sao_config, path)


def _sao_source(config_path: Path, weights: Path) -> ModelSource:
    with open(config_path) as f:
        sao = json.load(f)
    try:
        config = model_config_from_sao(sao)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{str(config_path)!r} is not a valid stable-audio-tools model config: missing or "
                         f"malformed {err}") from err
    return ModelSource(config, weights, "sao")


def load_config(path_or_preset: str | Path) -> ModelConfig:
    """The ModelConfig of a preset or checkpoint, without reading any weights."""
    return resolve_source(path_or_preset).config


def build_model(config: ModelConfig, device: str | torch.device | None = None,
                precision: Precision | None = None, encoder: bool = True) -> TextToAudioModel:
    """A model with freshly initialised weights; `device="meta"` allocates nothing.

    With a `precision` (see arcaudio.precision) the model is built one component at a time, the DiT first, each
    cast or quantised before the next is built: peak memory is the largest component in fp32, not the model.
    `encoder=False` leaves out the autoencoder's encoder (text-to-audio does not use it)."""
    if precision is None and encoder:
        with torch.device(device or "cpu"):
            return TextToAudioModel(config)
    with torch.device("meta"):
        model = TextToAudioModel(config)
    if str(device) != "meta":
        with torch.device(device or "cpu"):
            for name in ("dit", "conditioners", "autoencoder"):  # the largest first, while nothing else is held
                setattr(model, name, model.build_component(name))
                _prepare(model, precision, encoder, only=name)
        return model
    _prepare(model, precision, encoder)
    return model


def _prepare(model: TextToAudioModel, precision: Precision | None, encoder: bool, only: str | None = None) -> None:
    """Cast / quantise the model's components (all, or the top-level one named `only`) and drop the encoder."""
    if not encoder and only in (None, "autoencoder"):
        model.autoencoder.encoder = SkippedEncoder()
    if precision is not None:
        apply_precision(model, precision, only=only)


def load(path_or_preset: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
         t5: str | Path | bool | None = None, precision: str | Precision | None = None,
         encoder: bool = True) -> TextToAudioModel:
    """Load a model ready for inference (eval mode).

    Args:
        path_or_preset: a preset name, an arcaudio checkpoint, or a stable-audio-tools folder / weights file.
        device: where to put it (default CPU).
        dtype: cast every floating-point weight to this dtype (default: as stored, fp32 for presets).
        t5: for models with a pre-trained T5 prompt encoder: a local folder, None to look up
            `conditioning.prompt.t5_model_name` locally (folder or Hugging Face cache), False to skip it.
        precision: per component (text encoder, DiT, decoder): "auto" (the fastest that keeps quality on this
            machine), "fp32", "bf16", "int8", "int8-bf16", "text_encoder=..,dit=..,decoder=..", or a Precision
            (arcaudio.precision). Tensors are cast or quantised as they are read: no fp32 copy of the model is held.
        encoder: False leaves out the autoencoder's encoder (text-to-audio never uses it; audio-to-audio does).

    Raises:
        StateDictMismatchError: listing every missing, unexpected or mis-shaped key.
        FileNotFoundError: for a missing checkpoint or T5 encoder, saying what to download and where to put it.
        ValueError: for a bad precision, or both `dtype` and `precision`.
    """
    if dtype is not None and precision is not None:
        raise ValueError(f"give dtype or precision, not both (got {dtype} and {precision!r})")
    source = resolve_source(path_or_preset)
    plan = None if precision is None else resolve_precision(precision, device or "cpu", source.config)
    if source.weights is None:
        model = build_model(source.config, precision=plan, encoder=encoder)
    else:
        model = build_model(source.config, device="meta")
        expected = {k: v.shape for k, v in model.state_dict().items()}
        _prepare(model, plan, encoder)
        shapes: dict[str, torch.Size] = {}
        unknown: list[str] = []

        def convert(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
            if source.format == "sao":
                name = sao_key(key)
                if name is None:
                    unknown.append(key)
                    return {}
                key = name
            shapes[key] = tensor.shape
            if not encoder and key.startswith("autoencoder.encoder."):
                return {}
            return convert_tensor(model, key, tensor) if plan is not None else {key: tensor}

        state, _ = read_model_state(source.weights, convert=convert)
        if unknown:
            raise StateDictMismatchError([], sorted(unknown), [], str(source.weights))
        check_state_dict(expected, {k: torch.empty(v, device="meta") for k, v in shapes.items()}, str(source.weights))
        load_state_dict_strict(model, state, str(source.weights))
    prompt = model.conditioners["prompt"]
    if not prompt.builtin and t5 is not False:
        encoder_t5, tokenizer = load_pretrained_t5(source.config.conditioning.prompt.t5_model_name
                                                   if t5 in (None, True) else t5)
        prompt.attach(encoder_t5, tokenizer)
        if plan is not None:
            prompt.to(plan.dtype("text_encoder"))
    model.to(device=device or "cpu")
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval().requires_grad_(False)
