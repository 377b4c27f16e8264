"""The paper's table in miniature, on the procedural set: a pre-trained flow against its ARC post-training, as one
call of `arcaudio evaluate`.

    .venv/bin/python scripts/arc_table.py runs/default/flow/model.safetensors runs/default/arc/model.safetensors \
        runs/default/arc_nolc/model.safetensors --prompts 64 --per-prompt 4 --out runs/default/arc_table

Rows: RF (50 Euler steps, CFG), RF (8 Euler steps, CFG), ARC (8, 4, 2, 1 ping-pong steps), ARC without L_C (8).
Columns (`arcaudio evaluate`): Frechet distance, recall / coverage and CCDS on each embedder (default: the log-mel
statistics embedding; add `--embedders stats,clap=PATH`), probe adherence (mean over attributes), seconds per clip;
each figure +- its sampling noise (bootstrap over prompts). Written to OUT/results.md and OUT/results.json;
resumable like every `arcaudio evaluate` run.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from arcaudio.cli import main as arcaudio  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("flow")
    p.add_argument("arc")
    p.add_argument("arc_no_contrastive", nargs="?")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--per-prompt", type=int, default=4)
    p.add_argument("--style", default="paraphrase", choices=["heldout", "paraphrase", "train", "short"])
    p.add_argument("--cfg-scale", type=float, default=4.0)
    p.add_argument("--reference", type=int, default=256, help="real procedural clips for FD and recall/coverage")
    p.add_argument("--embedders", default="stats")
    p.add_argument("--out", default="runs/arc_table")
    args = p.parse_args()
    rows = [f"{args.flow}@euler,50,{args.cfg_scale:g}", f"{args.flow}@euler,8,{args.cfg_scale:g}",
            *(f"{args.arc}@pingpong,{steps},1" for steps in (8, 4, 2, 1))]
    if args.arc_no_contrastive:
        rows.append(f"{args.arc_no_contrastive}@pingpong,8,1")
    prompts = f"procedural:{args.prompts}:{args.style}"
    return arcaudio(["evaluate", rows[0], "--compare", *rows[1:], "--prompts", prompts, "--per-prompt",
                     str(args.per_prompt), "--embedders", args.embedders, "--reference-count", str(args.reference),
                     "--out", args.out])


if __name__ == "__main__":
    sys.exit(main())
