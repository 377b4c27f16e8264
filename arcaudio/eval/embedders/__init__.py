"""Embedders for the evaluation metrics, by name: `stats` (log-mel statistics, no weights) and `clap` (LAION-CLAP
from a local transformers folder: `clap=PATH`). PaSST (the paper's KL tagger) and OpenL3 (its FD embedding) are not
available: their published checkpoints need torchaudio / TensorFlow front ends that cannot be installed here, and
no torch re-implementation matched to their key names exists in arcaudio yet; KL is computed only with a tagger.

    get_embedder("stats"); get_embedder("clap=models/clap"); register("mine", lambda path, device: MyEmbedder())
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import Embedder

_REGISTRY: dict[str, Callable[[str | None, str | torch.device], Embedder]] = {}


def register(name: str, factory: Callable[[str | None, str | torch.device], Embedder]) -> None:
    """Make `name` (or `name=PATH`) resolvable by get_embedder; factory(path or None, device) -> Embedder."""
    _REGISTRY[name] = factory


def embedder_names() -> list[str]:
    return sorted(_REGISTRY)


def get_embedder(spec: str, device: str | torch.device = "cpu") -> Embedder:
    """An embedder from "NAME" or "NAME=PATH" (weights from local files only).

    Raises:
        ValueError: for an unknown name, naming the known ones.
        FileNotFoundError: for missing weights, saying what to download and where.
    """
    name, _, path = spec.partition("=")
    name = name.strip()
    if name not in _REGISTRY:
        raise ValueError(f"unknown embedder {name!r}; available: {embedder_names()} (clap needs clap=PATH to a "
                         "local CLAP folder)")
    return _REGISTRY[name](path.strip() or None, device)


def _stats(path, device):
    from .stats import StatsEmbedder

    return StatsEmbedder()


def _clap(path, device):
    from .clap import CLAP_HINT, ClapEmbedder

    if path is None:
        raise FileNotFoundError(f"the clap embedder needs the folder of a local CLAP model: clap=PATH; {CLAP_HINT}")
    return ClapEmbedder(path, device)


register("stats", _stats)
register("clap", _clap)
