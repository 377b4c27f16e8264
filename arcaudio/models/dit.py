"""Diffusion Transformer of Stable Audio Open (continuous transformer, prepended global token, no adaLN).

The network maps (x_t, t, conditioning) -> velocity; noising, targets and sampling live in flow.py / sampling.py.
Parameter names match stable-audio-tools' `DiffusionTransformer` below its `model.model.` prefix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from ..config import DiTConfig
from ..nn.attention import Attention, RotaryEmbedding
from ..nn.layers import FourierFeatures, LayerNorm


class SwiGLU(nn.Module):
    """`proj` (D -> 2H, with bias) split into value and gate: value * silu(gate). (..., D) -> (..., H)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.silu(gate)


class FeedForward(nn.Module):
    """SwiGLU MLP, keys `ff.0.proj` and `ff.2` (zero-initialised output). (..., D) -> (..., D)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        inner = dim * mult
        out = nn.Linear(inner, dim)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.ff = nn.Sequential(SwiGLU(dim, inner), nn.Identity(), out, nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class TransformerBlock(nn.Module):
    """Pre-norm block: x += SelfAttn(LN(x)); x += CrossAttn(LN(x), context); x += FF(LN(x)). (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, head_dim: int, context_dim: int, qk_norm: str = "ln", ff_mult: int = 4):
        super().__init__()
        self.pre_norm = LayerNorm(dim)
        self.self_attn = Attention(dim, head_dim, qk_norm=qk_norm)
        self.cross_attend_norm = LayerNorm(dim)
        self.cross_attn = Attention(dim, head_dim, context_dim=context_dim, qk_norm=qk_norm)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, mult=ff_mult)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None, rotary: torch.Tensor,
                context_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.pre_norm(x), rotary=rotary)
        x = x + self.cross_attn(self.cross_attend_norm(x), context=context, context_kv=context_kv)
        return x + self.ff(self.ff_norm(x))


class ContinuousTransformer(nn.Module):
    """`project_in` -> prepend tokens -> blocks with RoPE over every position -> `project_out`."""

    def __init__(self, dim: int, depth: int, dim_in: int, dim_out: int, head_dim: int, context_dim: int,
                 qk_norm: str = "ln", ff_mult: int = 4):
        super().__init__()
        self.project_in = nn.Linear(dim_in, dim, bias=False)
        self.project_out = nn.Linear(dim, dim_out, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(max(head_dim // 2, 32))
        self.layers = nn.ModuleList(
            TransformerBlock(dim, head_dim, context_dim, qk_norm=qk_norm, ff_mult=ff_mult) for _ in range(depth))


class DiffusionTransformer(nn.Module):
    """Velocity network v(x_t, t, c) of a rectified flow over latents.

    Inputs: x (B, C, T) latents, t (B,) in [0, 1] (1 = noise), cross_attn_cond (B, S, Dc) context tokens
    (T5 tokens then the seconds token, unmasked), global_cond (B, Dg) (the seconds embedding).
    The global embedding (projected global_cond + timestep embedding) is prepended as one extra token, so the
    transformer runs on T + 1 tokens.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = config
        dim, io = config.embed_dim, config.io_channels
        self.timestep_features = FourierFeatures(1, 256)
        self.to_timestep_embed = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.to_cond_embed = nn.Sequential(
            nn.Linear(config.cond_token_dim, dim, bias=False), nn.SiLU(), nn.Linear(dim, dim, bias=False))
        self.to_global_embed = nn.Sequential(
            nn.Linear(config.global_cond_dim, dim, bias=False), nn.SiLU(), nn.Linear(dim, dim, bias=False))
        self.transformer = ContinuousTransformer(dim, config.depth, dim_in=io, dim_out=io, head_dim=config.head_dim,
                                                 context_dim=dim, qk_norm=config.qk_norm, ff_mult=config.ff_mult)
        self.preprocess_conv = nn.Conv1d(io, io, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(io, io, 1, bias=False)
        nn.init.zeros_(self.preprocess_conv.weight)
        nn.init.zeros_(self.postprocess_conv.weight)
        self.grad_checkpointing = False  # recompute blocks in the backward pass (training only)

    def context_kv(self, cross_attn_cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every block's cross-attention keys and values for context tokens (B, S, Dc): depth x 2 x (B, H, S, Dh).
        They depend on the conditioning alone, so a sampler computes them once per generation, not once per step."""
        dtype = self.preprocess_conv.weight.dtype
        context = self.to_cond_embed(cross_attn_cond.to(dtype))  # (B, S, D)
        return [block.cross_attn.context_kv(context) for block in self.transformer.layers]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cross_attn_cond: torch.Tensor, global_cond: torch.Tensor,
                exit_layer: int | None = None,
                context_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Returns the velocity (B, C, T); with `exit_layer=k`, the hidden states right after block k
        (0-indexed, as stable-audio-tools' `exit_layer_ix`), prepended token included: (B, T + 1, D).
        `context_kv`: `self.context_kv(cross_attn_cond)`, precomputed (cross_attn_cond is then not read)."""
        depth = len(self.transformer.layers)
        if exit_layer is not None and not 0 <= exit_layer < depth:
            raise ValueError(f"exit_layer {exit_layer} is out of range for a DiT of depth {depth} (0..{depth - 1})")
        if context_kv is not None and len(context_kv) != depth:
            raise ValueError(f"context_kv has {len(context_kv)} entries, the DiT has {depth} blocks")
        dtype = self.preprocess_conv.weight.dtype
        x, t = x.to(dtype), t.to(dtype)
        context = None if context_kv is not None else self.to_cond_embed(cross_attn_cond.to(dtype))  # (B, S, D)
        global_embed = self.to_global_embed(global_cond.to(dtype))  # (B, D)
        global_embed = global_embed + self.to_timestep_embed(self.timestep_features(t[:, None]))  # (B, D)

        x = self.preprocess_conv(x) + x  # (B, C, T)
        tr = self.transformer
        h = tr.project_in(x.transpose(1, 2))  # (B, C, T) -> (B, T, D)
        h = torch.cat([global_embed[:, None, :], h], dim=1)  # (B, T + 1, D)
        rotary = tr.rotary_pos_emb(h.shape[1])  # (T + 1, R)
        checkpointed = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(tr.layers):
            kv = context_kv[i] if context_kv is not None else None
            if checkpointed:
                h = torch.utils.checkpoint.checkpoint(block, h, context, rotary, kv, use_reentrant=False)
            else:
                h = block(h, context, rotary, kv)
            if i == exit_layer:
                return h
        out = tr.project_out(h).transpose(1, 2)[:, :, 1:]  # (B, T + 1, D) -> (B, C, T), prepended token dropped
        return self.postprocess_conv(out) + out
