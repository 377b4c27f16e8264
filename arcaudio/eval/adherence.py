"""Prompt adherence without a downloaded classifier: generate from procedural-set captions, read every attribute a
prompt names back from the audio with the analytic probes, and report accuracy per attribute next to chance."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..generation import generate
from ..models.text_to_audio import TextToAudioModel
from ..procedural.probes import probe_all
from ..procedural.synth import (
    ATTRIBUTE_VALUES,
    CAPTION_STYLES,
    DEFAULT_MAX_SECONDS,
    allowed_values,
    caption_for,
    probed_attributes,
    sample_attributes,
    short_prompt,
)

# the caption styles of the procedural set, and "short": 1-3 of a clip's probed attributes in training words
# (`synth.short_prompt`), scored on those alone. Not a dataset style: a stored caption names every attribute.
PROMPT_STYLES = (*CAPTION_STYLES, "short")


@dataclass
class AdherencePrompt:
    caption: str
    attributes: dict  # every attribute of the clip the prompt was drawn for
    seconds: float
    names: list[str] | None = None  # the attributes the caption names and is scored on; None: all probed ones

    def __post_init__(self):
        if "kind" not in self.attributes and self.names is not None:
            probed = list(ATTRIBUTE_VALUES)  # a prompt that names no kind ("something quiet on the left")
        else:
            probed = probed_attributes(self.attributes)
        if self.names is None:
            self.names = probed
        elif not self.names or not set(self.names) <= set(probed):
            raise ValueError(f"names must be a non-empty subset of the probed attributes {probed}, "
                             f"got {self.names!r}")


def adherence_prompts(n: int, seed: int = 1234, style: str = "heldout",
                      seconds: float = DEFAULT_MAX_SECONDS) -> list[AdherencePrompt]:
    """n captions with known attributes, drawn like the procedural set (prompt i depends only on (seed, i)).
    `style="heldout"` phrases them with templates and synonyms never used for training data; `style="short"`
    names 1-3 probed attributes of each clip, and the prompt is scored on those alone."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"style must be one of {list(PROMPT_STYLES)}, got {style!r}")
    prompts = []
    for i in range(n):
        rng = np.random.default_rng([seed, i, 77])
        attributes = sample_attributes(rng)
        if style == "short":
            caption, names = short_prompt(attributes, rng)
            prompts.append(AdherencePrompt(caption, attributes, seconds, names))
        else:
            prompts.append(AdherencePrompt(caption_for(attributes, rng, style=style), attributes, seconds))
    return prompts


def prompts_from_file(path, seconds: float = DEFAULT_MAX_SECONDS) -> list[AdherencePrompt]:
    """Prompts written anywhere, with what they ask for: a JSON-lines file of
    `{"prompt": "white noise on the left", "attributes": {"kind": "noise", "colour": "white", "pan": "left"}}`,
    each prompt scored on the attributes it lists (any of `synth.ATTRIBUTE_VALUES`; `kind` may be left out).

    Raises:
        ValueError: naming the line and the bad field, value, or what would be valid.
    """
    prompts = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not a JSON object ({err})") from err
        if not isinstance(record, dict) or set(record) != {"prompt", "attributes"}:
            raise ValueError(f"{where}: expected {{\"prompt\": str, \"attributes\": {{name: class}}}}, got {line!r}")
        caption, attributes = record["prompt"], record["attributes"]
        if not isinstance(caption, str) or not caption.strip() or not isinstance(attributes, dict) or not attributes:
            raise ValueError(f"{where}: needs a non-empty prompt and at least one attribute, got {line!r}")
        for name, value in attributes.items():
            if name not in ATTRIBUTE_VALUES:
                raise ValueError(f"{where}: unknown attribute {name!r}; attributes: {list(ATTRIBUTE_VALUES)}")
            valid = _classes(attributes, name)
            if value not in valid:
                raise ValueError(f"{where}: {name} {value!r} is not one of {valid}")
        prompts.append(AdherencePrompt(caption, dict(attributes), seconds, list(attributes)))
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def _classes(attributes: dict, name: str) -> list:
    """The classes attribute `name` can take: those of the prompt's kind, or every class when it names no kind."""
    return allowed_values(attributes["kind"], name) if "kind" in attributes else ATTRIBUTE_VALUES[name]


