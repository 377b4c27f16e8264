"""The creative controls measured on a model (default: the built-in one): beat-aligned loops, voice-to-audio and
style transfer, each as a function of the guide / strength, with the measures of arcaudio.eval.timing and the
probes of arcaudio.procedural.probes.

    .venv/bin/python scripts/creative_report.py [--model default] [--seeds 8] [--sao-small] [--json F]

1. Loops at 80, 100, 120 and 140 bpm (4 beats, 3 at 80 where 4 do not fit the 2.97 s window), "a drum loop",
   without a guide and from a drum or click guide at several strengths: the share of output onsets within 20 ms
   of the eighth-note grid, the tempo probe's accuracy, the kind probe reading drums, and the loop played twice:
   the level step and sample jump at the joint.
2. Voice-to-audio on synthesised voices (beatbox, humming, a shouted rhythm; espeak-ng is not used), three
   prompts, strengths 0.3-0.9, three pre-processings: the loudness-contour correlation and onset F1 between voice
   and output, next to the output's adherence (its kind as the prompt names it).
3. Style transfer of procedural loops (drums, plucked tones) to other kinds: onset F1 against the input and the
   kind probe, against strength.
4. --sao-small: the time of one loop and one voice-to-audio clip at Stable Audio Open Small's size (random
   weights, `auto` precision; timing only).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from arcaudio.creative.loops import TAIL_S, generate_loop
from arcaudio.creative.voice import VoicePrep, voice_to_audio
from arcaudio.eval.timing import contour_correlation, grid_share, loop_joint_step_db, onset_agreement, onset_times
from arcaudio.loading import load
from arcaudio.procedural.probes import probe_kind, probe_tempo
from arcaudio.procedural.synth import render

SR = 44100
PROMPT_KINDS = {"a drum loop": "drums", "white noise": "noise", "a sine tone, steady": "tone", "a chord": "chord"}
PREPS = {"none": None, "highpass+normalise": VoicePrep(), "+onset emphasis": VoicePrep(onset_emphasis=1.0)}


def synthetic_voice(kind: str, seconds: float, seed: int) -> torch.Tensor:
    """A voice-like recording (1, L) at 44.1 kHz: `beatbox` (kick-like "b" thumps and "ts" hisses at irregular
    times), `humming` (a 110-220 Hz harmonic hum with a gliding pitch, in syllables), `shouted` (formant-filtered
    buzz bursts with fast attacks). Onsets are irregular (not on any grid) so that following them is measurable."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    t = np.arange(n) / SR
    out = np.zeros(n)
    starts = np.cumsum(rng.uniform(0.18, 0.45, size=16))
    starts = starts[starts < seconds - 0.15]
    for i, s in enumerate(starts):
        at = round(s * SR)
        length = round(rng.uniform(0.08, 0.2) * SR)
        tt = np.arange(min(length, n - at)) / SR
        if kind == "beatbox":
            if i % 2 == 0:
                sound = np.sin(2 * np.pi * (60 + 60 * np.exp(-tt / 0.02)) * tt) * np.exp(-tt / 0.06)
            else:
                sound = np.diff(rng.standard_normal(tt.size + 1)) * np.exp(-tt / 0.03) * 0.5
        elif kind == "humming":
            f0 = rng.uniform(110, 220) * (1 + 0.1 * tt / max(tt[-1], 1e-3))
            phase = 2 * np.pi * np.cumsum(f0) / SR
            sound = sum(np.sin(k * phase) / k for k in range(1, 6)) * np.minimum(tt / 0.02, 1) * np.exp(-tt / 0.15)
        else:
            f0 = rng.uniform(150, 300)
            buzz = np.sign(np.sin(2 * np.pi * f0 * tt)) * 0.3
            formant = np.sin(2 * np.pi * 800 * tt)
            sound = buzz * (0.6 + 0.4 * formant) * np.minimum(tt / 0.005, 1) * np.exp(-tt / 0.08)
        out[at:at + sound.size] += sound * rng.uniform(0.5, 1.0)
    out += 0.002 * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 40 * t)  # room noise and handling rumble
    return torch.from_numpy((out / np.abs(out).max() * 0.5)[None].astype(np.float32))


