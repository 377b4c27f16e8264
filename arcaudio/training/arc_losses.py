"""The losses of Adversarial Relativistic-Contrastive (ARC) post-training, and the prompt shuffle of its contrastive
term. Discriminator outputs are patch-score maps (B, 1, P); every loss is a mean over batch and patches.

- relativistic (pairs a real and a generated latent re-noised to the same level with the same noise and prompt):
  G minimises softplus(D(real) - D(fake)), D minimises softplus(D(fake) - D(real));
- contrastive (real latents only): D minimises softplus(D(real, wrong prompt) - D(real, right prompt)), with the
  prompts permuted within the batch by a derangement that never pairs two identical captions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def relativistic_generator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """mean softplus(D(real) - D(fake)) = -log sigmoid(D(fake) - D(real)). Scores (B, 1, P)."""
    return F.softplus(real_scores - fake_scores).mean()


def relativistic_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """mean softplus(D(fake) - D(real)). Scores (B, 1, P)."""
    return F.softplus(fake_scores - real_scores).mean()


def contrastive_loss(matched_scores: torch.Tensor, mismatched_scores: torch.Tensor) -> torch.Tensor:
    """mean softplus(D(real, c_perm) - D(real, c)): D learns to score real audio higher with its own prompt."""
    return F.softplus(mismatched_scores - matched_scores).mean()


def prompt_derangement(captions: Sequence[str], generator: torch.Generator | None = None) -> torch.Tensor:
    """A permutation `perm` (B,) of the batch with captions[perm[i]] != captions[i] for every i (so in particular
    no fixed points). Drawn uniformly by rejection among such permutations; when no random draw succeeds within
    100 tries (e.g. one caption fills more than half the batch) the unique captions are rolled by one group.

    Raises ValueError when no such permutation exists: fewer than 2 distinct captions, or one caption on more than
    half of the batch.
    """
    n = len(captions)
    counts: dict[str, int] = {}
    for c in captions:
        counts[c] = counts.get(c, 0) + 1
    most = max(counts.values(), default=0)
    if n < 2 or len(counts) < 2 or most * 2 > n:
        raise ValueError(f"the contrastive loss needs a batch whose captions can be shuffled so that none keeps its "
                         f"own; got {n} caption(s), {len(counts)} distinct, the most common {most} times (it must "
                         "appear on at most half of the batch)")
    ids = torch.tensor([list(counts).index(c) for c in captions])
    for _ in range(100):
        perm = torch.randperm(n, generator=generator)
        if bool((ids[perm] != ids).all()):
            return perm
    # Deterministic fallback: sort by caption and pair position k with k + (largest group size), cyclically.
    order = torch.argsort(ids, stable=True)
    shift = max(counts.values())
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-shift)
    return perm


def conflicting_prompts(attributes: Sequence[dict], named: Sequence[dict], generator: torch.Generator | None = None,
                        within_kind: bool = False) -> torch.Tensor:
    """For each clip i, the index of a prompt j that contradicts it: some attribute named by prompt j ({name: class},
    `named[j]`) that clip i (`attributes[i]`) lacks or has another class of; drawn uniformly among those. A clip that
    no prompt of the batch contradicts gets its own index (a contrastive term of zero gradient).

    `within_kind`: only prompts that contradict the clip inside its kind, naming no attribute the clip lacks and no
    other kind ("pink noise" for a brown noise, "on the left" for anything on the right; not "a sine note" for a
    noise): the wrong prompts a discriminator cannot reject by reading the kind alone."""
    n = len(attributes)
    out = torch.arange(n)
    for i in range(n):
        wrong = [j for j in range(n) if any(attributes[i].get(k) != v for k, v in named[j].items())
                 and (not within_kind or set(named[j]) <= set(attributes[i]) and
                      named[j].get("kind", attributes[i]["kind"]) == attributes[i]["kind"])]
        if wrong:
            out[i] = wrong[int(torch.randint(len(wrong), (1,), generator=generator))]
    return out


def finite_difference_penalty(perturbed_scores: torch.Tensor, scores: torch.Tensor, sigma: float) -> torch.Tensor:
    """R1 (on real inputs) / R2 (on generated inputs) gradient penalty without double backprop:
    mean ((D(x + sigma n) - D(x)) / sigma)^2 with n ~ N(0, I), an estimate of ||grad_x D||^2 along n (the
    reference's approximate penalties use sigma = 0.05). Scores (B, 1, P)."""
    return ((perturbed_scores - scores) / sigma).pow(2).mean()
