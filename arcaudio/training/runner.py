"""Assemble and run a training stage from a TrainConfig: model, dataset, stage, loop (torchrun-aware)."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import torch

from ..config import PRESETS, ModelConfig, preset
from ..loading import build_model, load
from ..models.text_to_audio import TextToAudioModel
from .config import TrainConfig, apply_overrides
from .distributed import DistInfo, cleanup, init_distributed
from .loop import TrainSummary, run_training

log = logging.getLogger(__name__)


def resolve_model_config(source: str, overrides: list[str] | None = None) -> ModelConfig | None:
    """The config of a from-scratch model: a preset name or a ModelConfig / stable-audio-tools JSON file, with
    `a.b=value` overrides. None when `source` is a checkpoint (its weights are loaded instead)."""
    path = Path(source)
    if source in PRESETS and not path.exists():
        config = preset(source)
    elif path.suffix == ".json" and path.is_file():
        data = json.loads(path.read_text())
        if "model_type" in data:
            from ..compat.sao import model_config_from_sao

            config = model_config_from_sao(data)
        else:
            config = ModelConfig.from_dict(data)
    else:
        if overrides:
            raise ValueError(f"model overrides {overrides} apply only to presets or config files, not to the "
                             f"checkpoint {source!r}")
        return None
    return ModelConfig.from_dict(apply_overrides(config.to_dict(), overrides or []))


def build_training_model(config: TrainConfig, overrides: list[str] | None = None) -> TextToAudioModel:
    """The model a run starts from: fresh weights (seeded by config.seed) for a preset or config file,
    or a checkpoint's weights."""
    model_config = resolve_model_config(config.model, overrides)
    if model_config is None:
        return load(config.model, t5=None).train().requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(model_config)
    prompt = model.conditioners["prompt"]
    if not prompt.builtin:
        from ..models.conditioners import load_pretrained_t5

        prompt.attach(*load_pretrained_t5(model_config.conditioning.prompt.t5_model_name))
    return model


def build_dataset(config: TrainConfig, model_config: ModelConfig):
    """Pre-encoded latents (a folder with index.json), audio from a manifest, or tar shards of either streamed
    (data/streaming.py), cropped for the stage."""
    from ..data.dataset import AudioDataset, collate
    from ..data.streaming import StreamingDataset, looks_like_shards

    size = config.autoencoder.crop_samples if config.stage == "autoencoder" else model_config.sample_size
    if looks_like_shards(config.data):
        dataset = StreamingDataset(config.data, sample_rate=model_config.sample_rate, sample_size=size,
                                   channels=model_config.audio_channels, seed=config.seed,
                                   shuffle_buffer=config.shuffle_buffer)
        return dataset, collate
    data = Path(config.data)
    if data.is_dir() and (data / "index.json").exists():
        if config.stage == "autoencoder":
            raise ValueError(f"{config.data!r} holds pre-encoded latents; autoencoder training needs audio (a "
                             "manifest)")
        from ..data.latents import LatentDataset

        return LatentDataset(data), collate
    if not data.is_file():
        raise FileNotFoundError(f"training data {config.data!r} is neither a manifest file, a folder of "
                                "pre-encoded latents (with index.json) nor tar shards (a .tar, a brace pattern, "
                                "pipe:, a URL or a folder of .tar files)")
    dataset = AudioDataset(data, sample_rate=model_config.sample_rate, sample_size=size,
                           channels=model_config.audio_channels, random_crop=True, seed=config.seed)
    return dataset, collate


def build_stage(model: TextToAudioModel, config: TrainConfig, info: DistInfo, from_scratch: bool = False):
    if config.stage == "flow":
        from .flow_stage import FlowStage

        return FlowStage(model, config, info)
    if config.stage == "autoencoder":
        from .autoencoder_stage import AutoencoderStage

        return AutoencoderStage(model, config, info, from_scratch=from_scratch)
    if config.stage == "arc":
        from .arc_stage import ARCStage

        return ARCStage(model, config, info)
    raise ValueError(f"unknown training stage {config.stage!r}; choose 'autoencoder', 'flow' or 'arc'")


def train(config: TrainConfig, run_dir: str | Path, model_overrides: list[str] | None = None,
          device: str | None = None, progress: bool = True) -> TrainSummary:
    """Run (or resume) one training stage into run_dir. Works alone or under torchrun (DDP)."""
    config.validate()
    info = init_distributed(device)
    try:
        model = build_training_model(config, model_overrides)
        if config.lora is not None:
            if config.stage != "flow":
                raise ValueError(f"LoRA trains in the flow stage (adapters on the flow base); got stage "
                                 f"{config.stage!r}")
            from ..nn.lora import LoRAConfig, inject_dit_lora

            model.requires_grad_(False)
            with torch.random.fork_rng(devices=[]):  # the adapters' initial A from the run's seed: same seed, same run
                torch.manual_seed(config.seed)
                inject_dit_lora(model, LoRAConfig.parse(config.lora))  # only the adapters are trainable
        dataset, collate = build_dataset(config, model.config)
        from_scratch = resolve_model_config(config.model, model_overrides) is not None
        stage = build_stage(model, config, info, from_scratch=from_scratch)
        return run_training(stage, dataset, config, run_dir, info, collate, progress=progress)
    finally:
        # DDP modules hold the process group; free them (cycles included) while the interpreter is whole, so
        # gloo's worker threads are joined here and not torn down at exit (seen as a rare SIGABRT in CI).
        model = stage = None
        gc.collect()
        cleanup(info)
