"""ONNX export: the text encoder (with the seconds conditioner), the DiT's cross-attention keys/values, one DiT step
and the decoder, each as its own graph at fixed shapes (batch 1; one DiT/decoder pair per length, the "rungs" of
edge deployments), weight norm folded before tracing, optional int8 (ONNX Runtime's dynamic quantisation of the
DiT graphs), and a manifest the torch-free runner (runner.py) reads.

Graphs (B = 1, S = prompt tokens + 1, T = latent frames):
    text.onnx     input_ids (1, L) int64, attention_mask (1, L) int64, seconds (1,) float -> cross (1, S, Dc),
                  global (1, Dg)
    context.onnx  cross (1, S, Dc) -> kv (depth, 2, 1, H, S, Dh): every block's cross-attention keys and values,
                  computed once per prompt
    dit_T.onnx    x (1, C, T), t (1,), global (1, Dg), kv -> velocity (1, C, T)
    decoder_T.onnx latents (1, C, T) -> audio (1, channels, T * ratio)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import warnings
from pathlib import Path

import torch
from torch import nn

from ..generation import DEFAULTS
from ..models.text_to_audio import TextToAudioModel
from ..models.word_encoder import WordEncoder
from ..nn.layers import _WeightNorm

OPSET = 18


class TextGraph(nn.Module):
    """Token ids and seconds -> the DiT's conditioning, as `TextToAudioModel.condition` computes it."""

    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.prompt = model.conditioners["prompt"]
        self.encoder = self.prompt.encoder
        self.seconds = model.conditioners["seconds_total"]
        self.pooled = model.config.conditioning.pooled_prompt_in_global

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, seconds: torch.Tensor):
        if isinstance(self.encoder, WordEncoder):
            tokens = self.encoder(input_ids)  # (B, L, D)
        else:
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.float()[..., None]  # (B, L, 1)
        tokens = tokens.float() * mask
        lo, hi = self.seconds.config.min_val, self.seconds.config.max_val
        normalized = (seconds.float().clamp(lo, hi) - lo) / (hi - lo)  # (B,)
        sec = self.seconds.embedder(normalized)[:, None, :]  # (B, 1, D)
        glob = sec[:, 0]  # (B, D)
        if self.pooled:
            glob = torch.cat([glob, tokens.sum(1) / mask.sum(1).clamp_min(1.0)], dim=1)  # (B, 2D)
        return torch.cat([tokens, sec], dim=1), glob


class ContextGraph(nn.Module):
    """cross (B, S, Dc) -> every block's cross-attention keys and values, stacked (depth, 2, B, H, S, Dh)."""

    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.dit = model.dit

    def forward(self, cross: torch.Tensor) -> torch.Tensor:
        kv = self.dit.context_kv(cross)
        return torch.stack([torch.stack(pair) for pair in kv])


class DiTGraph(nn.Module):
    """One velocity evaluation with precomputed keys and values."""

    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.dit = model.dit

    def forward(self, x: torch.Tensor, t: torch.Tensor, global_cond: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        context_kv = [(kv[i, 0], kv[i, 1]) for i in range(kv.shape[0])]
        return self.dit(x, t, None, global_cond, context_kv=context_kv)


class DecoderGraph(nn.Module):
    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.autoencoder = model.autoencoder

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(latents)


class _FoldedWeight:
    """Mixin for a weight-normalised conv whose weight was computed once (`fold_weight_norm`)."""

    @property
    def weight(self) -> torch.Tensor:
        return self.folded_weight


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """In place: every weight-normalised layer's weight (g * v / |v|) computed once and stored as a buffer, its
    `weight_g` / `weight_v` removed, so a traced graph holds plain convolution weights. Returns the module."""
    for layer in list(module.modules()):
        if isinstance(layer, _WeightNorm) and not isinstance(layer, _FoldedWeight):
            weight = layer.weight.detach().clone()
            del layer.weight_v, layer.weight_g
            layer.__class__ = type(f"Folded{type(layer).__name__}", (_FoldedWeight, type(layer)), {})
            layer.register_buffer("folded_weight", weight)
    return module


def latent_frames(model: TextToAudioModel, seconds: float) -> int:
    """Latent frames for a clip of `seconds`, rounded up (at most the model's window)."""
    config = model.config
    if not (math.isfinite(seconds) and 0 < seconds <= config.max_seconds):
        raise ValueError(f"seconds must be in (0, {config.max_seconds:.2f}] for this model, got {seconds}")
    ratio = config.autoencoder.downsampling_ratio
    return min(config.latent_length, math.ceil(seconds * config.sample_rate / ratio))


def _check_exportable(model: TextToAudioModel) -> None:
    kind = model.config.autoencoder.type
    if kind == "spectral":
        raise ValueError("the 'spectral' autoencoder's decoder cannot be exported to ONNX yet (its phase "
                         "reconstruction runs torch.istft, which the exporter does not convert); the Oobleck "
                         "(sao-small, tiny), partials and harmonic (the built-in models) autoencoders export")
    if model.conditioners["prompt"].encoder is None:
        raise ValueError("the model's T5 text encoder is not attached; load it with its T5 (--t5 PATH) to export")


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, input_names=inputs, output_names=outputs,
                                    opset_version=OPSET, external_data=False, verbose=False)
    program.save(str(path))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@torch.no_grad()
