"""`arcaudio evaluate`: the paper's table for one or more models from one command.

For each model: generate `per_prompt` clips of every prompt into OUT/<model>/ (resumable: a clip already written
is never generated again; each file is written atomically), embed them with every embedder, and score them:
Frechet distance and recall / coverage against reference audio (a folder, cached reference embeddings, or for
procedural prompts real procedural clips), CCDS (mean pairwise cosine distance of one prompt's clips), the CLAP
score (joint audio-text embedders), KL of tag distributions (taggers, with a reference clip per prompt), probe
adherence (procedural prompts; the mean over attributes, as `arcaudio adherence`), and seconds per clip. Each
figure has its sampling noise: the standard deviation over bootstrap resamples of the prompts.

Under torchrun the prompts are sharded across processes (prompt i on rank i % world); rank 0 waits for all and
scores. Reference embeddings are cached per embedder in OUT/reference_<embedder>.npz.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.audio import read_audio, write_audio
from ..generation import condition, decode, sample, sampling_settings
from ..models.text_to_audio import TextToAudioModel
from .distribution import (
    clap_score,
    conditional_diversity,
    frechet_distance,
    kl_divergence,
    kth_neighbour_radius,
    pairwise_distances,
    recall_coverage_from,
    standardiser,
)
from .embedders.base import Embedder

BOOTSTRAPS = 200


@dataclass
class EvalPrompt:
    caption: str
    reference: Path | None = None  # this prompt's own reference clip (for KL), when the prompt list names one
    attributes: dict | None = None  # procedural prompts: what the probes check
    names: list[str] | None = None


def read_prompts(spec: str) -> list[EvalPrompt]:
    """Prompts from `procedural:N[:style]` (N procedural captions of a style, default paraphrase, with their
    attributes), a CSV with a `caption` (or `prompt`) column and optionally a `file` / `audio` column of reference
    clips (relative to the CSV's folder; AudioCaps' layout), or a text file with one prompt per line.

    Raises:
        ValueError / FileNotFoundError: naming the file, the line or the missing column.
    """
    match = re.fullmatch(r"procedural:(\d+)(?::(\w+))?", spec)
    if match:
        from .adherence import adherence_prompts

        n, style = int(match.group(1)), match.group(2) or "paraphrase"
        return [EvalPrompt(p.caption, attributes=p.attributes, names=p.names)
                for p in adherence_prompts(n, style=style)]
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"prompt list {spec!r} does not exist (give a .csv, a .txt, or procedural:N)")
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"{spec}: no rows")
        column = next((c for c in ("caption", "prompt") if c in rows[0]), None)
        if column is None:
            raise ValueError(f"{spec}: needs a 'caption' or 'prompt' column, has {list(rows[0])}")
        audio_column = next((c for c in ("file", "audio") if c in rows[0]), None)
        prompts = []
        for number, row in enumerate(rows, 2):
            if not (row[column] or "").strip():
                raise ValueError(f"{spec}:{number}: empty {column}")
            reference = path.parent / row[audio_column] if audio_column and row[audio_column] else None
            prompts.append(EvalPrompt(row[column].strip(), reference))
        return prompts
    prompts = [EvalPrompt(line.strip()) for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{spec}: no prompts")
    return prompts


@dataclass
class ModelSpec:
    """A model to evaluate and how to sample it (None: the model's own defaults)."""

    source: str
    sampler: str | None = None
    steps: int | None = None
    cfg_scale: float | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """"MODEL" or "MODEL@SAMPLER,STEPS,CFG" (e.g. default-rf@euler,50,4)."""
        source, _, settings = spec.partition("@")
        if not settings:
            return cls(source)
        parts = settings.split(",")
        if len(parts) != 3:
            raise ValueError(f"model settings must be SAMPLER,STEPS,CFG, got {settings!r} in {spec!r}")
        try:
            return cls(source, parts[0], int(parts[1]), float(parts[2]))
        except ValueError:
            raise ValueError(f"model settings must be SAMPLER,STEPS,CFG (e.g. euler,50,4), got {settings!r}") from None

    @property
    def slug(self) -> str:
        """The output folder's name: the model (a file: its folder and stem, runs/arc/model.safetensors ->
        arc_model) and its settings."""
        path = Path(self.source)
        name = f"{path.parent.name}_{path.stem}" if path.suffix and path.parent.name else path.stem or self.source
        settings = "" if self.sampler is None else f"_{self.sampler}{self.steps}_cfg{self.cfg_scale:g}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", name + settings)


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


