"""Set-level metrics on embeddings: Frechet distance (quality / realism) and the conditional diversity score
(mean pairwise cosine distance among clips of one prompt; the paper's CCDS on CLAP, here on any embedding)."""

from __future__ import annotations

import numpy as np


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to embeddings x (N, D) and y (M, D):
    |mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2). Needs N, M >= 2."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"frechet_distance needs two (N >= 2, D) arrays of one width, got {x.shape} and {y.shape}")
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x, s_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    root_x = _sqrtm_psd(s_x)
    cross = _sqrtm_psd(root_x @ s_y @ root_x)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.trace(cross))


def standardiser(reference: np.ndarray, rel_floor: float = 1e-3):
    """z-scoring with a reference set's per-dimension mean and standard deviation: (N, D) -> (N, D). Standard
    deviations are floored at `rel_floor` times their median, so a dimension constant in the reference does not
    blow up."""
    reference = np.asarray(reference, np.float64)
    mean, std = reference.mean(0), reference.std(0)
    std = np.maximum(std, rel_floor * max(float(np.median(std)), 1e-12))
    return lambda e: (np.asarray(e) - mean) / std


def conditional_diversity(groups: list[np.ndarray]) -> float:
    """Mean over prompts of the mean pairwise cosine distance 1 - cos(a, b) among that prompt's embeddings
    (each group (N >= 2, D)). Higher = more diverse outputs for one prompt."""
    scores = []
    for g in groups:
        g = np.asarray(g, np.float64)
        if len(g) < 2:
            raise ValueError(f"each prompt needs at least 2 clips for a diversity score, got {len(g)}")
        unit = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        cos = unit @ unit.T
        iu = np.triu_indices(len(g), 1)
        scores.append(float((1 - cos[iu]).mean()))
    return float(np.mean(scores))


def kl_divergence(reference_probs: np.ndarray, generated_probs: np.ndarray, eps: float = 1e-8) -> float:
    """Mean over pairs of KL(reference || generated) between tag distributions, each row (classes,) summing to 1
    (per prompt: its reference clip's tags against its generation's), in nats."""
    p = np.clip(np.asarray(reference_probs, np.float64), eps, None)
    q = np.clip(np.asarray(generated_probs, np.float64), eps, None)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"kl_divergence needs two (N, classes) arrays of one shape, got {p.shape} and {q.shape}")
    p, q = p / p.sum(1, keepdims=True), q / q.sum(1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def clap_score(audio_embeddings: np.ndarray, text_embeddings: np.ndarray) -> float:
    """Mean cosine similarity between each clip's audio embedding and its prompt's text embedding, (N, D) each."""
    a, t = np.asarray(audio_embeddings, np.float64), np.asarray(text_embeddings, np.float64)
    if a.shape != t.shape:
        raise ValueError(f"clap_score needs one text embedding per clip, got {a.shape} and {t.shape}")
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.sum(a * t, axis=1)))


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk_values: int = 1 << 22) -> np.ndarray:
    """Euclidean distances (N, M) between the rows of a (N, D) and b (M, D), each |a_i - b_j| computed directly (no
    Gram-matrix shortcut, whose cancellation turns equal points' 0 into ~1e-8), in row chunks of about
    `chunk_values` temporaries (the whole (N, M, D) difference of 1024 clips against themselves is 2 GB)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty((len(a), len(b)))
    step = max(1, chunk_values // max(1, len(b) * a.shape[1]))
    for i in range(0, len(a), step):
        out[i:i + step] = np.linalg.norm(a[i:i + step, None] - b[None], axis=-1)
    return out


def kth_neighbour_radius(d: np.ndarray, k: int) -> np.ndarray:
    """From the distances (N, N) of a set to itself: each row's distance to its k-th nearest other row, (N,)."""
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def recall_coverage_from(cross: np.ndarray, fake_fake: np.ndarray, real_radius: np.ndarray,
                         k: int) -> dict[str, float]:
    """`recall_coverage` from distances: real to generated (N, M), generated to generated (M, M), and each real
    sample's k-NN radius among the real ones (N,). Lets a bootstrap index precomputed distances."""
    recall = np.mean((cross <= kth_neighbour_radius(fake_fake, k)[None]).any(axis=1))
    coverage = np.mean((cross < real_radius[:, None]).any(axis=1))
    return {"recall": float(recall), "coverage": float(coverage)}


def recall_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Recall (Kynkaanniemi et al. 2019: the share of real samples inside some generated sample's k-NN ball) and
    coverage (Naeem et al. 2020: the share of real samples whose own k-NN ball holds at least one generated sample),
    with Euclidean distances on the embeddings (N, D) and (M, D)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"recall_coverage needs two (N, D) arrays of one width, got {real.shape} and {fake.shape}")
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"k must be in [1, {min(len(real), len(fake)) - 1}] for {len(real)} real and {len(fake)} "
                         f"generated samples, got {k}")
    real_radius = kth_neighbour_radius(pairwise_distances(real, real), k)
    return recall_coverage_from(pairwise_distances(real, fake), pairwise_distances(fake, fake), real_radius, k)
