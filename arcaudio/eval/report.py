"""One row of the paper's table, on the procedural set: prompt adherence (probes), Frechet distance to real clips
and conditional diversity on the fixed stats embedding, and generation time.

For `n_prompts` held-out (or train-style) captions, `per_prompt` clips each (different noise) are generated with
the given sampler; every clip is probed against its prompt; the Frechet distance compares all generated clips
with `n_reference` real procedural clips (drawn like the training set, from their own seed); the diversity is the
mean pairwise cosine distance among one prompt's clips, on embeddings z-scored with the real clips' statistics.

Each figure comes with its sampling noise (`QualityReport.noise`): the standard deviation of the figure over
bootstrap resamples of the prompts (each resample draws n_prompts prompts with replacement, with all their clips),
so two rows differ beyond noise when their gap is a few of these apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..generation import DEFAULTS, generate
from ..models.text_to_audio import TextToAudioModel
from ..procedural.synth import make_clip
from .adherence import AdherenceReport, adherence_prompts, read_prompt, summarise
from .distribution import conditional_diversity, frechet_distance, standardiser
from .embedders.stats import embed_clips


@dataclass
class QualityReport:
    name: str
    sampler: str
    steps: int
    cfg_scale: float
    adherence: AdherenceReport
    frechet: float
    diversity: float
    seconds_per_clip: float  # wall time of generate() (conditioning, sampling, decoding) per clip
    clips: int
    noise: dict[str, float] | None = None  # figure -> bootstrap standard deviation over prompts (module docstring)

    def row(self) -> dict[str, object]:
        return {"model": self.name, "sampler": self.sampler, "steps": self.steps, "cfg": self.cfg_scale,
                "adherence": round(self.adherence.mean_accuracy, 3), "chance": round(self.adherence.mean_chance, 3),
                "fd_stats": round(self.frechet, 2), "diversity": round(self.diversity, 3),
                "s_per_clip": round(self.seconds_per_clip, 3), "clips": self.clips,
                "noise": {k: round(v, 3) for k, v in (self.noise or {}).items()},
                "per_attribute": {k: round(v, 3) for k, v in self.adherence.accuracy.items()}}

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["adherence"] = self.adherence.to_dict()
        return d


def reference_embeddings(n: int, sample_rate: int, window: int, seed: int = 97531) -> np.ndarray:
    """Stats embeddings (n, D) of real procedural clips, zero-padded to the model's window as in training."""
    clips = []
    for i in range(n):
        clip, _, _ = make_clip(seed, i, max_seconds=window / sample_rate)
        padded = np.zeros((clip.shape[0], window), np.float32)
        padded[:, : clip.shape[1]] = clip[:, :window]
        clips.append(padded)
    return embed_clips(clips, sample_rate)


@torch.no_grad()
def evaluate_quality(model: TextToAudioModel, name: str = "model", n_prompts: int = 32, per_prompt: int = 4,
                     style: str = "heldout", sampler: str | None = None, steps: int | None = None,
                     cfg_scale: float | None = None, seed: int = 0, n_reference: int = 256,
                     reference: np.ndarray | None = None) -> QualityReport:
    """Generate n_prompts x per_prompt clips (one batch per prompt, seed + prompt index) and score them.
    `reference`: precomputed `reference_embeddings` (shared between rows of one table)."""
    if per_prompt < 2:
        raise ValueError(f"per_prompt must be >= 2 for a diversity score, got {per_prompt}")
    config = model.config
    if reference is None:
        reference = reference_embeddings(n_reference, config.sample_rate, config.sample_size)
    prompts = adherence_prompts(n_prompts, style=style)
    scored, embeddings, elapsed = [], [], 0.0
    for i, prompt in enumerate(prompts):
        t0 = time.perf_counter()
        clips = generate(model, [prompt.caption] * per_prompt, seconds=prompt.seconds, steps=steps,
                         sampler=sampler, cfg_scale=cfg_scale, seed=seed + i)
        clips = [c.float().cpu().numpy() for c in clips]
        elapsed += time.perf_counter() - t0
        scored += [(prompt.attributes, read_prompt(c, config.sample_rate, prompt)) for c in clips]
        embeddings.append(embed_clips(clips, config.sample_rate))
    z = standardiser(reference)
    generated = np.concatenate(embeddings)
    default_sampler, default_steps, default_cfg = DEFAULTS[config.objective]
    n = len(generated)
    return QualityReport(name=name, sampler=sampler or default_sampler, steps=steps or default_steps,
                         cfg_scale=default_cfg if cfg_scale is None else cfg_scale,
                         adherence=summarise(scored, elapsed), frechet=frechet_distance(z(generated), z(reference)),
                         diversity=conditional_diversity([z(e) for e in embeddings]), seconds_per_clip=elapsed / n,
                         clips=n, noise=bootstrap_noise(scored, [z(e) for e in embeddings], z(reference),
                                                        per_prompt, seed=seed))


def bootstrap_noise(scored: list[tuple[dict, dict[str, object]]], groups: list[np.ndarray], reference: np.ndarray,
                    per_prompt: int, resamples: int = 200, seed: int = 0) -> dict[str, float]:
    """Standard deviations of the mean adherence, the Frechet distance and the diversity over `resamples` bootstrap
    draws of the prompts (with replacement; a prompt brings all its `per_prompt` clips). `scored` holds the clips
    in prompt order; `groups` one standardised embedding array (per_prompt, D) per prompt."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    figures: dict[str, list[float]] = {"adherence": [], "fd_stats": [], "diversity": []}
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        chosen = [scored[i * per_prompt + j] for i in pick for j in range(per_prompt)]
        figures["adherence"].append(summarise(chosen, 0.0).mean_accuracy)
        figures["fd_stats"].append(frechet_distance(np.concatenate([groups[i] for i in pick]), reference))
        figures["diversity"].append(conditional_diversity([groups[i] for i in pick]))
    return {k: float(np.std(v, ddof=1)) for k, v in figures.items()}