@torch.no_grad()
def generate_clips(model: TextToAudioModel, spec: ModelSpec, prompts: list[EvalPrompt], out_dir: Path,
                   per_prompt: int, seed: int = 0, seconds: float | None = None, stop_after: int | None = None) -> int:
    """Write OUT/NNNNN_K.wav for every prompt (this rank's share) and K < per_prompt that is not there yet; clip K
    of prompt i uses seed `seed + i * per_prompt + K`, so a resumed or sharded run makes the same clips. Timings go
    to OUT/timing_rank<r>.json (seconds per clip generated). Returns how many clips were generated; `stop_after`
    stops after that many prompts' clips (to test resumption)."""
    rank, world = _rank_world()
    out_dir.mkdir(parents=True, exist_ok=True)
    timing_path = out_dir / f"timing_rank{rank}.json"
    timing = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    made = 0
    done_prompts = 0
    for i, prompt in enumerate(prompts):
        if i % world != rank:
            continue
        missing = [k for k in range(per_prompt) if not (out_dir / f"{i:05d}_{k}.wav").is_file()]
        if not missing:
            continue
        if stop_after is not None and done_prompts >= stop_after:
            break
        t0 = time.perf_counter()
        encoded = condition(model, [prompt.caption], seconds).repeat(len(missing))
        latents = sample(model, encoded, seeds=[seed + i * per_prompt + k for k in missing], steps=spec.steps,
                         sampler=spec.sampler, cfg_scale=spec.cfg_scale)
        clips = decode(model, latents, encoded.seconds)
        elapsed = time.perf_counter() - t0
        for k, clip in zip(missing, clips):
            write_audio(out_dir / f"{i:05d}_{k}.wav", clip.cpu(), model.config.sample_rate)
        timing[str(i)] = elapsed / len(missing)
        _write_json(timing_path, timing)
        made += len(missing)
        done_prompts += 1
    return made


