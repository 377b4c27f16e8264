"""`arcaudio evaluate`: the paper's metrics for one or more models, as JSON and a Markdown table.

    arcaudio evaluate default --compare default-rf@euler,50,4 --prompts procedural:64 --per-prompt 4 \\
        --embedders stats,clap=models/clap --out runs/eval
    arcaudio evaluate model.safetensors --prompts audiocaps_test.csv --reference audiocaps_wavs/ \\
        --embedders clap=models/clap --per-prompt 1
    torchrun --nproc_per_node 4 -m arcaudio evaluate ...      # prompts sharded across processes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..eval.embedders import get_embedder
    from ..eval.evaluate import (
        ModelSpec,
        differences_table,
        generate_clips,
        load_clips,
        markdown_table,
        read_prompts,
        reference_embeddings,
        score,
    )
    from ..loading import load

    prompts = read_prompts(args.prompts)
    specs = [ModelSpec.parse(s) for s in [args.model, *(args.compare or [])]]
    if args.per_prompt < 1:
        raise ValueError(f"--per-prompt must be >= 1, got {args.per_prompt}")
    embedders = [get_embedder(s.strip(), args.device or "cpu") for s in args.embedders.split(",") if s.strip()]
    if args.steps is not None:
        specs = [s if s.steps is not None else ModelSpec(s.source, s.sampler, args.steps, s.cfg_scale) for s in specs]
    slugs = [s.slug for s in specs]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"two models would share an output folder ({slugs}); give each a distinct path or setting")
    out = Path(args.out)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if world > 1:
        torch.distributed.init_process_group("gloo")
    results, timings = [], {}
    for spec in specs:
        model = load(spec.source, device=args.device, t5=args.t5, precision=args.precision, encoder=False)
        t0 = time.perf_counter()
        made = generate_clips(model, spec, prompts, out / spec.slug, args.per_prompt, seed=args.seed,
                              seconds=args.seconds)
        print(f"arcaudio evaluate: {spec.slug}: {made} clip(s) generated in {time.perf_counter() - t0:.1f} s "
              f"(rank {rank} of {world})", file=sys.stderr)
        timings[spec.slug] = model
    if world > 1:
        torch.distributed.barrier()
        if rank != 0:
            torch.distributed.destroy_process_group()
            return 0
    for spec in specs:
        model = timings[spec.slug]
        folder = out / spec.slug
        clips, rate = load_clips(folder, len(prompts), args.per_prompt)
        per_clip = [v for f in folder.glob("timing_rank*.json") for v in json.loads(f.read_text()).values()]
        window_s = clips[0].shape[-1] / rate
        references = {e.name: reference_embeddings(e, out, args.reference, args.reference_stats,
                                                   args.reference_count, rate, window_s) for e in embedders}
        result = score(spec, model.config.objective, prompts, clips, rate, args.per_prompt, embedders, references,
                       args.k, sum(per_clip) / max(len(per_clip), 1))
        results.append(result)
    table = markdown_table(results)
    if len(results) > 1:
        table += ("\n\nAgainst the first row, paired (the same prompts, seeds and bootstrap resamples: what the models "
                  "share cancels from the noise):\n\n" + differences_table(results))
    report = {"prompts": args.prompts, "n_prompts": len(prompts), "per_prompt": args.per_prompt,
              "embedders": [e.describe() for e in embedders], "k": args.k,
              "results": [r.__dict__ for r in results], "table": table}
    from ..eval.evaluate import _write_json

    _write_json(out / "results.json", report)
    (out / "results.md").write_text(table + "\n")
    print(table)
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0


def add_parser(sub) -> None:
    from .options import add_precision_argument

    p = sub.add_parser("evaluate", help="the paper's metrics (FD, recall/coverage, CCDS, CLAP score, KL, adherence)",
                       description="Generate (resumably) per-prompt clips for each model, embed them, and write "
                                   "OUT/results.json and OUT/results.md, laid out like the paper's table.")
    p.add_argument("model", help="model, optionally with settings: MODEL@SAMPLER,STEPS,CFG")
    p.add_argument("--compare", nargs="+", metavar="MODEL", help="more models (same syntax)")
    p.add_argument("--prompts", required=True, help="a .csv (caption[, file]), a .txt, or procedural:N[:style]")
    p.add_argument("--reference", help="folder of reference audio (FD, recall/coverage); default for procedural "
                                       "prompts: real procedural clips")
    p.add_argument("--reference-stats", help=".npz of precomputed reference embeddings, one array per embedder")
    p.add_argument("--reference-count", type=int, default=256, help="procedural reference clips (default 256)")
    p.add_argument("--embedders", default="stats", help="comma-separated: stats, clap=PATH (default stats)")
    p.add_argument("--per-prompt", type=int, default=4, help="clips per prompt (CCDS needs >= 2; default 4)")
    p.add_argument("--steps", type=int, help="sampling steps for models without @settings")
    p.add_argument("--seconds", type=float, help="clip length (default: the model's window)")
    p.add_argument("--k", type=int, default=5, help="nearest neighbours for recall / coverage (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/evaluate", help="output folder (clips, caches, results)")
    add_precision_argument(p)
    p.add_argument("--t5", help="local T5 folder for models with a pre-trained text encoder")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_evaluate)
