"""Multi-head attention with per-head QK LayerNorm and partial rotary position embeddings (GPT-NeoX layout)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RotaryEmbedding(nn.Module):
    """Rotary frequencies for `dim` rotated dims, base 10000. `inv_freq` (dim/2,) is a persistent buffer."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

    def forward(self, seq_len: int) -> torch.Tensor:
        """Angles for positions 0..seq_len-1, computed in fp32. Returns (seq_len, dim)."""
        pos = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq.float()[None, :]  # (T, dim/2)
        return torch.cat([freqs, freqs], dim=-1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate the first freqs.shape[-1] dims of each head in fp32; the rest pass through.
    x (B, H, T, Dh), freqs (T, R) with R <= Dh -> (B, H, T, Dh) in x's dtype."""
    rot = freqs.shape[-1]
    xf = x.float()
    x_rot, x_pass = xf[..., :rot], xf[..., rot:]
    x_rot = x_rot * freqs.cos() + _rotate_half(x_rot) * freqs.sin()
    return torch.cat([x_rot, x_pass], dim=-1).to(x.dtype)


class Attention(nn.Module):
    """Self-attention (fused `to_qkv`) or cross-attention (`to_q`, `to_kv`) over (B, T, D) tokens, unmasked.

    Args:
        dim: model width D.
        head_dim: width per head; D // head_dim heads.
        context_dim: for cross-attention, the width of the context tokens (= dim); None for self-attention.
        qk_norm: "ln" applies an affine LayerNorm (eps 1e-6) to queries and keys per head, before RoPE.
    """

    def __init__(self, dim: int, head_dim: int, context_dim: int | None = None, qk_norm: str = "ln"):
        super().__init__()
        if dim % head_dim or (context_dim is not None and context_dim != dim):
            raise ValueError(f"attention needs dim {dim} divisible by head_dim {head_dim} and a context of the same "
                             f"width, got context_dim {context_dim}")
        self.num_heads = dim // head_dim
        self.head_dim = head_dim
        self.is_cross = context_dim is not None
        if self.is_cross:
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(context_dim, context_dim * 2, bias=False)
        else:
            self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.to_out.weight)
        if qk_norm == "ln":
            self.q_norm = nn.LayerNorm(head_dim, eps=1e-6)
            self.k_norm = nn.LayerNorm(head_dim, eps=1e-6)
        else:
            self.q_norm = self.k_norm = None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, T, H*Dh) -> (B, H, T, Dh)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the context tokens, normalised: (B, S, Dc) -> 2 x (B, H, S, Dh).
        They depend only on the context, so a sampler may compute them once per generation."""
        k, v = map(self._heads, self.to_kv(context).chunk(2, dim=-1))  # 2 x (B, H, S, Dh)
        if self.k_norm is not None:
            k = self.k_norm(k)
        return k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, rotary: torch.Tensor | None = None,
                context_kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """x (B, T, D); context (B, S, Dc) for cross-attention, or its precomputed `context_kv`;
        rotary (T, R) angles for self-attention. Returns (B, T, D)."""
        if self.is_cross:
            q = self._heads(self.to_q(x))  # (B, H, T, Dh)
            if self.q_norm is not None:
                q = self.q_norm(q)
            k, v = context_kv if context_kv is not None else self.context_kv(context)
        else:
            q, k, v = map(self._heads, self.to_qkv(x).chunk(3, dim=-1))  # 3 x (B, H, T, Dh)
            if self.q_norm is not None:
                q, k = self.q_norm(q), self.k_norm(k)
            if rotary is not None:
                q, k = apply_rotary(q, rotary).to(v.dtype), apply_rotary(k, rotary).to(v.dtype)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, Dh)
        b, _, t, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, t, -1))  # (B, H, T, Dh) -> (B, T, D)
