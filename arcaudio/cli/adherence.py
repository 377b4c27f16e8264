"""`arcaudio adherence`: prompt adherence on procedural-set captions, read back with the analytic probes.

    arcaudio adherence runs/flow/model.safetensors --n 100 --steps 50 --sampler euler --cfg-scale 4
    arcaudio adherence runs/flow/model.safetensors --style short          # "a sine note", "plucked A4", ...
    arcaudio adherence default --prompts-file scripts/prompts/outside.jsonl  # your own prompts, with what they ask
    arcaudio adherence runs/ae/model.safetensors --reconstruction --n 200   # the autoencoder's ceiling
    arcaudio adherence default --n 256 --seed 0 1000 --confusion colour     # two noise draws; what pink came out as
"""

from __future__ import annotations

import argparse
import json

from .options import add_sampler_argument


def cmd_adherence(args: argparse.Namespace) -> int:
    from ..eval.adherence import (
        adherence_prompts,
        combine,
        evaluate_adherence,
        evaluate_reconstruction,
        prompts_from_file,
    )
    from ..loading import load
    from ..procedural.synth import ATTRIBUTE_VALUES

    unknown = [name for name in args.confusion or [] if name not in ATTRIBUTE_VALUES]
    if unknown:
        raise SystemExit(f"error: --confusion {' '.join(unknown)}: not an attribute; "
                         f"choose from {', '.join(ATTRIBUTE_VALUES)}")
    model = load(args.model, device=args.device, t5=args.t5)
    seeds = ", ".join(map(str, args.seed))
    if args.reconstruction:
        report = combine([evaluate_reconstruction(model, args.n, seed=s, batch_size=args.batch_size)
                          for s in args.seed])
        what = f"autoencoder round trip of {args.n} procedural clips, clip seed {seeds}"
    else:
        if args.prompts_file:
            prompts = prompts_from_file(args.prompts_file)
        else:
            prompts = adherence_prompts(args.n, seed=args.prompt_seed, style=args.style)
        report = combine([evaluate_adherence(model, prompts, steps=args.steps, sampler=args.sampler,
                                             cfg_scale=args.cfg_scale, seed=s, batch_size=args.batch_size)
                          for s in args.seed])
        source = f"{len(prompts)} prompts of {args.prompts_file}" if args.prompts_file else \
            f"{args.n} {args.style} prompts"
        what = (f"{source}, sampler {args.sampler or 'default'}, steps {args.steps or 'default'}, "
                f"cfg {args.cfg_scale if args.cfg_scale is not None else 'default'}, generation seed {seeds}, "
                f"batch size {args.batch_size}")
    if args.json:
        print(json.dumps({"what": what, "seeds": args.seed, **report.to_dict()}, indent=2))
        return 0
    print(f"{what}:\n{report.table()}\n{report.seconds_per_clip:.3f} s per clip")
    for name in args.confusion or []:
        if name in report.confusion:
            print(f"\n{report.confusion_table(name)}")
        else:
            print(f"\n{name}: no clip was scored on it")
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
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="generation seed; several: the same prompts drawn again with each, pooled in one report "
                        "(each batch's noise follows seed + its first prompt's index, so --batch-size matters)")
    p.add_argument("--prompt-seed", type=int, default=1234, help="which prompts")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--reconstruction", action="store_true", help="score autoencoder round trips instead")
    p.add_argument("--t5", help="local T5 folder for models with a pre-trained text encoder")
    p.add_argument("--device")
    p.add_argument("--confusion", nargs="+", metavar="ATTRIBUTE",
                   help="also print, per attribute named, which class the probe read against the class asked for")
    p.add_argument("--json", action="store_true", help="figures as JSON, confusion of every attribute included")
    p.set_defaults(func=cmd_adherence)
