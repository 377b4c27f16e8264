"""Each building block against an independent reference: a literal formula or torch's own implementation."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import rel_err
from torch import nn

from arcaudio.nn.attention import Attention, RotaryEmbedding, apply_rotary
from arcaudio.nn.layers import (
    FourierFeatures,
    LayerNorm,
    LearnedFourierEmbedding,
    NumberEmbedder,
    SnakeBeta,
    WNConv1d,
    WNConvTranspose1d,
)


def test_snake_beta_literal_formula():
    act = SnakeBeta(3)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.0, 0.5, -1.0]))
        act.beta.copy_(torch.tensor([0.2, -0.3, 1.0]))
    x = torch.randn(2, 3, 5)
    expected = torch.empty_like(x)
    for c in range(3):
        a, b = math.exp(act.alpha[c].item()), math.exp(act.beta[c].item())
        expected[:, c] = x[:, c] + (1 / (b + 1e-9)) * torch.sin(a * x[:, c]) ** 2
    assert rel_err(act(x), expected) < 1e-6


@pytest.mark.parametrize("ours, ref, length, out_length", [
    (lambda: WNConv1d(4, 6, 7, stride=2, padding=3), lambda: nn.Conv1d(4, 6, 7, stride=2, padding=3), 40, 20),
    (lambda: WNConvTranspose1d(6, 4, 8, stride=4, padding=2), lambda: nn.ConvTranspose1d(6, 4, 8, stride=4, padding=2),
     10, 40),
])
def test_weight_norm_convs_match_torch_parametrization(ours, ref, length, out_length):
    ours, ref = ours(), nn.utils.parametrizations.weight_norm(ref())
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand_like(ours.weight_g) + 0.5)
        nn.init.normal_(ours.bias)  # biases start at zero; exercise them anyway
        ref.parametrizations.weight.original0.copy_(ours.weight_g)
        ref.parametrizations.weight.original1.copy_(ours.weight_v)
        ref.bias.copy_(ours.bias)
    x = torch.randn(2, ours.weight_v.shape[0] if isinstance(ours, WNConvTranspose1d) else ours.weight_v.shape[1],
                    length)
    assert ours(x).shape[-1] == out_length
    assert rel_err(ours(x), ref(x)) < 1e-6
    assert ours.weight_g.shape == (6, 1, 1)  # dim 0: output channels of a conv, input channels of a transposed one


def test_layer_norm_has_fixed_zero_bias():
    ln = LayerNorm(8)
    with torch.no_grad():
        ln.gamma.copy_(torch.linspace(0.5, 2, 8))
    x = torch.randn(3, 5, 8)
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    assert rel_err(ln(x), (x - mean) / torch.sqrt(var + 1e-5) * ln.gamma) < 1e-6
    assert [n for n, _ in ln.named_parameters()] == ["gamma"] and "beta" in ln.state_dict()


def test_fourier_features_literal():
    ff = FourierFeatures(1, 8)
    t = torch.tensor([[0.0], [0.25], [1.0]])
    w = ff.weight[:, 0]
    expected = torch.cat([torch.cos(2 * math.pi * t * w), torch.sin(2 * math.pi * t * w)], dim=-1)
    assert rel_err(ff(t), expected) < 1e-6


def test_number_embedder_literal():
    emb = NumberEmbedder(5, dim=4)
    x = torch.tensor([0.0, 0.3, 1.0])
    w = emb.embedding[0].weights
    feats = torch.stack([torch.cat([v.view(1), torch.sin(2 * math.pi * v * w), torch.cos(2 * math.pi * v * w)])
                         for v in x])
    assert isinstance(emb.embedding[0], LearnedFourierEmbedding)
    assert rel_err(emb(x), emb.embedding[1](feats)) < 1e-6


def test_rotary_against_complex_rotation():
    """Partial RoPE (rotate-half layout) = rotating pairs (i, i + R/2) by pos * inv_freq[i] in the complex plane."""
    head_dim, rot = 64, 32
    rope = RotaryEmbedding(rot)
    x = torch.randn(1, 2, 7, head_dim)
    out = apply_rotary(x, rope(7))
    half = rot // 2
    z = torch.complex(x[..., :half], x[..., half:rot])
    angle = torch.arange(7.0)[:, None] * rope.inv_freq[None, :]
    z = z * torch.polar(torch.ones_like(angle), angle)
    expected = torch.cat([z.real, z.imag, x[..., rot:]], dim=-1)
    assert rel_err(out, expected) < 1e-6
    assert torch.equal(out[..., rot:], x[..., rot:])


def _manual_attention(q, k, v):
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v


def test_self_attention_matches_manual_softmax():
    attn = Attention(64, 32, qk_norm="ln")
    nn.init.normal_(attn.to_out.weight)
    x = torch.randn(2, 9, 64)
    rotary = RotaryEmbedding(32)(9)
    q, k, v = attn.to_qkv(x).chunk(3, dim=-1)
    split = lambda t: t.view(2, 9, 2, 32).transpose(1, 2)  # noqa: E731
    q = apply_rotary(F.layer_norm(split(q), (32,), attn.q_norm.weight, attn.q_norm.bias, 1e-6), rotary)
    k = apply_rotary(F.layer_norm(split(k), (32,), attn.k_norm.weight, attn.k_norm.bias, 1e-6), rotary)
    out = _manual_attention(q, k, split(v)).transpose(1, 2).reshape(2, 9, 64)
    assert rel_err(attn(x, rotary=rotary), attn.to_out(out)) < 1e-5


def test_cross_attention_is_unmasked_and_cacheable():
    attn = Attention(64, 32, context_dim=64, qk_norm="ln")
    nn.init.normal_(attn.to_out.weight)
    x, ctx = torch.randn(2, 5, 64), torch.randn(2, 11, 64)
    ctx[:, 6:] = 0  # zeroed padding rows still receive attention (keys = k_norm bias, values 0)
    out = attn(x, context=ctx)
    k, v = attn.context_kv(ctx)
    assert torch.equal(out, attn(x, context_kv=(k, v)))
    q = attn.q_norm(attn.to_q(x).view(2, 5, 2, 32).transpose(1, 2))
    ref = attn.to_out(_manual_attention(q, k, v).transpose(1, 2).reshape(2, 5, 64))
    assert rel_err(out, ref) < 1e-5
    assert rel_err(k[:, :, 6], attn.k_norm.bias.view(1, 1, 32).expand(2, 2, 32)) < 1e-6
