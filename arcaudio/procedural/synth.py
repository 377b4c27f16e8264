"""The procedural, labelled dataset: stereo 44.1 kHz clips whose every attribute is categorical.

A clip is one of five kinds (tone, chord, noise, drums, sweep) with kind-specific attributes (waveform and pitch,
chord quality, noise colour, tempo, sweep direction) and common ones (loudness, pan, envelope). The same attributes
are written into a natural-language caption, so a text-to-audio model trained on the clips can be scored on each
attribute with the analytic probes of `arcaudio.procedural.probes`; `subset_caption` names only some of them ("a sine
note", "plucked A4"), for short prompts.

Clip `index` of seed `seed` depends only on the pair: it is drawn from `np.random.default_rng([seed, index])` in a
fixed order (attributes, duration, audio, caption), so the train and held-out caption styles describe the same audio.

Definitions the probes rely on:
- loudness: the power of the loudest 100 ms frame (hop 50 ms), averaged over both channels, in dB re full scale
  (`loudness_db`); quiet clips sit at -30 dB and loud ones at -16 dB, each +-1.5 dB; no sample exceeds 0.95 (a
  peak limit that takes a little off a few loud noise and drum clips);
- pan: constant-power gains; left and right clips are 15 dB louder on their side, centre clips equal;
- envelope: steady (fades of a few tens of ms), plucked (attack <= 10 ms, exponential decay with time constant
  0.12-0.22 of the clip), swelling (quadratic rise over 60-85 % of the clip); drums are always "percussive";
- drums hit only on an eighth-note grid of their tempo (hi-hat on every eighth).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
MIN_SECONDS = 1.5
DEFAULT_MAX_SECONDS = 131072 / SAMPLE_RATE  # ~2.972 s: the `tiny` preset's window (64 latent frames x 2048)
PITCH_HZ = {name: 440.0 * 2.0 ** (semitones / 12)
            for name, semitones in [("A2", -24), ("E3", -17), ("A3", -12), ("E4", -5), ("A4", 0), ("E5", 7)]}
CHORD_ROOTS = ["A2", "E3", "A3", "E4", "A4"]  # E5 left out: keeps every chord note under ~1.3 kHz
CHORD_WAVEFORMS = ["sine", "triangle"]
CHORD_INTERVALS = {"major": (0, 4, 7), "minor": (0, 3, 7)}  # semitones above the root
TEMPOS = [80, 100, 120, 140]
LOUDNESS_DB = {"quiet": -30.0, "loud": -16.0}
LOUDNESS_JITTER_DB = 1.5
PAN_SIDE_DB = 15.0
PEAK_LIMIT = 0.95
DRUMS_ENVELOPE = "percussive"

KIND_ATTRIBUTES = {"tone": ("waveform", "pitch"), "chord": ("quality", "pitch", "waveform"), "noise": ("colour",),
                   "drums": ("tempo",), "sweep": ("direction",)}
ATTRIBUTE_VALUES: dict[str, list] = {
    "kind": list(KIND_ATTRIBUTES),
    "waveform": ["sine", "square", "sawtooth", "triangle"],
    "pitch": list(PITCH_HZ),
    "quality": ["major", "minor"],
    "colour": ["white", "pink", "brown"],
    "tempo": list(TEMPOS),
    "direction": ["up", "down"],
    "loudness": ["quiet", "loud"],
    "pan": ["left", "center", "right"],
    "envelope": ["steady", "plucked", "swelling"],
}
_ALLOWED_FOR_KIND = {("chord", "pitch"): CHORD_ROOTS, ("chord", "waveform"): CHORD_WAVEFORMS,
                     ("drums", "envelope"): [DRUMS_ENVELOPE]}


def _pan_gains() -> dict[str, tuple[float, float]]:
    side = math.atan(10.0 ** (-PAN_SIDE_DB / 20))  # constant power: gL = cos, gR = sin
    return {"left": (math.cos(side), math.sin(side)), "center": (math.sqrt(0.5), math.sqrt(0.5)),
            "right": (math.sin(side), math.cos(side))}


PAN_GAINS = _pan_gains()


def _pick(rng: np.random.Generator, options):
    """One element of a sequence, drawn uniformly (keeps the element's Python type)."""
    return options[int(rng.integers(len(options)))]


def probed_attributes(attributes: dict) -> list[str]:
    """The attribute names a clip is scored on: kind, its kind-specific ones, loudness, pan and (not drums) envelope.

    A chord's waveform is part of its caption but is not probed."""
    kind = attributes.get("kind")
    if kind not in KIND_ATTRIBUTES:
        raise ValueError(f"kind must be one of {list(KIND_ATTRIBUTES)}, got {kind!r}")
    specific = [name for name in KIND_ATTRIBUTES[kind] if not (kind == "chord" and name == "waveform")]
    return ["kind", *specific, "loudness", "pan"] + ([] if kind == "drums" else ["envelope"])


def allowed_values(kind: str, name: str) -> list:
    """The classes attribute `name` takes in clips of `kind` (a chord's pitch: no E5; its waveform: sine or
    triangle; drums' envelope: "percussive"). `kind` itself: all kinds."""
    if kind not in KIND_ATTRIBUTES:
        raise ValueError(f"kind must be one of {list(KIND_ATTRIBUTES)}, got {kind!r}")
    if name not in ("kind", *KIND_ATTRIBUTES[kind], "loudness", "pan", "envelope"):
        raise ValueError(f"a {kind} clip has no attribute {name!r}")
    return list(_ALLOWED_FOR_KIND.get((kind, name), ATTRIBUTE_VALUES[name]))


def _check_attributes(attributes: dict) -> None:
    kind = attributes.get("kind")
    if kind not in KIND_ATTRIBUTES:
        raise ValueError(f"kind must be one of {list(KIND_ATTRIBUTES)}, got {kind!r}")
    for name in (*KIND_ATTRIBUTES[kind], "loudness", "pan", "envelope"):
        allowed = allowed_values(kind, name)
        if attributes.get(name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed} for a {kind} clip, got {attributes.get(name)!r}")


def sample_attributes(rng: np.random.Generator) -> dict:
    """Draw a clip's attributes: the kind uniformly, then each of its attributes uniformly over its classes."""
    kind = _pick(rng, ATTRIBUTE_VALUES["kind"])
    attributes: dict = {"kind": kind}
    for name in KIND_ATTRIBUTES[kind]:
        attributes[name] = _pick(rng, allowed_values(kind, name))
    attributes["loudness"] = _pick(rng, ATTRIBUTE_VALUES["loudness"])
    attributes["pan"] = _pick(rng, ATTRIBUTE_VALUES["pan"])
    attributes["envelope"] = DRUMS_ENVELOPE if kind == "drums" else _pick(rng, ATTRIBUTE_VALUES["envelope"])
    return attributes


def loudness_db(audio: np.ndarray, sample_rate: int) -> float:
    """The dataset's loudness of (C, L) audio: power of the loudest 100 ms frame (hop 50 ms, mean over channels), dB.

    Non-finite samples count as silence; silence reads -200 dB. Audio shorter than a frame is one frame."""
    x = np.asarray(audio, dtype=np.float64)
    x = np.where(np.isfinite(x), x, 0.0).reshape(-1, x.shape[-1]) if x.size else np.zeros((1, 1))
    power = np.mean(x**2, axis=0)
    frame = max(1, round(0.1 * sample_rate))
    if power.size <= frame:
        best = float(power.mean())
    else:
        csum = np.concatenate([[0.0], np.cumsum(power)])
        starts = np.unique(np.append(np.arange(0, power.size - frame + 1, max(1, frame // 2)), power.size - frame))
        best = float(np.max(csum[starts + frame] - csum[starts])) / frame
    return 10.0 * math.log10(max(best, 1e-20))


# ----------------------------------------------------------------------------------------------- sound sources

def _oscillator(waveform: str, freq: float, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A band-limited periodic waveform (harmonics below 0.45 sample_rate), unit fundamental amplitude, (n,)."""
    count = max(1, int(0.45 * sample_rate / freq))
    k = np.arange(1, count + 1)
    odd = k % 2 == 1
    amplitudes = {"sine": (k == 1).astype(float), "square": np.where(odd, 1.0 / k, 0.0), "sawtooth": 1.0 / k,
                  "triangle": np.where(odd, (-1.0) ** ((k - 1) // 2) / k**2, 0.0)}[waveform]
    size = max(8192, 8 * 2 ** math.ceil(math.log2(count + 1)))
    spectrum = np.zeros(size // 2 + 1, dtype=np.complex128)
    spectrum[1:count + 1] = -0.5j * size * amplitudes  # irfft of this is sum_k a_k sin(2 pi k m / size)
    table = np.fft.irfft(spectrum, size)
    table = np.append(table, table[0])
    position = (rng.random() + freq / sample_rate * np.arange(n)) % 1.0 * size
    index = position.astype(np.int64)
    frac = position - index
    return table[index] + frac * (table[index + 1] - table[index])


def _tone(attributes: dict, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    freq = PITCH_HZ[attributes["pitch"]] * 2.0 ** (rng.uniform(-10, 10) / 1200)  # +-10 cents of detune
    return _oscillator(attributes["waveform"], freq, n, sample_rate, rng)


def _chord(attributes: dict, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    root = PITCH_HZ[attributes["pitch"]] * 2.0 ** (rng.uniform(-10, 10) / 1200)
    return sum(rng.uniform(0.8, 1.0) * _oscillator(attributes["waveform"], root * 2.0 ** (step / 12), n,
                                                     sample_rate, rng)
               for step in CHORD_INTERVALS[attributes["quality"]])


def _noise(attributes: dict, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power density ~ f^0 (white), f^-1 (pink) or f^-2 (brown), high-passed at 30 Hz."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[attributes["colour"]]
    freq = np.fft.rfftfreq(n, 1.0 / sample_rate)
    shape = np.zeros_like(freq)
    f = freq[1:]
    shape[1:] = f ** (-alpha / 2) * f / np.sqrt(f**2 + 30.0**2)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return x / max(float(np.std(x)), 1e-12)


def _sweep(attributes: dict, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """An exponential sine sweep over 2-3 octaves between ~100 Hz and ~3.2 kHz."""
    span = rng.uniform(2.0, 3.0)
    low = math.exp(rng.uniform(math.log(100.0), math.log(400.0)))
    f0, f1 = (low, low * 2**span) if attributes["direction"] == "up" else (low * 2**span, low)
    duration = n / sample_rate
    t = np.arange(n) / sample_rate
    ratio = math.log(f1 / f0)
    phase = 2 * math.pi * f0 * duration / ratio * np.expm1(ratio * t / duration)
    return np.sin(phase + 2 * math.pi * rng.random())


def _decaying(seconds: float, sample_rate: int) -> np.ndarray:
    return np.arange(round(seconds * sample_rate)) / sample_rate


def _kick(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _decaying(0.4, sample_rate)
    start, end = rng.uniform(120, 180), rng.uniform(45, 60)
    freq = end + (start - end) * np.exp(-t / 0.04)
    body = np.sin(2 * math.pi * np.cumsum(freq) / sample_rate) * np.exp(-t / rng.uniform(0.1, 0.2))
    return body + 0.3 * rng.standard_normal(t.size) * np.exp(-t / 0.002)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    t = _decaying(0.3, sample_rate)
    rattle = np.diff(rng.standard_normal(t.size + 1)) / math.sqrt(2)
    body = np.sin(2 * math.pi * rng.uniform(170, 240) * t) * np.exp(-t / 0.04)
    return 0.5 * body + 0.6 * rattle * np.exp(-t / rng.uniform(0.04, 0.09))


def _hat(sample_rate: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    """Noise band-passed around 5-12 kHz (a one-octave-wide bump in log-frequency), decaying."""
    t = _decaying(0.25 if decay < 0.05 else 0.6, sample_rate)
    freq = np.fft.rfftfreq(t.size, 1.0 / sample_rate)
    centre = rng.uniform(6000.0, 9000.0)
    shape = np.exp(-0.5 * (np.log2(np.maximum(freq, 1.0) / centre) / 0.6) ** 2)
    hiss = np.fft.irfft(np.fft.rfft(rng.standard_normal(t.size)) * shape, t.size)
    return hiss / max(float(np.std(hiss)), 1e-12) * np.exp(-t / decay)


def _drums(attributes: dict, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A 4/4 kick/snare/hi-hat loop: hats on every eighth, kicks on 1 and 3 (plus a per-clip variation), snares on
    2 and 4, an occasional ghost snare and open hat; every hit on the eighth-note grid."""
    eighth = 30.0 / attributes["tempo"]
    kick, snare = _kick(sample_rate, rng), _snare(sample_rate, rng)
    closed_hat = _hat(sample_rate, rng, rng.uniform(0.012, 0.03))
    open_hat = _hat(sample_rate, rng, rng.uniform(0.1, 0.16))
    kicks = {0, 4} | {p for p in (3, 5, 7) if rng.random() < 0.3}
    start = rng.uniform(0.0, 0.03)
    out = np.zeros(n)
    for e in range(math.ceil((n / sample_rate - start) / eighth)):
        at = round((start + e * eighth) * sample_rate)
        position = e % 8
        hits = [(open_hat if position == 7 and rng.random() < 0.25 else closed_hat,
                 0.35 * (rng.uniform(0.8, 1.0) if position % 2 == 0 else rng.uniform(0.45, 0.7)))]
        if position in kicks:
            hits.append((kick, rng.uniform(0.85, 1.0)))
        if position in (2, 6):
            hits.append((snare, 0.8 * rng.uniform(0.8, 1.0)))
        elif rng.random() < 0.08:
            hits.append((snare, 0.25))
        for sound, gain in hits:
            length = min(sound.size, n - at)
            out[at:at + length] += gain * sound[:length]
    return out * np.clip((n - np.arange(n)) / (0.005 * sample_rate), 0.0, 1.0)


def _envelope(shape: str, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Amplitude envelope (n,) in [0, 1]: steady, plucked or swelling (see the module docstring)."""
    t = np.arange(n) / sample_rate
    duration = n / sample_rate
    if shape == "steady":
        fade_in, fade_out = rng.uniform(0.005, 0.03), rng.uniform(0.01, 0.05)
        env = np.ones(n)
    elif shape == "plucked":
        attack, tau = rng.uniform(0.002, 0.01), rng.uniform(0.12, 0.22) * duration
        env = np.where(t < attack, t / attack, np.exp(-(t - attack) / tau))
        fade_in, fade_out = 0.0, 0.01
    else:
        rise = rng.uniform(0.6, 0.85) * duration
        env = np.minimum(t / rise, 1.0) ** 2
        fade_in, fade_out = 0.0, rng.uniform(0.02, 0.05)
    if fade_in > 0:
        env = env * np.clip(t / fade_in, 0.0, 1.0)
    return env * np.clip((duration - t) / fade_out, 0.0, 1.0)


_SOURCES = {"tone": _tone, "chord": _chord, "noise": _noise, "sweep": _sweep}


def render(attributes: dict, seconds: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesise a clip with the given attributes: (2, round(seconds * sample_rate)) float32, peak <= 0.95."""
    _check_attributes(attributes)
    if not isinstance(sample_rate, int) or sample_rate < 8000:
        raise ValueError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate!r}")
    n = round(seconds * sample_rate) if seconds > 0 else 0
    if n < 1:
        raise ValueError(f"seconds must give at least one sample, got {seconds!r}")
    if attributes["kind"] == "drums":
        mono = _drums(attributes, n, sample_rate, rng)
    else:
        mono = _SOURCES[attributes["kind"]](attributes, n, sample_rate, rng)
        mono = mono * _envelope(attributes["envelope"], n, sample_rate, rng)
    left, right = PAN_GAINS[attributes["pan"]]
    stereo = np.stack([left * mono, right * mono])
    target = LOUDNESS_DB[attributes["loudness"]] + rng.uniform(-LOUDNESS_JITTER_DB, LOUDNESS_JITTER_DB)
    stereo *= 10.0 ** ((target - loudness_db(stereo, sample_rate)) / 20)
    peak = float(np.max(np.abs(stereo)))
    if peak > PEAK_LIMIT:
        logger.debug("limiting a %s clip by %.2f dB", attributes["kind"], 20 * math.log10(peak / PEAK_LIMIT))
        stereo *= PEAK_LIMIT / peak
    return stereo.astype(np.float32)


# ------------------------------------------------------------------------------------------------------ dataset

def make_clip(seed: int, index: int, max_seconds: float = DEFAULT_MAX_SECONDS,
              style: str = "train") -> tuple[np.ndarray, dict, str]:
    """Clip `index` of the dataset of `seed`: (audio (2, L) float32 at 44.1 kHz, attributes, caption).

    L is uniform in [1.5 s, max_seconds], rounded to the sample. Depends only on (seed, index)."""
    _check_style(style)
    if not max_seconds >= MIN_SECONDS:
        raise ValueError(f"max_seconds must be >= {MIN_SECONDS}, got {max_seconds!r}")
    if int(seed) != seed or seed < 0 or int(index) != index or index < 0:
        raise ValueError(f"seed and index must be non-negative integers, got seed={seed!r}, index={index!r}")
    rng = np.random.default_rng([int(seed), int(index)])
    attributes = sample_attributes(rng)
    n = round(rng.uniform(MIN_SECONDS, max_seconds) * SAMPLE_RATE)
    audio = render(attributes, n / SAMPLE_RATE, rng)
    return audio, attributes, caption_for(attributes, rng, style)


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    from ..checkpoint import atomic_write

    data = np.clip(audio, -1.0, 1.0).T
    atomic_write(path, lambda tmp: sf.write(tmp, data, SAMPLE_RATE, subtype="PCM_16", format="WAV"))


def write_dataset(out_dir: str | Path, n: int, seed: int, max_seconds: float = DEFAULT_MAX_SECONDS,
                  style: str = "train", progress: Callable[[int], object] | None = None) -> Path:
    """Write clips 0..n-1 of `seed` as `out_dir/audio/{index:06d}.wav` (16-bit stereo 44.1 kHz) and
    `out_dir/manifest.jsonl` ({"path", "caption", "seconds", "attributes"} per line); returns `out_dir`.

    Every file is written atomically; the same arguments give byte-identical files. `progress(1)` is called after
    each clip (e.g. a tqdm bar's `update`)."""
    from ..checkpoint import atomic_write

    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    out = Path(out_dir)
    lines = []
    for index in range(int(n)):
        audio, attributes, caption = make_clip(seed, index, max_seconds, style)
        relative = f"audio/{index:06d}.wav"
        _write_wav(out / relative, audio)
        lines.append(json.dumps({"path": relative, "caption": caption, "seconds": audio.shape[1] / SAMPLE_RATE,
                                 "attributes": attributes}))
        if progress is not None:
            progress(1)
    text = "".join(line + "\n" for line in lines)
    atomic_write(out / "manifest.jsonl", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    logger.debug("wrote %d clips to %s", n, out)
    return out


# the captions live in captions.py, which builds on the definitions above
from .captions import (  # noqa: E402, F401
    CAPTION_STYLES,
    CORE_TEMPLATES,
    TEMPLATES,
    _check_style,
    caption_for,
    contradicting_caption,
    nameable_attributes,
    named_training_caption,
    short_prompt,
    subset_caption,
    synonyms,
    training_caption,
)