def export_onnx(model: TextToAudioModel, out_dir: str | Path, seconds: list[float] | None = None,
                quantize: str | None = None, source: str = "") -> Path:
    """Write the graphs of the module docstring and `manifest.json` into out_dir (one DiT / decoder pair per
    length in `seconds`, default the model's window). `quantize="int8"` also writes dit_T.int8.onnx and
    context.int8.onnx (ONNX Runtime dynamic quantisation: int8 weights, activations quantised per call).
    Returns the manifest's path.

    Raises:
        ValueError: for a decoder that cannot be exported, a missing T5, a bad length or quantisation.
    """
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    _check_exportable(model)
    config = model.config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = fold_weight_norm(copy.deepcopy(model).float().eval().cpu())
    lengths = sorted({latent_frames(model, s) for s in (seconds or [config.max_seconds])})
    prompt = model.conditioners["prompt"]
    limit = config.conditioning.prompt.max_length
    ids = torch.ones(1, limit, dtype=torch.long)  # (1, L)
    mask = torch.ones(1, limit, dtype=torch.long)
    text = TextGraph(model).eval()
    _export(text, (ids, mask, torch.tensor([1.0])), out / "text.onnx", ["input_ids", "attention_mask", "seconds"],
            ["cross", "global"])
    cross, glob = text(ids, mask, torch.tensor([1.0]))
    _export(ContextGraph(model).eval(), (cross,), out / "context.onnx", ["cross"], ["kv"])
    kv = ContextGraph(model)(cross)
    files = {"text": "text.onnx", "context": "context.onnx", "dit": {}, "decoder": {}}
    for frames in lengths:
        x = torch.randn(1, config.dit.io_channels, frames)
        _export(DiTGraph(model).eval(), (x, torch.tensor([0.5]), glob, kv), out / f"dit_{frames}.onnx",
                ["x", "t", "global", "kv"], ["velocity"])
        decoder = DecoderGraph(model).eval()
        decoder(x)  # eager first: constants the decoder builds once (the partials codec's phase table) are cached
        _export(decoder, (x,), out / f"decoder_{frames}.onnx", ["latents"], ["audio"])
        files["dit"][str(frames)] = f"dit_{frames}.onnx"
        files["decoder"][str(frames)] = f"decoder_{frames}.onnx"
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        files["dit_int8"], files["context_int8"] = {}, "context.int8.onnx"
        quantize_dynamic(str(out / "context.onnx"), str(out / "context.int8.onnx"), weight_type=QuantType.QInt8)
        for frames in lengths:
            quantize_dynamic(str(out / f"dit_{frames}.onnx"), str(out / f"dit_{frames}.int8.onnx"),
                             weight_type=QuantType.QInt8)
            files["dit_int8"][str(frames)] = f"dit_{frames}.int8.onnx"
    tokenizer = _save_tokenizer(prompt, out)
    sampler, steps, cfg_scale = DEFAULTS[config.objective]
    import onnx

    manifest = {
        "format": "arcaudio-onnx", "version": 1, "source": source, "config": json.loads(config.to_json()),
        "sample_rate": config.sample_rate, "channels": config.autoencoder.io_channels,
        "downsampling_ratio": config.autoencoder.downsampling_ratio, "io_channels": config.dit.io_channels,
        "latent_length": config.latent_length, "max_seconds": config.max_seconds, "max_tokens": limit,
        "lengths": lengths, "sampler": {"name": sampler, "steps": steps, "cfg_scale": cfg_scale,
                                        "logsnr_min": -6.0, "logsnr_max": 2.0},
        "tokenizer": tokenizer, "files": files, "quantize": quantize,
        "sizes": {p.name: p.stat().st_size for p in sorted(out.glob("*.onnx"))},
        "sha256": {p.name: _sha256(p) for p in sorted(out.glob("*.onnx"))},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "opset": OPSET,
                     "python": platform.python_version()},
    }
    if sampler != "pingpong" or cfg_scale != 1.0:
        manifest["note"] = ("the runner samples with ping-pong and no CFG; this model's own default is "
                            f"{sampler} {steps} steps, CFG {cfg_scale:g}")
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


def _save_tokenizer(prompt, out: Path) -> dict:
    """How the runner tokenizes: the word encoder's hashing rule, ByT5's byte rule, or saved tokenizer files."""
    from ..models.word_encoder import WordTokenizer

    tokenizer = prompt.tokenizer
    if isinstance(tokenizer, WordTokenizer):
        return {"kind": "words", "vocab_size": tokenizer.vocab_size}
    if type(tokenizer).__name__ == "ByT5Tokenizer":
        return {"kind": "bytes"}
    tokenizer.save_pretrained(str(out / "tokenizer"))
    return {"kind": "pretrained", "path": "tokenizer"}
