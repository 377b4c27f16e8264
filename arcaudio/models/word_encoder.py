"""The built-in word-level text encoder: each lower-cased word hashed to an id, each id a learned embedding.

The built-in text encoder of a model trained from nothing learns a sound world's words far sooner from word tokens
than from bytes: with the byte-level T5 the project's DiT trained for 8000 steps and still ignored the prompt's
words (measured; README), with one token per word it follows "panned left" after 100 steps. Hashing needs no
vocabulary file and gives every word, also one never seen in training, a fixed id (CRC-32, the same on every
machine). The embeddings start small (`init_std`) and are not normalised, so a word never seen in training stays
near zero and barely moves the DiT: a prompt's unknown words fade instead of adding noise.

ids: 0 padding, 1 end of prompt (as T5's `</s>`), 2.. words. Words are runs of letters and digits ("A4" -> "a4",
"120bpm" -> "120bpm", "right-panned" -> "right", "panned").
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import torch
from torch import nn

PAD_ID, EOS_ID, FIRST_WORD_ID = 0, 1, 2
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """The words of `text` as the tokenizer sees them: lower-cased runs of letters and digits."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Prompts -> word ids, with the call signature of a Hugging Face tokenizer (the subset T5Conditioner uses)."""

    def __init__(self, vocab_size: int):
        if vocab_size <= FIRST_WORD_ID:
            raise ValueError(f"a word tokenizer needs vocab_size > {FIRST_WORD_ID}, got {vocab_size}")
        self.vocab_size = vocab_size

    def word_id(self, word: str) -> int:
        return FIRST_WORD_ID + zlib.crc32(word.encode()) % (self.vocab_size - FIRST_WORD_ID)

    def encode(self, text: str) -> list[int]:
        """The ids of one prompt, end id included (untruncated)."""
        return [self.word_id(w) for w in words(text)] + [EOS_ID]

    def __call__(self, texts: Sequence[str], truncation: bool = False, max_length: int | None = None,
                 padding: str | bool = False, return_tensors: str | None = None) -> dict:
        """{"input_ids", "attention_mask"}: lists, or with return_tensors="pt" and padding="max_length" tensors
        (B, max_length), truncated to max_length when `truncation`."""
        ids = [self.encode(t) for t in texts]
        if truncation and max_length is not None:
            ids = [i[:max_length] for i in ids]
        if return_tensors is None:
            return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}
        if return_tensors != "pt" or padding != "max_length" or max_length is None:
            raise ValueError("WordTokenizer returns tensors only padded to max_length (return_tensors='pt', "
                             "padding='max_length', max_length=N)")
        input_ids = torch.full((len(ids), max_length), PAD_ID, dtype=torch.long)  # (B, L)
        mask = torch.zeros(len(ids), max_length, dtype=torch.long)  # (B, L)
        for row, seq in enumerate(ids):
            seq = seq[:max_length]
            input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, :len(seq)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}


class WordEncoder(nn.Module):
    """Word ids (B, L) -> one learned embedding per word (B, L, D); no mixing across words (a bag of words for the
    DiT's cross-attention and pooled prompt). Key `embedding.weight` (vocab_size, D)."""

    def __init__(self, vocab_size: int, dim: int, init_std: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.embedding.weight, std=init_std)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.embedding(input_ids)  # (B, L) -> (B, L, D)
