"""The assembled latent text-to-audio model: autoencoder + conditioners + DiT.

State-dict prefixes: `autoencoder.`, `conditioners.`, `dit.` (stable-audio-tools: `pretransform.model.`,
`conditioner.conditioners.`, `model.model.`; compat/sao.py maps between them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import ModelConfig
from .autoencoder import AudioAutoencoder
from .conditioners import NumberConditioner, T5Conditioner
from .dit import DiffusionTransformer

COMPONENTS = ("autoencoder", "conditioners", "dit")  # top-level modules, in state-dict order


@dataclass
class Conditioning:
    """What the DiT is conditioned on, for a batch of B prompts.

    cross_attn_cond: (B, max_length + 1, cond_dim), T5 tokens (padded rows zero) then the seconds token.
    global_cond: (B, cond_dim), the seconds embedding; with `pooled_prompt_in_global`, (B, 2 * cond_dim): the
        seconds embedding then the masked mean of the prompt tokens, which starts at column `global_prompt_from`.
    prompt_mask: (B, max_length) bool, True on real tokens (informational: the DiT attends to every token).
    context_kv: the DiT's per-block cross-attention keys and values of `cross_attn_cond`, when precomputed
        (`TextToAudioModel.with_context_cache`); every derived Conditioning (null, cat, ...) drops them.
    """

    cross_attn_cond: torch.Tensor
    global_cond: torch.Tensor
    prompt_mask: torch.Tensor
    global_prompt_from: int | None = None
    context_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.cross_attn_cond.shape[0]

    def with_prompts_permuted(self, perm: torch.Tensor) -> Conditioning:
        """Item i gets the prompt (tokens, and pooled prompt if any) of item perm[i] and keeps its own seconds.
        Returns new tensors; self is left untouched."""
        n, k = self.prompt_mask.shape[1], self.global_prompt_from
        perm = perm.to(self.cross_attn_cond.device)
        cross = torch.cat([self.cross_attn_cond[perm, :n], self.cross_attn_cond[:, n:]], dim=1)  # (B, n + 1, D)
        glob = self.global_cond.clone() if k is None else torch.cat(
            [self.global_cond[:, :k], self.global_cond[perm, k:]], dim=1)  # (B, Dg)
        return Conditioning(cross, glob, self.prompt_mask[perm], k)

    def null(self) -> Conditioning:
        """The unconditional branch of CFG (and of CFG dropout in training): every cross-attention token zeroed
        (as stable-audio-tools), the seconds embedding in the global condition kept, a pooled prompt zeroed."""
        glob, k = self.global_cond, self.global_prompt_from
        if k is not None:
            glob = torch.cat([glob[:, :k], torch.zeros_like(glob[:, k:])], dim=1)
        return Conditioning(torch.zeros_like(self.cross_attn_cond), glob, self.prompt_mask, k)

    def with_negative(self, negative: Conditioning) -> Conditioning:
        """The unconditional branch of CFG with a negative prompt: `negative`'s cross-attention tokens (its prompt,
        padded rows zero, and its seconds token) where `null()` has zeros, as stable-audio-tools does; the global
        condition is self's (the reference drops a negative global condition), a pooled prompt the negative's."""
        if negative.cross_attn_cond.shape != self.cross_attn_cond.shape:
            raise ValueError(f"negative conditioning {tuple(negative.cross_attn_cond.shape)} does not match "
                             f"{tuple(self.cross_attn_cond.shape)}: give one negative prompt per prompt")
        glob, k = self.global_cond, self.global_prompt_from
        if k is not None:
            glob = torch.cat([glob[:, :k], negative.global_cond[:, k:]], dim=1)
        return Conditioning(negative.cross_attn_cond, glob, negative.prompt_mask, k)

    def dropped(self, drop: torch.Tensor) -> Conditioning:
        """Items where `drop` (B,) bool is True replaced by their `null()` (CFG dropout)."""
        null = self.null()
        drop = drop.to(self.cross_attn_cond.device)
        return Conditioning(torch.where(drop[:, None, None], null.cross_attn_cond, self.cross_attn_cond),
                            torch.where(drop[:, None], null.global_cond, self.global_cond), self.prompt_mask,
                            self.global_prompt_from)

    def rows(self, rows: slice) -> Conditioning:
        """Items `rows` of the batch (views; a micro-batch of gradient accumulation)."""
        return Conditioning(self.cross_attn_cond[rows], self.global_cond[rows], self.prompt_mask[rows],
                            self.global_prompt_from)

    @staticmethod
    def cat(conds: Sequence[Conditioning]) -> Conditioning:
        """Concatenate along the batch."""
        return Conditioning(torch.cat([c.cross_attn_cond for c in conds]), torch.cat([c.global_cond for c in conds]),
                            torch.cat([c.prompt_mask for c in conds]), conds[0].global_prompt_from)


class TextToAudioModel(nn.Module):
    """Latent text-to-audio model trained as a rectified flow (t = 1 is noise, v = noise - x0)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config.validate()
        for name in COMPONENTS:
            setattr(self, name, self.build_component(name))

    def build_component(self, name: str) -> nn.Module:
        """A fresh, randomly initialised `name` (one of COMPONENTS) for this model's config, on torch's default
        device. `arcaudio.loading.build_model` uses it to build a model one component at a time."""
        config = self.config
        if name == "autoencoder":
            return AudioAutoencoder(config.autoencoder)
        if name == "conditioners":
            cond_dim = config.conditioning.cond_dim
            return nn.ModuleDict({
                "prompt": T5Conditioner(config.conditioning.prompt, cond_dim),
                "seconds_total": NumberConditioner(config.conditioning.seconds_total, cond_dim),
            })
        if name == "dit":
            return DiffusionTransformer(config.dit)
        raise ValueError(f"unknown component {name!r}; components: {list(COMPONENTS)}")

    @property
    def device(self) -> torch.device:
        return self.dit.preprocess_conv.weight.device

    def condition(self, prompts: Sequence[str], seconds_total: Sequence[float] | float) -> Conditioning:
        """Encode B prompts and their `seconds_total` (one number for all, or one each)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if isinstance(seconds_total, (int, float)):
            seconds_total = [float(seconds_total)] * len(prompts)
        if len(seconds_total) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(seconds_total)} seconds_total values")
        text, mask = self.conditioners["prompt"](prompts)  # (B, L, D), (B, L)
        seconds, _ = self.conditioners["seconds_total"](seconds_total)  # (B, 1, D)
        return self.assemble_conditioning(text, mask, seconds)

    def assemble_conditioning(self, text: torch.Tensor, mask: torch.Tensor, seconds: torch.Tensor) -> Conditioning:
        """Encoded prompts (B, L, D) with their mask (B, L) and seconds tokens (B, 1, D) -> Conditioning, on the
        seconds tokens' device and dtype (no host work)."""
        text = text.to(device=seconds.device, dtype=seconds.dtype)
        mask = mask.to(seconds.device)
        glob, prompt_from = seconds[:, 0], None  # (B, D)
        if self.config.conditioning.pooled_prompt_in_global:
            weights = mask.to(text.dtype)[..., None]  # (B, L, 1)
            pooled = (text * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)
            glob, prompt_from = torch.cat([glob, pooled], dim=1), glob.shape[1]  # (B, 2D)
        return Conditioning(torch.cat([text, seconds], dim=1), glob, mask, prompt_from)

    def with_context_cache(self, cond: Conditioning) -> Conditioning:
        """`cond` with the DiT's cross-attention keys and values computed once (for sampling: every step reuses
        them; in Stable Audio Open Small's DiT that is 16 x 2 projections of 65 tokens per step saved)."""
        return Conditioning(cond.cross_attn_cond, cond.global_cond, cond.prompt_mask, cond.global_prompt_from,
                            self.dit.context_kv(cond.cross_attn_cond))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning,
                exit_layer: int | None = None) -> torch.Tensor:
        """Velocity (B, C, T) at latents x (B, C, T) and times t (B,); see DiffusionTransformer for exit_layer."""
        return self.dit(x, t, cond.cross_attn_cond, cond.global_cond, exit_layer=exit_layer,
                        context_kv=cond.context_kv)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component (an external pre-trained T5 is outside the registry and not counted)."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        counts = {
            "dit": count(self.dit),
            "autoencoder": count(self.autoencoder),
            "autoencoder.encoder": count(self.autoencoder.encoder),
            "autoencoder.decoder": count(self.autoencoder.decoder),
            "conditioners.seconds_total": count(self.conditioners["seconds_total"]),
        }
        if self.conditioners["prompt"].builtin:
            counts["conditioners.prompt"] = count(self.conditioners["prompt"])
        counts["total"] = count(self)
        return counts
