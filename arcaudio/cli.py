"""The `arcaudio` command line: parsing and printing only; every command calls the library.

    arcaudio info sao-small                      # config and parameter counts, built on the meta device
    arcaudio generate tiny "a dog barking" --steps 8 --sampler pingpong --out out/
    arcaudio convert model_dir model.safetensors  # stable-audio-tools -> arcaudio (or --to sao)
    arcaudio demo                                 # what `make demo` runs
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(model) -> dict[str, int]:
    """Parameters per component of a TextToAudioModel (the external pre-trained T5 is not counted)."""
    counts = {
        "dit": _count(model.dit),
        "autoencoder": _count(model.autoencoder),
        "autoencoder.encoder": _count(model.autoencoder.encoder),
        "autoencoder.decoder": _count(model.autoencoder.decoder),
        "conditioners.seconds_total": _count(model.conditioners["seconds_total"]),
    }
    if model.conditioners["prompt"].builtin:
        counts["conditioners.prompt"] = _count(model.conditioners["prompt"])
    counts["total"] = _count(model)  # an external T5 is outside the module registry
    return counts


def cmd_info(args: argparse.Namespace) -> int:
    from .loading import build_model, load_config

    t0 = time.perf_counter()
    config = load_config(args.model)
    model = build_model(config, device="meta")
    counts = parameter_counts(model)
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"config": config.to_dict(), "parameters": counts}, indent=2))
        return 0
    print(config.to_json())
    print()
    print(f"{'component':<30}{'parameters':>14}")
    for name, n in counts.items():
        print(f"{name:<30}{n / 1e6:>12.2f} M")
    prompt = config.conditioning.prompt
    if prompt.arch is None:
        print(f"{'(text encoder)':<30}  external pre-trained T5 {prompt.t5_model_name!r}, loaded from local files, "
              "not counted")
    print(f"\n{config.latent_length} latent frames x {config.dit.io_channels} channels = "
          f"{config.max_seconds:.2f} s at {config.sample_rate} Hz; built on the meta device in {elapsed:.2f} s")
    return 0


def _slug(text: str, limit: int = 48) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug[:limit] or "clip"


def write_clips(clips, prompts, sample_rate: int, out_dir: Path, first_index: int = 0) -> list[Path]:
    """Write (C, L) clips as 16-bit WAVs named `NN_prompt_slug.wav`, atomically; returns their paths."""
    import soundfile as sf

    from .checkpoint import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (clip, prompt) in enumerate(zip(clips, prompts)):
        path = out_dir / f"{first_index + i:02d}_{_slug(prompt)}.wav"
        data = clip.clamp(-1, 1).T.cpu().numpy()  # (C, L) -> (L, C)
        atomic_write(path, lambda tmp, data=data: sf.write(tmp, data, sample_rate, subtype="PCM_16", format="WAV"))
        paths.append(path)
    return paths


def _load(args: argparse.Namespace):
    import torch

    from .loading import load

    dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
    return load(args.model, device=args.device, dtype=dtype, t5=args.t5)


def cmd_generate(args: argparse.Namespace) -> int:
    from .generation import generate

    prompts = list(args.prompt)
    if args.prompt_file:
        prompts += [line.strip() for line in Path(args.prompt_file).read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError("give at least one prompt (positional or --prompt-file)")
    model = _load(args)
    t0 = time.perf_counter()
    clips = generate(model, prompts, seconds=args.seconds, steps=args.steps, sampler=args.sampler,
                     cfg_scale=args.cfg_scale, seed=args.seed)
    elapsed = time.perf_counter() - t0
    for path in write_clips(clips, prompts, model.config.sample_rate, Path(args.out)):
        print(path)
    print(f"{len(clips)} clip(s) in {elapsed:.2f} s", file=sys.stderr)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import save_model, save_sao
    from .loading import load

    model = load(args.src, t5=False)
    out = save_sao(model, args.out) if args.to == "sao" else save_model(model, args.out)
    print(out)
    return 0


DEMO_PROMPTS = ["a warm sine tone at 440 Hz, soft and steady", "pink noise panned to the left",
                "a fast techno drum loop at 140 bpm"]


def cmd_demo(args: argparse.Namespace) -> int:
    from .generation import generate
    from .loading import load

    print("arcaudio demo: the built-in 'tiny' preset. Its weights are RANDOM (no trained default model ships yet), "
          "so the clips are noise-like: this shows the pipeline running end to end, not sound quality.")
    model = load("tiny")
    out = Path(args.out)
    for i, prompt in enumerate(DEMO_PROMPTS):
        t0 = time.perf_counter()
        (clip,) = generate(model, [prompt], steps=8, sampler="pingpong", cfg_scale=1.0, seed=i)
        elapsed = time.perf_counter() - t0
        (path,) = write_clips([clip], [prompt], model.config.sample_rate, out, first_index=i)
        print(f"  {path}  ({clip.shape[-1] / model.config.sample_rate:.2f} s of audio in {elapsed:.2f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arcaudio", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="print a model's config and parameter counts (no weights are read)")
    p.add_argument("model", help="preset name, arcaudio checkpoint, or stable-audio-tools folder/file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

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

    p = sub.add_parser("convert", help="convert between stable-audio-tools and arcaudio checkpoint formats")
    p.add_argument("src", help="checkpoint to read (any accepted format)")
    p.add_argument("out", help="arcaudio .safetensors file, or a folder for --to sao")
    p.add_argument("--to", choices=["arcaudio", "sao"], default="arcaudio")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("demo", help="generate a few clips with the built-in default model")
    p.add_argument("--out", default="demo_out")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"arcaudio {args.command}: error: {err}", file=sys.stderr)
        return 2
