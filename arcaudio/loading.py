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
    load_state_dict_strict,
    read_config,
    read_model_state,
    read_state_dict,
)
from .compat.sao import model_config_from_sao, sao_to_arcaudio
from .config import PRESETS, ModelConfig, preset
from .models.conditioners import load_pretrained_t5
from .models.text_to_audio import TextToAudioModel

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


def build_model(config: ModelConfig, device: str | torch.device | None = None) -> TextToAudioModel:
    """A model with freshly initialised weights; `device="meta"` allocates nothing."""
    with torch.device(device or "cpu"):
        return TextToAudioModel(config)


def load(path_or_preset: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
         t5: str | Path | bool | None = None) -> TextToAudioModel:
    """Load a model ready for inference (eval mode).

    Args:
        path_or_preset: a preset name, an arcaudio checkpoint, or a stable-audio-tools folder / weights file.
        device: where to put it (default CPU).
        dtype: cast every floating-point weight to this dtype (default: as stored, fp32 for presets).
        t5: for models with a pre-trained T5 prompt encoder: a local folder, None to look up
            `conditioning.prompt.t5_model_name` locally (folder or Hugging Face cache), False to skip it.

    Raises:
        StateDictMismatchError: listing every missing, unexpected or mis-shaped key.
        FileNotFoundError: for a missing checkpoint or T5 encoder, saying what to download and where to put it.
    """
    source = resolve_source(path_or_preset)
    if source.weights is None:
        model = build_model(source.config)
    else:
        state, _ = read_model_state(source.weights) if source.format == "arcaudio" else read_state_dict(source.weights)
        if source.format == "sao":
            state, unknown = sao_to_arcaudio(state)
            if unknown:
                raise StateDictMismatchError([], sorted(unknown), [], str(source.weights))
        model = build_model(source.config, device="meta")
        load_state_dict_strict(model, state, str(source.weights))
    prompt = model.conditioners["prompt"]
    if not prompt.builtin and t5 is not False:
        encoder, tokenizer = load_pretrained_t5(source.config.conditioning.prompt.t5_model_name if t5 in (None, True)
                                                else t5)
        prompt.attach(encoder, tokenizer)
    model.to(device=device or "cpu")
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval().requires_grad_(False)
