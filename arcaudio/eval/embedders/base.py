"""What an embedder is: a fixed network (or formula) mapping clips to vectors, for distribution metrics (Frechet
distance, recall / coverage), diversity (CCDS) and, for joint audio-text models, the CLAP score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Embedder(ABC):
    """`embed(clips, sample_rate)`: clips are (channels, samples) arrays or tensors at `sample_rate`; the embedder
    resamples and mixes down as its protocol says and returns (N, D) float64. Joint audio-text embedders also
    `embed_text(texts) -> (N, D)`; taggers `tag_probabilities(clips, sample_rate) -> (N, classes)`."""

    name: str = "embedder"
    sample_rate: int | None = None  # the rate it works at (None: any)
    channels: int = 1
    standardise: bool = False  # z-score with the reference's statistics before distances (unlike-scaled features)

    @abstractmethod
    def embed(self, clips: Sequence, sample_rate: int) -> np.ndarray:
        """(N, D) float64 embeddings of N clips at `sample_rate`."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray | None:
        return None  # not a joint audio-text model

    def tag_probabilities(self, clips: Sequence, sample_rate: int) -> np.ndarray | None:
        return None  # not a tagger

    def describe(self) -> str:
        return self.name
