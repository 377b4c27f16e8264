"""What an ARC discriminator reads of the prompt: real latents of the procedural set scored with their own caption
and with that caption with one attribute moved (`captions.contradicting_caption`: "a plucked minor chord" ->
"a plucked major chord"), at fixed re-noise levels. Accuracy per moved attribute = the share of such minimal pairs
whose right caption D scores strictly higher (mean over its patch scores); 0.5 is a D that does not read it.

The contrastive loss is meant to teach D to read prompts; this says which parts of a prompt it learned to read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..flow import add_noise
from ..models.text_to_audio import Conditioning


def minimal_pairs(attributes: Sequence[dict], rng: np.random.Generator, per_clip: int = 3
                  ) -> list[tuple[int, str, str, str]]:
    """For each clip (its attribute dict), `per_clip` minimal pairs: (clip index, its full training caption, the
    caption with one attribute moved, the moved attribute's name)."""
    from ..procedural.synth import contradicting_caption, named_training_caption

    pairs = []
    for i, clip in enumerate(attributes):
        caption, named = named_training_caption(clip, rng)
        for _ in range(per_clip):
            wrong, wrong_named = contradicting_caption(clip, named, rng)
            moved = "kind" if wrong_named.get("kind", clip["kind"]) != clip["kind"] else next(
                name for name, value in wrong_named.items() if clip.get(name) != value)
            pairs.append((i, caption, wrong, moved))
    return pairs


@torch.no_grad()
def discriminator_reading(discriminator: Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor],
                          condition: Callable[[list[str], list[float]], Conditioning], latents: torch.Tensor,
                          seconds: Sequence[float], pairs: Sequence[tuple[int, str, str, str]],
                          levels: Sequence[float] = (0.2, 0.5, 0.8), seed: int = 0, batch_size: int = 96
                          ) -> dict[float, dict[str, tuple[float, int]]]:
    """{level s: {moved attribute (and "all"): (accuracy, pairs)}}.

    discriminator(x_s (B, C, T), s (B,), conditioning) -> patch scores (B, 1, P); condition(captions, seconds)
    -> Conditioning; latents (N, C, T) clean real latents; seconds (N,) their lengths; pairs from `minimal_pairs`.
    Each pair's clip is re-noised with one noise draw per pair (seeded), shared by its right and wrong caption."""
    rows = [p[0] for p in pairs]
    x0 = latents[rows]  # (M, C, T)
    secs = [float(seconds[r]) for r in rows]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0)
    right = condition([p[1] for p in pairs], secs)
    wrong = condition([p[2] for p in pairs], secs)

    def scores(x_s: torch.Tensor, s: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return torch.cat([discriminator(x_s[k:k + batch_size], s[k:k + batch_size],
                                        cond.rows(slice(k, k + batch_size))).float().mean((1, 2))
                          for k in range(0, len(pairs), batch_size)])  # (M,): mean patch score

    out = {}
    for level in levels:
        s = torch.full((len(pairs),), float(level), device=x0.device)
        x_s = add_noise(x0, noise, s)  # (M, C, T)
        hits = (scores(x_s, s, right) > scores(x_s, s, wrong)).tolist()
        by: dict[str, list[bool]] = defaultdict(list)
        for pair, hit in zip(pairs, hits):
            by[pair[3]].append(hit)
            by["all"].append(hit)
        out[float(level)] = {name: (float(np.mean(v)), len(v)) for name, v in sorted(by.items())}
    return out