def read_prompt(audio, sample_rate: float, prompt: AdherencePrompt) -> dict[str, object]:
    """The class the probes read from `audio` for each attribute the prompt names."""
    return probe_all(audio, sample_rate, prompt.names)


def score_prompt(audio, sample_rate: float, prompt: AdherencePrompt) -> dict[str, bool]:
    """For each attribute the prompt names, whether the probe reads the prompt's class from `audio` (with every
    probed attribute named, the same as `probes.score`)."""
    found = read_prompt(audio, sample_rate, prompt)
    return {name: found[name] == prompt.attributes[name] for name in prompt.names}


@dataclass
class AdherenceReport:
    accuracy: dict[str, float]  # attribute -> share of clips where the probe read the prompt's class
    chance: dict[str, float]  # attribute -> expected accuracy of a random guess among the allowed classes
    counts: dict[str, int]  # attribute -> clips scored on it
    seconds_per_clip: float
    per_clip: list[dict[str, bool]] = field(default_factory=list)
    # attribute -> class the prompt asked for -> class the probe read -> clips (keys are str, as in JSON)
    confusion: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(list(self.accuracy.values())))

    @property
    def mean_chance(self) -> float:
        return float(np.mean(list(self.chance.values())))

    def table(self) -> str:
        lines = [f"{'attribute':<12}{'accuracy':>10}{'chance':>9}{'clips':>7}"]
        for name in self.accuracy:
            lines.append(f"{name:<12}{self.accuracy[name]:>10.3f}{self.chance[name]:>9.3f}{self.counts[name]:>7d}")
        lines.append(f"{'mean':<12}{self.mean_accuracy:>10.3f}{self.mean_chance:>9.3f}")
        return "\n".join(lines)

    def confusion_table(self, name: str) -> str:
        """Rows: the class prompts asked for; columns: the class the probe read; cells: clips."""
        if name not in self.confusion:
            raise ValueError(f"no clips were scored on {name!r}; scored attributes: {list(self.confusion)}")
        rows = self.confusion[name]
        read = sorted({c for row in rows.values() for c in row}, key=_class_order(name))
        width = max(7, *(len(c) + 1 for c in read))
        corner = f"{name}: asked / read"
        lines = [f"{corner:<22}" + "".join(f"{c:>{width}}" for c in read)]
        for asked in sorted(rows, key=_class_order(name)):
            lines.append(f"{asked:<22}" + "".join(f"{rows[asked].get(c, 0):>{width}d}" for c in read))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """The report as JSON-ready figures (no per-clip results)."""
        return {"accuracy": self.accuracy, "chance": self.chance, "counts": self.counts,
                "mean_accuracy": self.mean_accuracy, "mean_chance": self.mean_chance,
                "seconds_per_clip": self.seconds_per_clip, "confusion": self.confusion}


def _class_order(name: str):
    """Sort key: an attribute's classes in `ATTRIBUTE_VALUES` order, anything else after them."""
    order = {str(v): i for i, v in enumerate(ATTRIBUTE_VALUES.get(name, []))}
    return lambda c: (order.get(c, len(order)), c)


def summarise(scored: list[tuple[dict, dict[str, object]]], elapsed: float) -> AdherenceReport:
    """Aggregate (reference attributes, classes the probes read) pairs into per-attribute accuracy, chance and
    confusion. Each clip counts for the attributes its read dict names."""
    hits: dict[str, list[bool]] = defaultdict(list)
    chances: dict[str, list[float]] = defaultdict(list)
    confusion: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    per_clip = []
    for attributes, read in scored:
        result = {name: found == attributes[name] for name, found in read.items()}
        for name, ok in result.items():
            hits[name].append(ok)
            chances[name].append(1.0 / len(_classes(attributes, name)))
            confusion[name][str(attributes[name])][str(read[name])] += 1
        per_clip.append(result)
    names = sorted(hits, key=lambda k: (k != "kind", k))
    return AdherenceReport(accuracy={k: float(np.mean(hits[k])) for k in names},
                           chance={k: float(np.mean(chances[k])) for k in names},
                           counts={k: len(hits[k]) for k in names},
                           seconds_per_clip=elapsed / max(len(scored), 1), per_clip=per_clip,
                           confusion={k: {a: dict(r) for a, r in confusion[k].items()} for k in names})


