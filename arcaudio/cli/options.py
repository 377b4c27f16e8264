"""Options several subcommands share (kept torch-free: parsers are built before anything heavy is imported)."""

from __future__ import annotations

import argparse

SAMPLER_NAMES = ("pingpong", "euler", "dpmpp")  # = sorted keys of arcaudio.sampling.SAMPLERS (tested)


def add_sampler_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLER_NAMES,
                   help="default: pingpong for post-trained models, euler for base flows; all run on the "
                        "reference's log-SNR time grid")


def add_guidance_arguments(p: argparse.ArgumentParser) -> None:
    """--negative-prompt, --cfg-interval, --cfg-rescale (they act only with --cfg-scale != 1)."""
    p.add_argument("--negative-prompt", action="append", metavar="TEXT",
                   help="with --cfg-scale: what to steer away from (once for all prompts, or once per prompt)")
    p.add_argument("--cfg-interval", type=float, nargs=2, metavar=("LO", "HI"), default=(0.0, 1.0),
                   help="apply guidance only at times LO <= t <= HI (t = 1 is noise; default 0 1)")
    p.add_argument("--cfg-rescale", type=float, default=0.0, metavar="PHI",
                   help="CFG rescale in [0, 1] (stable-audio-tools' scale_phi; default 0)")


PRECISION_NAMES = ("auto", "fp32", "bf16", "fp16", "int8", "int8-bf16")  # = arcaudio.precision.CHOICES (tested)


def add_precision_argument(p: argparse.ArgumentParser, several: bool = False) -> None:
    """--precision: one (or, for bench, several) of PRECISION_NAMES or "text_encoder=..,dit=..,decoder=..";
    validated by arcaudio.precision.resolve_precision, whose errors name the bad value and what is valid."""
    p.add_argument("--precision", nargs="+" if several else None, default=["auto"] if several else "auto",
                   metavar="PRECISION",
                   help=f"per component (text encoder, DiT, decoder): {', '.join(PRECISION_NAMES)}, or e.g. "
                        "'text_encoder=bf16,dit=int8,decoder=fp32'. auto (default): the fastest that keeps quality "
                        "on this machine's hardware (int8 DiT on AVX2/VNNI CPUs, bf16 where the CPU or GPU has it)")


# = "auto" + arcaudio.compilation.COMPILE_MODES
COMPILE_NAMES = ("auto", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def add_compile_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", nargs="?", const="auto", choices=COMPILE_NAMES,
                   help="torch.compile the DiT and the decoder (auto: max-autotune with CUDA graphs on a GPU, the "
                        "default mode on a CPU); the first generation compiles (tens of seconds, then cached)")
