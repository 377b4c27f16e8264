"""Training configuration: strict dataclasses, JSON, and `--set a.b=value` overrides."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import JsonConfig


@dataclass
class OptimConfig:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.01
    eps: float = 1e-8
    warmup_steps: int = 0  # linear warm-up from 0
    schedule: Literal["constant", "cosine"] = "constant"  # after warm-up
    grad_clip: float = 1.0  # max global grad norm; 0 disables


@dataclass
class FlowTrainConfig:
    """Rectified-flow pre-training of the DiT (and optionally a built-in text encoder)."""

    time_sampler: Literal["uniform", "logit_normal", "logsnr_uniform"] = "logit_normal"
    time_shift: float = 1.0  # > 1 puts more training on noisy times
    cfg_dropout: float = 0.1  # probability of training a sample with the cross-attention condition zeroed
    train_text_encoder: bool = True  # for a built-in (arch) T5: train it along with the DiT
    # procedural-set items (with `attributes` metadata): a fresh training-style caption at every step instead of
    # the stored one, so the text encoder sees every phrasing of every clip and learns the words, not the strings
    recaption: bool = False
    # with recaption: the share of those captions that name only a random subset of the clip's attributes (1 to all,
    # varied order: "a sine note", "something on the left", "plucked A4"; synth.training_caption), so that short
    # prompts work; 0 keeps the full captions and draws exactly what it did before the field existed
    short_caption_share: float = 0.0
    text_encoder_lr_scale: float = 1.0  # its learning rate = optim.lr * this


@dataclass
class AutoencoderTrainConfig:
    """Oobleck VAE training on random crops: multi-resolution STFT + L1 + KL, optional adversarial term."""

    crop_samples: int = 32768  # training crop length, a multiple of the downsampling ratio
    # "waveform": losses on the decoded audio. "magnitude" (spectral autoencoders with peak-locked phase only): the
    # decoder's magnitudes against the input's STFT at the same resolution, and the envelope from their frame
    # energies; the phase, which follows from the magnitudes, is never computed in training (many times faster).
    # l1_weight, stft_sizes and envelope_hops do not apply there
    domain: Literal["waveform", "magnitude"] = "waveform"
    stft_weight: float = 1.0
    stft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512, 256, 128, 64, 32])
    stft_log_eps: float = 1e-3  # floor of the log magnitudes: keeps near-silent bins from dominating the loss
    l1_weight: float = 0.1
    envelope_weight: float = 0.0  # log frame-energy loss per channel (level, stereo position, envelope)
    envelope_hops: list[int] = field(default_factory=lambda: [4096, 1024])
    kl_weight: float = 1e-4
    adversarial_weight: float = 0.0  # 0 disables the discriminator
    feature_matching_weight: float = 5.0  # with the adversarial term
    discriminator_lr: float = 1e-4
    adversarial_start: int = 0  # step from which the adversarial term is on
    data_init: bool = True  # from scratch: rescale conv gains on the first batch (training/autoencoder_init.py)
    residual_gain: float = 0.3  # with data_init: output scale of each residual branch relative to its input


@dataclass
class ARCTrainConfig:
    """Adversarial Relativistic-Contrastive post-training of a pre-trained flow (training/arc_stage.py).
    Each player has its own AdamW at its own rate (`generator_lr`, `discriminator_lr`), both with `optim`'s betas,
    weight decay, warm-up and schedule (counted in run steps, so both schedules end with the run); `optim.lr` is
    not used by this stage. The paper's rates were not published: 3e-5 for both is what worked on the tiny model
    (1e-4 collapsed the generator's diversity); the reference notes suggest 5e-6 to 2e-5 at Stable Audio Open
    Small's size."""

    exit_layer: int | None = None  # last DiT block (0-indexed) of the discriminator trunk; None: depth_fraction
    depth_fraction: float = 0.75  # with exit_layer None: keep round(fraction * depth) blocks (16 -> 12)
    soft_clip_scale: float | None = None  # scale * tanh(score / scale) on the head's output
    generator_time: Literal["uniform", "logit_normal", "logsnr_uniform"] = "logsnr_uniform"  # t of x_t for G
    discriminator_time: Literal["uniform", "logit_normal", "logsnr_uniform"] = "logit_normal"  # re-noise level s
    generator_weight: float = 1.0
    discriminator_weight: float = 1.0
    contrastive: bool = True
    contrastive_weight: float = 1.0  # lambda in D's loss L_R + lambda L_C
    # wrong prompts of the contrastive term: "derangement", a random shuffle that never pairs two identical captions
    # (so the term never asks D to tell a prompt from itself); "roll", item i gets item i + 1's prompt, the
    # reference's intended roll (its in-place version hands the last item item 1's prompt), duplicates and all
    # "conflicting" (recaptioned procedural batches): a prompt that contradicts the clip
    # (arc_losses.conflicting_prompts), not merely another caption, which with short captions is often true of it;
    # "edited" (recaptioned procedural batches): the clip's own caption with one named attribute moved to another
    # class (captions.contradicting_caption), a minimal pair that D can only tell apart by reading that attribute;
    # "within_kind": a conflicting prompt that contradicts the clip inside its kind (no other kind named, no attribute
    # the clip lacks), so that D cannot reject wrong prompts by their kind alone
    contrastive_shuffle: Literal["derangement", "roll", "conflicting", "edited", "within_kind"] = "derangement"
    # which head of D scores the contrastive term: "shared", the one G is trained against (the paper's); "separate",
    # a second head on the same trunk, trained on L_C alone, so that G never climbs a prompt score directly
    contrastive_head: Literal["shared", "separate"] = "shared"
    r1_weight: float = 0.0  # finite-difference gradient penalty on real (R1) and generated (R2) inputs of D
    r2_weight: float = 0.0
    penalty_sigma: float = 0.05
    cfg_dropout: float = 0.0  # prompt dropout on generator steps (the reference keeps its 0.1; no CFG is used)
    # as flow.recaption / flow.short_caption_share: fresh training captions for procedural-set items at every step,
    # this share of them naming a subset of the attributes (so that post-training keeps short prompts working)
    recaption: bool = False
    short_caption_share: float = 0.0
    generator_lr: float = 3e-5
    discriminator_lr: float = 3e-5
    # the rate of D's freshly initialised conv head (None: discriminator_lr). The trunk starts from the trained flow,
    # the head from random weights: at a fine-tuning rate the head takes hundreds of steps to score anything, and
    # until it does G is trained against a D that tells neither real from generated nor a prompt from another
    discriminator_head_lr: float | None = None
    discriminator_grad_clip: float = 1.0
    # run steps at the start that train D alone (G and its EMA untouched) before G and D alternate: G's first steps
    # then meet a D that has learned something rather than a fresh head's noise
    discriminator_warmup: int = 0


@dataclass
class TrainConfig(JsonConfig):
    """Everything a training run needs besides the model config. Saved in every run folder and checkpoint."""

    stage: Literal["autoencoder", "flow", "arc"] = "flow"
    model: str = "tiny"  # preset, arcaudio checkpoint, or stable-audio-tools model to start from
    data: str = ""  # a manifest (CSV/JSONL) of audio, or a folder of pre-encoded latents (`arcaudio encode`)
    steps: int = 1000  # total optimizer steps of the run
    batch_size: int = 16  # per process
    # micro-batches per optimizer step: the batch is computed in this many slices, gradients summed (the same update
    # up to rounding, a fraction of the activation memory; flow and ARC stages)
    grad_accum: int = 1
    seed: int = 0
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast (CPUs with bf16 and GPUs)
    # under torchrun: "ddp" replicates the model on every process; "fsdp" (FSDP2) shards its trainable weights,
    # gradients and optimizer state across them (flow and ARC stages), for models that do not fit one device
    strategy: Literal["ddp", "fsdp"] = "ddp"
    grad_checkpointing: bool = False  # recompute DiT blocks in the backward pass (saves memory)
    ema_decay: float = 0.999  # EMA of trainable weights; exported model uses it; 0 disables
    lora: str | None = None  # flow stage: train only LoRA adapters on the DiT ("rank=16,alpha=16,targets=to_qkv+ff")
    ema_warmup_power: float = 0.75  # decay_k = min(ema_decay, 1 - (k + 1) ** -power)
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 0  # DataLoader workers per process
    shuffle_buffer: int = 256  # streamed tar shards only: samples held per shard for shuffling (0: stored order)
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)
    optim: OptimConfig = field(default_factory=OptimConfig)
    flow: FlowTrainConfig = field(default_factory=FlowTrainConfig)
    autoencoder: AutoencoderTrainConfig = field(default_factory=AutoencoderTrainConfig)
    arc: ARCTrainConfig = field(default_factory=ARCTrainConfig)

    def validate(self) -> TrainConfig:
        if not self.data:
            raise ValueError("train config needs `data`: a manifest file or a folder of pre-encoded latents")
        if self.lora is not None:
            from ..nn.lora import LoRAConfig

            LoRAConfig.parse(self.lora)  # a bad setting fails before any work
        if not 1 <= self.grad_accum <= self.batch_size:
            raise ValueError(f"grad_accum must be in [1, batch_size = {self.batch_size}], got {self.grad_accum}")
        if self.grad_accum > 1 and self.stage == "autoencoder":
            raise ValueError("grad_accum applies to the flow and ARC stages; the autoencoder stage takes whole batches")
        if self.strategy == "fsdp" and (self.stage == "autoencoder" or self.lora is not None):
            raise ValueError(f"strategy 'fsdp' is built for the flow and ARC stages without LoRA; "
                             f"{'LoRA' if self.lora else 'the autoencoder stage'} runs with 'ddp'")
        if self.shuffle_buffer < 0 or self.num_workers < 0:
            raise ValueError(f"shuffle_buffer and num_workers must be >= 0, got {self.shuffle_buffer} and "
                             f"{self.num_workers}")
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.arc.cfg_dropout <= 1:
            raise ValueError(f"arc.cfg_dropout must be in [0, 1], got {self.arc.cfg_dropout}")
        if self.stage == "arc" and self.optim.lr != OptimConfig.lr:
            raise ValueError(f"ARC post-training trains the generator at arc.generator_lr "
                             f"({self.arc.generator_lr:g}), not optim.lr ({self.optim.lr:g}); set "
                             "arc.generator_lr (and arc.discriminator_lr) instead")
        for name in ("generator_lr", "discriminator_lr", "discriminator_head_lr"):
            value = getattr(self.arc, name)
            if value is not None and not value > 0:
                raise ValueError(f"arc.{name} must be > 0, got {value}")
        if not 0 < self.arc.depth_fraction <= 1:
            raise ValueError(f"arc.depth_fraction must be in (0, 1], got {self.arc.depth_fraction}")
        if not 0 <= self.flow.cfg_dropout <= 1:
            raise ValueError(f"flow.cfg_dropout must be in [0, 1], got {self.flow.cfg_dropout}")
        if self.stage == "arc" and not 0 <= self.arc.discriminator_warmup < self.steps:
            raise ValueError(f"arc.discriminator_warmup must be in [0, steps) = [0, {self.steps}) so that the "
                             f"generator trains at all, got {self.arc.discriminator_warmup}")
        if self.arc.contrastive_head == "separate" and not self.arc.contrastive:
            raise ValueError("arc.contrastive_head='separate' puts the contrastive term on a second head; with "
                             "arc.contrastive=false there is no such term: set arc.contrastive=true or leave "
                             "arc.contrastive_head='shared'")
        if self.arc.contrastive_shuffle in ("conflicting", "edited", "within_kind") and not self.arc.recaption:
            raise ValueError(f"arc.contrastive_shuffle={self.arc.contrastive_shuffle!r} works from the attributes each "
                             "caption names, which only recaptioned procedural batches have; set arc.recaption=true")
        for stage in ("flow", "arc"):
            share = getattr(self, stage).short_caption_share
            if not 0 <= share <= 1:
                raise ValueError(f"{stage}.short_caption_share must be in [0, 1], got {share}")
            if share > 0 and not getattr(self, stage).recaption:
                raise ValueError(f"{stage}.short_caption_share ({share}) acts only on recaptioned batches; set "
                                 f"{stage}.recaption=true as well")
        return self



def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as Python literals, then as JSON, else taken as strings) to a
    config dict.
    Unknown keys raise, naming the valid ones at that level."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            try:  # JSON spellings: true, false, null
                value = json.loads(raw)
            except ValueError:
                value = raw
        node, parts = data, key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(parts[:i]) or "top level"
                valid = sorted(node) if isinstance(node, dict) else []
                raise ValueError(f"unknown config key {key!r}: no {part!r} at {where}; valid: {valid}")
            if i == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return data