def mean(values) -> float:
    values = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return float(statistics.mean(values)) if values else float("nan")


def loops(model, seeds: int) -> list[dict]:
    rows = []
    conditions = [("none", None, 1.0)] + [("drums", "drums", s) for s in (0.2, 0.3, 0.5, 0.7)] + [
        ("click", "click", 0.3)]
    for bpm in (80, 100, 120, 140):
        beats = 4 if 4 * 60 / bpm + TAIL_S <= model.config.max_seconds else 3
        for name, guide, strength in conditions:
            shares, tempo_hits, drums, steps_db, typical_db, jumps = [], [], [], [], [], []
            for seed in range(seeds):
                loop = generate_loop(model, "a drum loop", bpm, beats=beats, seed=seed, guide=guide,
                                     strength=strength)
                audio = loop.audio.cpu().numpy()
                shares.append(grid_share(onset_times(audio, SR), bpm))
                tempo_hits.append(probe_tempo(audio, SR) == bpm)
                drums.append(probe_kind(audio, SR) == "drums")
                joint = loop_joint_step_db(audio, SR)
                steps_db.append(joint["level_step_db"])
                typical_db.append(joint["typical_step_db"])
                jumps.append(joint["jump"])
            rows.append({"bpm": bpm, "beats": beats, "guide": name, "strength": strength,
                         "grid_share": mean(shares), "tempo_accuracy": mean(tempo_hits), "kind_drums": mean(drums),
                         "joint_level_step_db_max": max(steps_db), "joint_level_step_db_median": mean(steps_db),
                         "inside_step_db_median": mean(typical_db),
                         "joints_no_more_abrupt_than_inside": mean([a <= b for a, b in zip(steps_db, typical_db)]),
                         "joint_jump_max": max(jumps)})
            print(f"  loops {bpm} bpm {name:6s} s={strength:.1f}: grid {rows[-1]['grid_share']:.2f} tempo "
                  f"{rows[-1]['tempo_accuracy']:.2f} drums {rows[-1]['kind_drums']:.2f} joint step "
                  f"{rows[-1]['joint_level_step_db_median']:.1f} dB (inside {rows[-1]['inside_step_db_median']:.1f}, "
                  f"clean {rows[-1]['joints_no_more_abrupt_than_inside']:.2f}) jump max "
                  f"{rows[-1]['joint_jump_max']:.2f}",
                  flush=True)
    return rows


def voices(model, seeds: int) -> list[dict]:
    rows = []
    prompts = ["a drum loop", "white noise", "a sine tone, steady"]
    takes = [(kind, seed, synthetic_voice(kind, 2.5, seed)) for kind in ("beatbox", "humming", "shouted")
             for seed in range(seeds)]
    for prep_name, prep in PREPS.items():
        for strength in (0.3, 0.5, 0.7, 0.9):
            contour, f1, adherent = [], [], []
            for _, seed, voice in takes:
                voice_onsets = onset_times(voice, SR)
                for p, prompt in enumerate(prompts):
                    (clip,) = voice_to_audio(model, voice, SR, prompt, strength=strength, prep=prep, seed=seed + p)
                    out = clip.cpu().numpy()
                    contour.append(contour_correlation(voice.numpy(), out, SR))
                    f1.append(onset_agreement(onset_times(out, SR), voice_onsets)["f1"])
                    adherent.append(probe_kind(out, SR) == PROMPT_KINDS[prompt])
            rows.append({"prep": prep_name, "strength": strength, "contour_correlation": mean(contour),
                         "onset_f1": mean(f1), "adherence_kind": mean(adherent)})
            print(f"  voice {prep_name:18s} s={strength:.1f}: contour r {rows[-1]['contour_correlation']:.2f} onset F1 "
                  f"{rows[-1]['onset_f1']:.2f} kind as prompted {rows[-1]['adherence_kind']:.2f}", flush=True)
    return rows


