"""`arcaudio adherence`: prompt adherence on procedural-set captions, read back with the analytic probes.

    arcaudio adherence runs/flow/model.safetensors --n 100 --steps 50 --sampler euler --cfg-scale 4
    arcaudio adherence runs/flow/model.safetensors --style short          # "a sine note", "plucked A4", ...
    arcaudio adherence default --prompts-file scripts/prompts/outside.jsonl  # your own prompts, with what they ask
    arcaudio adherence runs/ae/model.safetensors --reconstruction --n 200   # the autoencoder's ceiling
"""

from __future__ import annotations

import argparse
import json

from .options import add_sampler_argument


def cmd_adherence(args: argparse.Namespace) -> int:
    from ..eval.adherence import adherence_prompts, evaluate_adherence, evaluate_reconstruction, prompts_from_file
    from ..loading import load

    model = load(args.model, device=args.device, t5=args.t5)
    if args.reconstruction:
        report = evaluate_reconstruction(model, args.n, seed=args.seed, batch_size=args.batch_size)
        what = f"autoencoder round trip of {args.n} procedural clips"
    else:
        if args.prompts_file:
            prompts = prompts_from_file(args.prompts_file)
        else:
            prompts = adherence_prompts(args.n, seed=args.prompt_seed, style=args.style)
        report = evaluate_adherence(model, prompts, steps=args.steps, sampler=args.sampler, cfg_scale=args.cfg_scale,
                                    seed=args.seed, batch_size=args.batch_size)
        source = f"{len(prompts)} prompts of {args.prompts_file}" if args.prompts_file else \
            f"{args.n} {args.style} prompts"
        what = (f"{source}, sampler {args.sampler or 'default'}, steps {args.steps or 'default'}, "
                f"cfg {args.cfg_scale if args.cfg_scale is not None else 'default'}")
    if args.json:
        print(json.dumps({"what": what, "accuracy": report.accuracy, "chance": report.chance,
                          "counts": report.counts, "mean_accuracy": report.mean_accuracy,
                          "mean_chance": report.mean_chance, "seconds_per_clip": report.seconds_per_clip}, indent=2))
    else:
        print(f"{what}:\n{report.table()}\n{report.seconds_per_clip:.3f} s per clip")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("adherence", help="probe-based prompt adherence on procedural-set captions")
    p.add_argument("model", help="preset, arcaudio checkpoint, or stable-audio-tools model")
    p.add_argument("--n", type=int, default=100, help="number of prompts (clips)")
    p.add_argument("--style", choices=["train", "paraphrase", "heldout", "short"], default="heldout",
                   help="caption phrasing: train, paraphrase (held-out structures, training words), heldout (held-out "
                        "structures and words), or short (1-3 attributes in training words, scored on those only)")
    p.add_argument("--prompts-file", help="JSON lines {\"prompt\": ..., \"attributes\": {name: class}}: your own "
                                           "prompts, each scored on the attributes it lists (replaces --n/--style)")
    p.add_argument("--steps", type=int)
    add_sampler_argument(p)
    p.add_argument("--cfg-scale", type=float)
    p.add_argument("--seed", type=int, default=0, help="generation seed")
    p.add_argument("--prompt-seed", type=int, default=1234, help="which prompts")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--reconstruction", action="store_true", help="score autoencoder round trips instead")
    p.add_argument("--t5", help="local T5 folder for models with a pre-trained text encoder")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_adherence)
