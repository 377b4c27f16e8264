"""Rectified-flow pre-training of the DiT: x_t = (1 - t) x0 + t eps, regress v = eps - x0 (MSE).

The autoencoder is frozen (latents come pre-encoded, or are encoded on the fly from audio batches); the
seconds conditioner and, for models with a built-in T5, the text encoder train along with the DiT.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import save_model
from ..flow import add_noise, sample_t, velocity_target
from ..models.text_to_audio import TextToAudioModel
from .accumulation import gradient_sync, micro_batches
from .config import TrainConfig
from .distributed import DistInfo, wrap_ddp
from .ema import EMA, swapped_in
from .optim import build_optimizer, build_scheduler
from .sharding import (
    as_float,
    distribute_optimizer_state,
    gathered,
    is_sharded,
    local_share,
    shard_model,
    whole_copy,
)
from .throughput import counted_flops

log = logging.getLogger(__name__)


class FlowObjective(nn.Module):
    """The whole differentiable path of one flow step, as one module (so DDP sees every trainable weight)."""

    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.model = model

    def forward(self, x0: torch.Tensor, captions: list[str], seconds: torch.Tensor, t: torch.Tensor,
                noise: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """x0, noise (B, C, T); t (B,); drop (B,) bool: use the null condition (CFG dropout)."""
        cond = self.model.condition(captions, seconds.tolist()).dropped(drop)
        v = self.model.dit(add_noise(x0, noise, t), t, cond.cross_attn_cond, cond.global_cond)  # (B, C, T)
        return F.mse_loss(v.float(), velocity_target(x0, noise).float())


def batch_latents(model: TextToAudioModel, batch: dict[str, Any], device: torch.device,
                  generator: torch.Generator) -> torch.Tensor:
    """Latents (B, C, T) of a batch: pre-encoded, or encoded now (a posterior sample) from its audio."""
    if "latents" in batch:
        return batch["latents"].to(device)
    with torch.no_grad():
        return model.autoencoder.encode(batch["audio"].to(device), sample=True, generator=generator)


def recaptioned(batch: dict[str, Any], generator: torch.Generator, short_share: float = 0.0,
                named: bool = False) -> list[str] | tuple[list[str], list[dict[str, str]]]:
    """A freshly drawn training-style caption for every item of a procedural-set batch (see procedural/synth.py), from
    its `attributes`, naming a random subset of them with probability `short_share` (`synth.training_caption`);
    the draw comes from the step's generator, so a resumed run draws the same captions. With `named`, also the
    attributes each caption names ({name: class} per item)."""
    import numpy as np

    from ..procedural.synth import named_training_caption

    attributes = batch.get("attributes")
    if attributes is None or any(a is None for a in attributes):
        raise ValueError("flow.recaption needs procedural-set items with `attributes` metadata (arcaudio synth "
                         "manifests, encoded with arcaudio encode); this batch has none")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    drawn = [named_training_caption(a, rng, short_share) for a in attributes]
    captions = [caption for caption, _ in drawn]
    return (captions, [names for _, names in drawn]) if named else captions


class FlowStage:
    """Optimizer, scheduler and EMA over the DiT, the seconds conditioner and (optionally) a built-in T5."""

    def __init__(self, model: TextToAudioModel, config: TrainConfig, info: DistInfo):
        self.model, self.config, self.info = model, config, info
        fsdp = config.strategy == "fsdp" and info.enabled
        model.train()
        if not fsdp:  # under FSDP the whole model never goes to the device: each process moves only its shards
            model.to(info.device)
        model.autoencoder.requires_grad_(False).eval()
        prompt = model.conditioners["prompt"]
        text_trainable = prompt.builtin and config.flow.train_text_encoder and config.lora is None
        if prompt.builtin and config.lora is None:  # with LoRA only the adapters train (runner.train froze the rest)
            prompt.requires_grad_(text_trainable)
        model.dit.grad_checkpointing = config.grad_checkpointing
        self.export_model = None  # under FSDP: a whole copy on rank 0 (CPU) that checkpoints' exports are written from
        if fsdp:
            self.export_model = whole_copy(model, info)
            units = [*model.dit.transformer.layers, model.conditioners["prompt"]]
            self.objective = shard_model(FlowObjective(model), info, units)  # shards placed on the device
            model.to(info.device)  # the frozen parts and buffers, whole
            held, total = local_share(model)
            log.info("fsdp: process %d holds %d of the %d trainable weight values (%.1f %%)", info.rank, held, total,
                     100 * held / max(total, 1))
        else:
            self.objective = wrap_ddp(FlowObjective(model), info)
        text_params = [p for p in prompt.parameters() if p.requires_grad]
        text_ids = {id(p) for p in text_params}
        main_params = [p for p in model.parameters() if p.requires_grad and id(p) not in text_ids]
        groups = [{"params": [p for p in main_params if p.ndim >= 2]},
                  {"params": [p for p in main_params if p.ndim < 2], "weight_decay": 0.0}]
        if text_params:
            lr = config.optim.lr * config.flow.text_encoder_lr_scale
            groups.append({"params": text_params, "lr": lr})
        self.optimizer = build_optimizer(groups, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.steps, config.optim)
        self.trainable = [p for g in groups for p in g["params"]]
        self.ema = EMA(model, config.ema_decay, config.ema_warmup_power) if config.ema_decay > 0 else None

    def train_step(self, batch: dict[str, Any], step: int, generator: torch.Generator) -> dict[str, float]:
        device, fc = self.info.device, self.config.flow
        x0 = batch_latents(self.model, batch, device, generator)
        b = x0.shape[0]
        t = sample_t(fc.time_sampler, b, generator, shift=fc.time_shift).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        drop = (torch.rand(b, generator=generator) < fc.cfg_dropout).to(device)
        captions = recaptioned(batch, generator, fc.short_caption_share) if fc.recaption else batch["caption"]
        seconds, loss = batch["seconds_total"], 0.0
        parts = micro_batches(b, self.config.grad_accum)
        for k, (rows, share) in enumerate(parts):
            with gradient_sync(self.objective, k == len(parts) - 1):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                    part = self.objective(x0[rows], captions[rows], seconds[rows], t[rows], noise[rows], drop[rows])
                (part * share).backward()
            loss += float(part.detach()) * share
        clip = self.config.optim.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, clip if clip > 0 else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": loss, "grad_norm": as_float(grad_norm), "lr": self.scheduler.get_last_lr()[0]}

    def step_flops(self, batch: dict[str, Any]) -> int:
        """The model FLOPs of one step on `batch` (throughput.py): latents, the objective's forward and its
        backward to the trainable weights, counted on a side computation (own noise, gradients thrown away).
        A backward pass, not autograd.grad to the parameters: under FSDP those are the shards, which the graph
        does not reach (FSDP's hooks hand them the gathered weights' gradients), so no backward would be counted."""
        generator = torch.Generator().manual_seed(0)
        objective = getattr(self.objective, "module", self.objective)  # not DDP's wrapper: no all-reduce
        b = len(batch["caption"])

        def step() -> None:
            x0 = batch_latents(self.model, batch, self.info.device, generator)
            t, noise = torch.rand(b, generator=generator), torch.randn(x0.shape, generator=generator)
            with torch.autocast(self.info.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                loss = objective(x0, batch["caption"], batch["seconds_total"], t.to(x0.device), noise.to(x0.device),
                                 torch.zeros(b, dtype=torch.bool, device=x0.device))
            loss.backward()

        flops = counted_flops(step)[1]
        self.optimizer.zero_grad(set_to_none=True)  # the side computation's gradients
        return flops

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(distribute_optimizer_state(state["optimizer"], self.optimizer))
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def export(self, path: Path) -> Path:
        """Save the model with its EMA weights in arcaudio format; with LoRA, the adapter file beside it
        (`adapter.safetensors`) and the model with the adapters merged."""
        with swapped_in(self.ema, self.model):
            if is_sharded(self.model):  # FSDP: gathered on every process, written by rank 0
                whole = gathered(self.model, self.export_model)
                if whole is not None:
                    save_model(whole, path)
                return Path(path)
            if self.config.lora is None:
                return save_model(self.model, path)
            from ..nn.lora import LoRAConfig, merge_lora, save_adapter

            save_adapter(self.model, Path(path).with_name("adapter.safetensors"), LoRAConfig.parse(self.config.lora))
            return save_model(merge_lora(copy.deepcopy(self.model)), path)
