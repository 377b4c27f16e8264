"""`arcaudio generate` and `arcaudio demo`: text -> audio files."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DEMO_PROMPTS = ["a warm sine tone at 440 Hz, soft and steady", "pink noise panned to the left",
                "a fast techno drum loop at 140 bpm"]


def slug(text: str, limit: int = 48) -> str:
    """A safe file-name fragment of a prompt."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:limit] or "clip"


def write_clips(clips, prompts, sample_rate: int, out_dir: Path, first_index: int = 0) -> list[Path]:
    """Write (C, L) clips as 16-bit WAVs named `NN_prompt_slug.wav`; returns their paths."""
    from ..data.audio import write_audio

    return [write_audio(Path(out_dir) / f"{first_index + i:02d}_{slug(p)}.wav", clip, sample_rate)
            for i, (clip, p) in enumerate(zip(clips, prompts))]


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from ..generation import generate
    from ..loading import load

    prompts = list(args.prompt)
    if args.prompt_file:
        prompts += [line.strip() for line in Path(args.prompt_file).read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError("give at least one prompt (positional or --prompt-file)")
    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    model = load(args.model, device=args.device, dtype=dtype, t5=args.t5)
    t0 = time.perf_counter()
    clips = generate(model, prompts, seconds=args.seconds, steps=args.steps, sampler=args.sampler,
                     cfg_scale=args.cfg_scale, seed=args.seed)
    elapsed = time.perf_counter() - t0
    for path in write_clips(clips, prompts, model.config.sample_rate, Path(args.out)):
        print(path)
    print(f"{len(clips)} clip(s) in {elapsed:.2f} s", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..generation import generate
    from ..loading import load

    print("arcaudio demo: the built-in 'tiny' preset. Its weights are RANDOM (no trained default model ships yet), "
          "so the clips are noise-like: this shows the pipeline running end to end, not sound quality.")
    model = load("tiny")
    for i, prompt in enumerate(DEMO_PROMPTS):
        t0 = time.perf_counter()
        (clip,) = generate(model, [prompt], steps=8, sampler="pingpong", cfg_scale=1.0, seed=i)
        elapsed = time.perf_counter() - t0
        (path,) = write_clips([clip], [prompt], model.config.sample_rate, Path(args.out), first_index=i)
        print(f"  {path}  ({clip.shape[-1] / model.config.sample_rate:.2f} s of audio in {elapsed:.2f} s)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="text -> audio files")
    p.add_argument("model", help="preset name, arcaudio checkpoint, or stable-audio-tools folder/file")
    p.add_argument("prompt", nargs="*", help="one or more prompts")
    p.add_argument("--prompt-file", help="a text file with one prompt per line")
    p.add_argument("--seconds", type=float, help="clip length (default: the model's window)")
    p.add_argument("--steps", type=int, help="sampling steps (default: 8 ping-pong, or 50 Euler for a base flow)")
    p.add_argument("--sampler", choices=["pingpong", "euler"])
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance (default 1 for ARC models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--t5", help="local folder of the T5 text encoder (default: look up the config's name locally)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=sorted(DTYPES))
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="generate a few clips with the built-in default model")
    p.add_argument("--out", default="demo_out")
    p.set_defaults(func=cmd_demo)