def _write_json(path: Path, data) -> None:
    from ..checkpoint import atomic_write

    text = json.dumps(data, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_clips(out_dir: Path, n_prompts: int, per_prompt: int) -> tuple[list[np.ndarray], int]:
    """The generated clips in prompt-major order, (channels, samples) float32 each, and their sample rate."""
    clips, rate = [], None
    for i in range(n_prompts):
        for k in range(per_prompt):
            path = out_dir / f"{i:05d}_{k}.wav"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: generation did not finish (re-run to resume)")
            audio, rate = read_audio(path)
            clips.append(audio.numpy())
    return clips, rate


def reference_embeddings(embedder: Embedder, out_root: Path, reference: str | None, reference_stats: str | None,
                         procedural: int, sample_rate: int, window_s: float) -> np.ndarray:
    """Reference embeddings (N, D) for `embedder`: from --reference-stats (an .npz with one array per embedder
    name), else cached in OUT/reference_<name>.npz, else computed from the --reference folder's audio files, else
    (procedural prompts) from `procedural` real procedural clips."""
    if reference_stats is not None:
        with np.load(reference_stats) as data:
            if embedder.name not in data:
                raise ValueError(f"{reference_stats} has no {embedder.name!r} array (has {list(data)})")
            return data[embedder.name]
    key = f"{reference or 'procedural'}|{embedder.describe()}|{procedural}|{window_s:.3f}"
    cache = out_root / f"reference_{embedder.name}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            if str(data["key"]) == key:
                return data["embeddings"]
    if reference is not None:
        files = sorted(p for p in Path(reference).rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
        if len(files) < 2:
            raise ValueError(f"--reference {reference!r} holds {len(files)} audio files; at least 2 are needed")
        clips = []
        for path in files:
            audio, rate = read_audio(path)
            clips.append((audio.numpy(), rate))
        embeddings = np.concatenate([embedder.embed([c], r) for c, r in clips])
    else:
        from ..procedural.synth import make_clip

        window = round(window_s * sample_rate)
        clips = []
        for i in range(procedural):
            clip, _, _ = make_clip(97531, i, max_seconds=window_s)
            padded = np.zeros((clip.shape[0], window), np.float32)
            padded[:, : min(window, clip.shape[1])] = clip[:, :window]
            clips.append(padded)
        embeddings = embedder.embed(clips, sample_rate)
    out_root.mkdir(parents=True, exist_ok=True)
    np.savez(cache, embeddings=embeddings, key=np.array(key))
    return embeddings


@dataclass
class EvalResult:
    model: str
    sampler: str
    steps: int
    cfg_scale: float
    clips: int
    seconds_per_clip: float
    metrics: dict[str, float] = field(default_factory=dict)  # "fd_stats", "ccds_clap", "clap_score", ...
    noise: dict[str, float] = field(default_factory=dict)  # bootstrap standard deviation of each metric
    # each metric on every bootstrap resample of the prompts (NaN where undefined): the resamples depend only on
    # the number of prompts and the seed, so two models scored on the same prompts share them (paired_differences)
    resampled: dict[str, list[float]] = field(default_factory=dict)


def score(spec: ModelSpec, objective: str, prompts: list[EvalPrompt], clips: list[np.ndarray], sample_rate: int,
          per_prompt: int, embedders: list[Embedder], references: dict[str, np.ndarray], k: int,
          seconds_per_clip: float, bootstraps: int = BOOTSTRAPS, seed: int = 0) -> EvalResult:
    """Every metric of the module docstring, with bootstrap noise over prompts."""
    settings = sampling_settings(objective, spec.sampler, spec.steps, spec.cfg_scale)
    n = len(prompts)
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, n, n) for _ in range(bootstraps)]

    def with_noise(name: str, fn) -> None:
        """fn(prompt indices) -> value; the figure on all prompts and its bootstrap std."""
        result.metrics[name] = float(fn(np.arange(n)))
        result.resampled[name] = [float(fn(idx)) for idx in resamples]
        values = [v for v in result.resampled[name] if np.isfinite(v)]
        result.noise[name] = float(np.std(values)) if values else float("nan")

    def clip_rows(idx: np.ndarray) -> np.ndarray:
        return (idx[:, None] * per_prompt + np.arange(per_prompt)[None]).reshape(-1)

    result = EvalResult(spec.source, settings.sampler, settings.steps, settings.cfg_scale, len(clips),
                        seconds_per_clip)
    for embedder in embedders:
        _score_embedder(with_noise, clip_rows, embedder, prompts, clips, sample_rate, per_prompt,
                        references[embedder.name], k)
    if all(p.attributes is not None for p in prompts):  # as `arcaudio adherence`: the mean over attributes
        from .adherence import AdherencePrompt, read_prompt, summarise

        scored = [[(p.attributes, read_prompt(clips[i * per_prompt + j], sample_rate,
                                              AdherencePrompt(p.caption, p.attributes, 0.0, p.names)))
                   for j in range(per_prompt)] for i, p in enumerate(prompts)]
        with_noise("adherence", lambda idx: summarise([pair for i in idx for pair in scored[i]], 0.0).mean_accuracy)
    return result


