"""Conditioners: text prompt -> T5 tokens, `seconds_total` -> one learned Fourier-feature token.

The pre-trained T5 is never downloaded here: it is found in a local folder or the local Hugging Face cache,
and is held outside the module registry (not in state_dict, not trained), as in stable-audio-tools. A small T5
built from `PromptConditionerConfig.arch`, or a word embedding table built from `PromptConditionerConfig.words`
(models/word_encoder.py), is a normal submodule whose weights travel with the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import NumberConditionerConfig, PromptConditionerConfig
from ..nn.layers import NumberEmbedder
from .word_encoder import WordEncoder, WordTokenizer

log = logging.getLogger(__name__)

T5_HINT = (
    "arcaudio never downloads weights. On a machine with internet, fetch it once, e.g.\n"
    "    huggingface-cli download {name} --local-dir ~/models/{name}\n"
    "then copy that folder here and pass it: `arcaudio ... --t5 ~/models/{name}` or "
    "`arcaudio.load(..., t5=\"~/models/{name}\")`; a copy in the local Hugging Face cache (HF_HOME) is found too."
)


def load_pretrained_t5(name_or_path: str | Path) -> tuple[nn.Module, Any]:
    """Load a T5 encoder and its tokenizer from a local folder or the local Hugging Face cache (never the network).

    Raises:
        FileNotFoundError: naming what to download and where to put it, when no local copy exists.
    """
    from transformers import AutoTokenizer, T5EncoderModel

    path = Path(name_or_path).expanduser()
    source = str(path) if path.is_dir() else str(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        encoder = T5EncoderModel.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as err:
        name = path.name if path.name else str(name_or_path)
        raise FileNotFoundError(
            f"T5 text encoder {str(name_or_path)!r} was not found as a local folder or in the local Hugging Face "
            f"cache ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}).\n"
            + T5_HINT.format(name=name)) from err
    return encoder.eval().requires_grad_(False), tokenizer


def build_t5_from_arch(arch) -> tuple[nn.Module, Any]:
    """A randomly initialised T5 encoder of the given size, with the file-free byte-level ByT5 tokenizer."""
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    config = T5Config(d_model=arch.d_model, d_kv=arch.d_kv, d_ff=arch.d_ff, num_layers=arch.num_layers,
                      num_heads=arch.num_heads, vocab_size=arch.vocab_size, dropout_rate=0.0)
    return T5EncoderModel(config), ByT5Tokenizer()


class T5Conditioner(nn.Module):
    """Prompts -> (tokens (B, max_length, D), mask (B, max_length) bool), padded rows zeroed.

    With `config.arch` (a small T5) or `config.words` (a word embedding table) set, the encoder is built here and
    registered as `model` (trainable, saved). Otherwise a pre-trained encoder is attached with `attach` (or
    `load_pretrained_t5`) and kept frozen outside the registry.
    """

    def __init__(self, config: PromptConditionerConfig, cond_dim: int):
        super().__init__()
        self.config = config
        self.cond_dim = cond_dim
        self.tokenizer: Any = None
        self._frozen: list[nn.Module] = []  # a pre-trained encoder, outside the registry
        if config.arch is not None:
            self.model, self.tokenizer = build_t5_from_arch(config.arch)
        elif config.words is not None:
            self.model = WordEncoder(config.words.vocab_size, cond_dim, config.words.init_std)
            self.tokenizer = WordTokenizer(config.words.vocab_size)

    @property
    def builtin(self) -> bool:
        return self.config.builtin

    @property
    def encoder(self) -> nn.Module | None:
        return self.model if self.builtin else (self._frozen[0] if self._frozen else None)

    def attach(self, encoder: nn.Module, tokenizer: Any) -> None:
        """Attach a frozen pre-trained T5 encoder (its d_model must equal cond_dim) and its tokenizer."""
        if self.builtin:
            raise ValueError("this conditioner has a built-in text encoder (config.arch or config.words); it cannot "
                             "take another")
        d_model = encoder.config.d_model
        if d_model != self.cond_dim:
            raise ValueError(f"T5 encoder width {d_model} does not match the model's cond_dim {self.cond_dim}")
        param = next(self.parameters(), None)
        if param is not None and param.device.type != "meta":
            encoder = encoder.to(param.device)
        self._frozen = [encoder.eval().requires_grad_(False)]
        self.tokenizer = tokenizer

    def _apply(self, fn, recurse=True):  # .to() / .float() / .cuda() also move the frozen encoder
        for module in self._frozen:
            module._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def _require_tokenizer(self) -> None:
        if self.tokenizer is None:
            raise RuntimeError(f"no T5 encoder is attached for {self.config.t5_model_name!r}; load the model with "
                               "its text encoder (arcaudio.load(..., t5=PATH)) or call attach()")

    def token_counts(self, prompts: Sequence[str]) -> list[int]:
        """Each prompt's untruncated token count (more than max_length means it will be truncated)."""
        self._require_tokenizer()
        return [len(ids) for ids in self.tokenizer(list(prompts), truncation=False)["input_ids"]]

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> input_ids (B, max_length), attention_mask (B, max_length) bool; truncated and padded."""
        self._require_tokenizer()
        enc = self.tokenizer(list(prompts), truncation=True, max_length=self.config.max_length,
                             padding="max_length", return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    def forward(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, mask = self.tokenize(prompts)
        device = next(self.encoder.parameters()).device
        return self.encode(input_ids.to(device), mask.to(device))

    def encode(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens already on the encoder's device -> (tokens (B, max_length, D) float32, padded rows zero, mask):
        the tensor half of `forward`, with no host work (captured generation records it as a CUDA graph)."""
        self._require_tokenizer()
        encoder = self.encoder
        with torch.set_grad_enabled(self.builtin and torch.is_grad_enabled()):
            if isinstance(encoder, WordEncoder):
                tokens = encoder(input_ids, mask)  # (B, L, D)
            else:
                tokens = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, L, D)
        return tokens.float() * mask[..., None].float(), mask


class NumberConditioner(nn.Module):
    """Numbers -> (tokens (B, 1, D), mask (B, 1)): clamp to [min_val, max_val], normalise to [0, 1], embed."""

    def __init__(self, config: NumberConditionerConfig, cond_dim: int):
        super().__init__()
        self.config = config
        self.embedder = NumberEmbedder(cond_dim)

    def forward(self, values: Sequence[float] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        param = self.embedder.embedding[1].weight
        values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
        if not torch.isfinite(values).all():
            raise ValueError(f"seconds values must be finite, got {values.tolist()}")
        lo, hi = self.config.min_val, self.config.max_val
        normalized = (values.clamp(lo, hi) - lo) / (hi - lo)
        tokens = self.embedder(normalized.to(device=param.device, dtype=param.dtype))[:, None, :]  # (B, 1, D)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

