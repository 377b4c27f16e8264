"""`arcaudio synth`: write the procedural, labelled dataset (WAVs + manifest.jsonl)."""

from __future__ import annotations

import argparse
import time


def cmd_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..procedural.synth import write_dataset

    t0 = time.perf_counter()
    with tqdm(total=args.n, unit="clip", disable=args.n == 0) as bar:
        out = write_dataset(args.out_dir, args.n, args.seed, max_seconds=args.max_seconds, style=args.style,
                            progress=bar.update)
    print(f"wrote {args.n} clip(s) and {out / 'manifest.jsonl'} to {out} in {time.perf_counter() - t0:.1f} s")
    return 0


def add_parser(sub) -> None:
    from ..procedural.synth import CAPTION_STYLES, DEFAULT_MAX_SECONDS

    p = sub.add_parser("synth", help="write the procedural, labelled dataset (audio/*.wav + manifest.jsonl)")
    p.add_argument("out_dir", help="output folder")
    p.add_argument("-n", type=int, required=True, help="number of clips")
    p.add_argument("--seed", type=int, required=True, help="dataset seed (clip i depends only on seed and i)")
    p.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                   help=f"longest clip (default {DEFAULT_MAX_SECONDS:.3f}); lengths are uniform from 1.5 s")
    p.add_argument("--style", choices=CAPTION_STYLES, default="train",
                   help="caption phrasing: train, or heldout (unseen templates and synonyms)")
    p.set_defaults(func=cmd_synth)
