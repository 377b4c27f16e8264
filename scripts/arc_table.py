"""The paper's table in miniature, on the procedural set: pre-trained flow vs ARC post-trained models.

    .venv/bin/python scripts/arc_table.py runs/default/flow/model.safetensors runs/default/arc/model.safetensors \
        runs/default/arc_nolc/model.safetensors --prompts 64 --per-prompt 4 --json runs/default/arc_table.json

Rows: RF (50 Euler steps, CFG), RF (8 Euler steps, CFG), ARC (8, 4, 2, 1 ping-pong steps), ARC without L_C (8).
Columns: probe accuracy (mean over attributes, chance beside it), Frechet distance to real clips and conditional
diversity on the fixed stats embedding (arcaudio/eval/embedders/stats.py), wall time per clip on this machine; each
figure +- its sampling noise (bootstrap over prompts, arcaudio/eval/report.py).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from arcaudio.eval.report import evaluate_quality, reference_embeddings  # noqa: E402
from arcaudio.loading import load  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("flow")
    p.add_argument("arc")
    p.add_argument("arc_no_contrastive", nargs="?")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--per-prompt", type=int, default=4)
    p.add_argument("--style", default="paraphrase", choices=["heldout", "paraphrase", "train", "short"])
    p.add_argument("--cfg-scale", type=float, default=4.0)
    p.add_argument("--reference", type=int, default=256, help="real clips for the Frechet distance")
    p.add_argument("--json")
    args = p.parse_args()

    flow = load(args.flow)
    ref = reference_embeddings(args.reference, flow.config.sample_rate, flow.config.sample_size)
    common = dict(n_prompts=args.prompts, per_prompt=args.per_prompt, style=args.style, reference=ref)
    rows = [evaluate_quality(flow, "RF", sampler="euler", steps=50, cfg_scale=args.cfg_scale, **common),
            evaluate_quality(flow, "RF", sampler="euler", steps=8, cfg_scale=args.cfg_scale, **common)]
    arc = load(args.arc)
    rows += [evaluate_quality(arc, "ARC", sampler="pingpong", steps=s, cfg_scale=1.0, **common) for s in (8, 4, 2, 1)]
    if args.arc_no_contrastive:
        rows.append(evaluate_quality(load(args.arc_no_contrastive), "ARC w/o L_C", sampler="pingpong", steps=8,
                                     cfg_scale=1.0, **common))
    header = "| model | sampler | steps | CFG | probe acc. (chance) | FD (stats) | diversity | s / clip |"
    print(header)
    print("|---" * 8 + "|")
    for r in rows:
        d, noise = r.row(), r.noise or {}
        print(f"| {d['model']} | {d['sampler']} | {d['steps']} | {d['cfg']:g} | {d['adherence']:.3f} "
              f"+- {noise.get('adherence', 0):.3f} ({d['chance']:.3f}) | {d['fd_stats']:.1f} "
              f"+- {noise.get('fd_stats', 0):.1f} | {d['diversity']:.3f} +- {noise.get('diversity', 0):.3f} "
              f"| {d['s_per_clip']:.3f} |")
    print("\nper attribute:")
    names = list(rows[0].adherence.accuracy)
    print("| row | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print("| chance | " + " | ".join(f"{rows[0].adherence.chance[n]:.2f}" for n in names) + " |")
    for r in rows:
        print(f"| {r.name} {r.sampler} {r.steps} | " + " | ".join(f"{r.adherence.accuracy[n]:.2f}" for n in names)
              + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.to_dict() for r in rows], f, indent=2)


if __name__ == "__main__":
    main()