def combine(reports: list[AdherenceReport]) -> AdherenceReport:
    """One report over the clips of several (e.g. the same prompts at several generation seeds): accuracy and
    chance weighted by clip counts, confusion summed, time per clip over all clips."""
    if not reports:
        raise ValueError("combine needs at least one report")
    names = list(dict.fromkeys(k for r in reports for k in r.accuracy))
    counts = {k: sum(r.counts.get(k, 0) for r in reports) for k in names}

    def weighted(field_name: str) -> dict[str, float]:
        return {k: sum(getattr(r, field_name).get(k, 0.0) * r.counts.get(k, 0) for r in reports) / counts[k]
                for k in names}

    clips = sum(len(r.per_clip) for r in reports)
    elapsed = sum(r.seconds_per_clip * len(r.per_clip) for r in reports)
    return AdherenceReport(accuracy=weighted("accuracy"), chance=weighted("chance"), counts=counts,
                           seconds_per_clip=elapsed / max(clips, 1),
                           per_clip=[c for r in reports for c in r.per_clip],
                           confusion=merge_confusions([r.confusion for r in reports]))


def merge_confusions(confusions: Sequence[dict[str, dict[str, dict[str, int]]]]
                     ) -> dict[str, dict[str, dict[str, int]]]:
    """Cell-wise sums of `AdherenceReport.confusion` tables (attribute -> asked -> read -> clips)."""
    total: dict[str, dict[str, dict[str, int]]] = {}
    for confusion in confusions:
        for name, rows in confusion.items():
            for asked, row in rows.items():
                cells = total.setdefault(name, {}).setdefault(asked, {})
                for found, n in row.items():
                    cells[found] = cells.get(found, 0) + n
    return total


@torch.no_grad()
def evaluate_adherence(model: TextToAudioModel, prompts: list[AdherencePrompt], steps: int | None = None,
                       sampler: str | None = None, cfg_scale: float | None = None, seed: int = 0,
                       batch_size: int = 16) -> AdherenceReport:
    """Generate one clip per prompt (batches of `batch_size`, seed + index of the batch's first prompt) and probe
    each for the attributes its prompt names (`prompt.names`) and no others."""
    if len({p.seconds for p in prompts}) > 1:
        raise ValueError("evaluate_adherence generates every prompt at one length; got several `seconds` values")
    scored = []
    t0 = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        clips = generate(model, [p.caption for p in chunk], seconds=chunk[0].seconds, steps=steps, sampler=sampler,
                         cfg_scale=cfg_scale, seed=seed + start)
        for prompt, clip in zip(chunk, clips):
            scored.append((prompt.attributes, read_prompt(clip.cpu().numpy(), model.config.sample_rate, prompt)))
    return summarise(scored, time.perf_counter() - t0)


@torch.no_grad()
def evaluate_reconstruction(model: TextToAudioModel, n: int, seed: int = 4321, batch_size: int = 16) -> AdherenceReport:
    """The autoencoder's ceiling on adherence: probe accuracy on encode -> decode round trips of procedural clips."""
    from ..procedural.synth import make_clip

    config = model.config
    scored = []
    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        items = [make_clip(seed, i, max_seconds=config.max_seconds) for i in range(start, min(n, start + batch_size))]
        audio = torch.zeros(len(items), config.audio_channels, config.sample_size)
        for row, (clip, _, _) in enumerate(items):
            audio[row, :, : clip.shape[-1]] = torch.from_numpy(clip)
        decoded = model.autoencoder.decode(model.autoencoder.encode(audio.to(model.device), sample=False))
        decoded = decoded.float().cpu()
        for row, (clip, attributes, _) in enumerate(items):
            scored.append((attributes, probe_all(decoded[row, :, : clip.shape[-1]].numpy(), config.sample_rate,
                                                 probed_attributes(attributes))))
    return summarise(scored, time.perf_counter() - t0)
