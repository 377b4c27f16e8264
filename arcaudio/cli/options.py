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