def style_transfer(model, seeds: int) -> list[dict]:
    rows = []
    sources = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        drums = {"kind": "drums", "tempo": 120, "pan": "center", "loudness": "loud", "envelope": "percussive"}
        sources.append(("drums", torch.from_numpy(render(drums, 2.5, rng))))
        tone = {"kind": "tone", "pitch": "A3", "waveform": "sawtooth", "envelope": "plucked", "pan": "center",
                "loudness": "loud"}
        clip = torch.zeros(2, round(2.5 * SR))  # plucked notes at irregular times
        for start in (0.1, 0.6, 0.85, 1.5, 2.0):
            at = round(start * SR)
            piece = torch.from_numpy(render(tone, 0.4, rng))[:, : clip.shape[-1] - at]
            clip[:, at:at + piece.shape[-1]] += piece
        sources.append(("plucks", clip))
    targets = {"drums": ["white noise", "a sine tone, steady", "a chord"], "plucks": ["a drum loop", "white noise"]}
    for strength in (0.3, 0.5, 0.7, 0.9):
        for source in ("drums", "plucks"):
            f1, kind_ok = [], []
            for i, (_, clip) in enumerate(c for c in sources if c[0] == source):
                source_onsets = onset_times(clip.numpy(), SR)
                for prompt in targets[source]:
                    (out,) = voice_to_audio(model, clip, SR, prompt, strength=strength, prep=None, seed=i)
                    f1.append(onset_agreement(onset_times(out.cpu().numpy(), SR), source_onsets)["f1"])
                    kind_ok.append(probe_kind(out.cpu().numpy(), SR) == PROMPT_KINDS[prompt])
            rows.append({"source": source, "strength": strength, "onset_f1": mean(f1),
                         "kind_as_prompted": mean(kind_ok)})
            print(f"  style {source:6s} s={strength:.1f}: onset F1 {rows[-1]['onset_f1']:.2f} kind as prompted "
                  f"{rows[-1]['kind_as_prompted']:.2f}", flush=True)
    return rows


def sao_small_timing() -> dict:
    from arcaudio.bench import bench_model
    from arcaudio.precision import precision_of

    model = bench_model("sao-small", precision="auto")
    model.autoencoder.encoder = load_encoder_like(model)
    generate_loop(model, "a drum loop", 120, bars=1, steps=2)  # warm-up
    t0 = time.perf_counter()
    generate_loop(model, "a drum loop", 120, bars=2, guide="drums", strength=0.7)
    loop_s = time.perf_counter() - t0
    voice = synthetic_voice("beatbox", 4.0, 0)
    t0 = time.perf_counter()
    voice_to_audio(model, voice, SR, "a drum loop", strength=0.6)
    return {"loop_2_bars_120bpm_s": loop_s, "voice_4s_s": time.perf_counter() - t0,
            "precision": str(precision_of(model))}


def load_encoder_like(model):
    """A random encoder of the model's autoencoder (bench models are built without one)."""
    from arcaudio.models.autoencoder import AudioAutoencoder

    return AudioAutoencoder(model.config.autoencoder).encoder.eval().requires_grad_(False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--sao-small", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.manual_seed(0)
    model = load(args.model, precision="auto")
    report = {"model": args.model}
    print("loops", flush=True)
    report["loops"] = loops(model, args.seeds)
    print("voice-to-audio", flush=True)
    report["voice"] = voices(model, max(2, args.seeds // 4))
    print("style transfer", flush=True)
    report["style_transfer"] = style_transfer(model, max(2, args.seeds // 4))
    if args.sao_small:
        report["sao_small"] = sao_small_timing()
        print(f"sao-small: {report['sao_small']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