def _score_embedder(with_noise, clip_rows, embedder: Embedder, prompts: list[EvalPrompt], clips: list[np.ndarray],
                    sample_rate: int, per_prompt: int, ref: np.ndarray, k: int) -> None:
    """The metrics of one embedder: FD, recall / coverage, CCDS, and the CLAP score / KL where it can."""
    n = len(prompts)
    emb = embedder.embed(clips, sample_rate)  # (n * per_prompt, D)
    if embedder.standardise:
        z = standardiser(ref)
        emb, ref = z(emb), z(ref)
    with_noise(f"fd_{embedder.name}", lambda idx: frechet_distance(emb[clip_rows(idx)], ref))
    if len(ref) > k and len(clips) > k:
        # distances computed once; each resample indexes them (the values recall_coverage computes on its rows)
        cross, fake_fake = pairwise_distances(ref, emb), pairwise_distances(emb, emb)  # (N, M), (M, M)
        real_radius = kth_neighbour_radius(pairwise_distances(ref, ref), k)  # (N,)

        def rc(idx: np.ndarray) -> dict[str, float]:
            rows = clip_rows(idx)
            return recall_coverage_from(cross[:, rows], fake_fake[np.ix_(rows, rows)], real_radius, k)

        with_noise(f"recall_{embedder.name}", lambda idx: rc(idx)["recall"])
        with_noise(f"coverage_{embedder.name}", lambda idx: rc(idx)["coverage"])
    if per_prompt >= 2:
        groups = emb.reshape(n, per_prompt, -1)  # (n, per_prompt, D)
        with_noise(f"ccds_{embedder.name}", lambda idx: conditional_diversity(list(groups[idx])))
    text = embedder.embed_text([p.caption for p in prompts])
    if text is not None:
        per_clip_text = np.repeat(text, per_prompt, axis=0)  # (n * per_prompt, D)
        with_noise(f"clap_score_{embedder.name}",
                   lambda idx: clap_score(emb[clip_rows(idx)], per_clip_text[clip_rows(idx)]))
    if all(p.reference is not None for p in prompts):
        tags = embedder.tag_probabilities(clips, sample_rate)
        if tags is not None:
            ref_tags = np.concatenate([embedder.tag_probabilities(*_read(p.reference)) for p in prompts])
            gen = tags.reshape(n, per_prompt, -1)
            with_noise(f"kl_{embedder.name}", lambda idx: np.mean(
                [kl_divergence(ref_tags[idx], gen[idx, j]) for j in range(per_prompt)]))


def _read(path: Path) -> tuple[list[np.ndarray], int]:
    audio, rate = read_audio(path)
    return [audio.numpy()], rate


def markdown_table(results: list[EvalResult]) -> str:
    """The paper's layout: one row per model and setting, each metric as value +- noise, then time per clip."""
    names = sorted({m for r in results for m in r.metrics}, key=_metric_order)
    head = ["model", "sampler", "steps", "CFG", *names, "s / clip"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.model, r.sampler, str(r.steps), f"{r.cfg_scale:g}"]
        cells += [f"{r.metrics[m]:.3f} +- {r.noise[m]:.3f}" if m in r.metrics else "" for m in names]
        cells.append(f"{r.seconds_per_clip:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_differences(results: list[EvalResult]) -> list[dict[str, tuple[float, float]]]:
    """Each result after the first against the first, metric by metric: (difference, its paired sampling noise).
    The noise is the standard deviation over the shared bootstrap resamples of (this - first), so what the two
    models have in common (the prompts drawn, how hard each is) cancels: a difference far smaller than either
    figure's own noise can still be measured. Results scored on different prompt sets give no paired noise (NaN)."""
    base, out = results[0], []
    for r in results[1:]:
        row = {}
        for name in sorted(set(base.metrics) & set(r.metrics), key=_metric_order):
            a, b = np.asarray(base.resampled.get(name, [])), np.asarray(r.resampled.get(name, []))
            both = np.isfinite(a) & np.isfinite(b) if a.shape == b.shape else np.zeros(0, dtype=bool)
            noise = float(np.std(b[both] - a[both])) if both.any() and r.clips == base.clips else float("nan")
            row[name] = (r.metrics[name] - base.metrics[name], noise)
        out.append(row)
    return out


def differences_table(results: list[EvalResult]) -> str:
    """Markdown: each row after the first minus the first, value +- paired noise (`paired_differences`)."""
    rows = paired_differences(results)
    names = sorted({m for row in rows for m in row}, key=_metric_order)
    head = ["model", "sampler", "steps", "CFG", *(f"d {m}" for m in names)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, row in zip(results[1:], rows):
        cells = [r.model, r.sampler, str(r.steps), f"{r.cfg_scale:g}"]
        cells += [f"{row[m][0]:+.3f} +- {row[m][1]:.3f}" if m in row else "" for m in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric_order(name: str) -> tuple[int, str]:
    order = ("fd_", "kl_", "clap_score", "recall", "coverage", "ccds", "adherence")
    return next((i for i, prefix in enumerate(order) if name.startswith(prefix)), len(order)), name
