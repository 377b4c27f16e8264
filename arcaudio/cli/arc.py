"""`arcaudio arc`: ARC post-training of a pre-trained rectified flow into a few-step generator
(= `arcaudio train --stage arc`; resumable, torchrun-ready).

    arcaudio arc runs/flow/model.safetensors --data latents/ --out runs/arc --steps 150 \\
        --set arc.generator_lr=1e-5 --set arc.discriminator_lr=1e-5 --set arc.discriminator_head_lr=1e-3
    arcaudio generate runs/arc/model.safetensors "a kick drum" --steps 8
"""

from __future__ import annotations

import argparse

from .train import add_run_arguments, cmd_train


def cmd_arc(args: argparse.Namespace) -> int:
    args.stage = "arc"
    return cmd_train(args)


def add_parser(sub) -> None:
    p = sub.add_parser("arc", help="ARC post-training: turn a pre-trained flow into an 8-step generator")
    p.add_argument("model", help="the pre-trained flow: arcaudio checkpoint or stable-audio-tools model folder")
    add_run_arguments(p)
    p.set_defaults(func=cmd_arc)
