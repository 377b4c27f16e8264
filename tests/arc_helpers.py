"""A small ARC stage and batch shared by the ARC tests (a 2-block, 64-wide `tiny`; runs in well under a second)."""

import torch

from arcaudio.config import ModelConfig, preset
from arcaudio.loading import build_model
from arcaudio.training.config import TrainConfig, apply_overrides
from arcaudio.training.distributed import DistInfo


def small_config() -> ModelConfig:
    data = apply_overrides(preset("tiny").to_dict(), ["dit.depth=2", "dit.embed_dim=64", "autoencoder.channels=4",
                                                      "conditioning.prompt.arch.num_layers=1"])
    return ModelConfig.from_dict(data)


def small_arc_stage(*overrides: str):
    """An ARCStage on `small_config` with TrainConfig `overrides` (e.g. "arc.r1_weight=0.1") on top of: batch 4,
    no EMA, both players at lr 1e-3."""
    from arcaudio.training.arc_stage import ARCStage

    torch.manual_seed(0)
    model = build_model(small_config())
    with torch.no_grad():  # a "pre-trained" flow: nonzero output projections, so G and D both depend on inputs
        model.dit.postprocess_conv.weight.normal_(0, 0.1)
        for block in model.dit.transformer.layers:
            block.ff.ff[2].weight.normal_(0, 0.02)
    base = ["stage='arc'", "data='x'", "batch_size=4", "ema_decay=0.0", "arc.generator_lr=1e-3",
            "arc.discriminator_lr=1e-3"]
    config = TrainConfig.from_dict(apply_overrides(TrainConfig().to_dict(), base + list(overrides)))
    return ARCStage(model, config, DistInfo())


def arc_batch(n: int = 4, frames: int = 64) -> dict:
    """n pre-encoded latents (n, 32, frames) with distinct captions."""
    g = torch.Generator().manual_seed(1)
    return {"latents": torch.randn(n, 32, frames, generator=g), "caption": ["low", "high", "noise", "drums"][:n],
            "seconds_total": torch.full((n,), 2.0)}
