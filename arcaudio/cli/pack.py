"""`arcaudio pack`: a manifest's audio, or pre-encoded latents, as tar shards to stream in training."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def cmd_pack(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.latents import INDEX_NAME as LATENTS_INDEX
    from ..data.tar_shards import INDEX_NAME, pack_latents, pack_manifest

    source = Path(args.source)
    t0 = time.perf_counter()
    if source.is_dir():
        if not (source / LATENTS_INDEX).is_file():
            raise FileNotFoundError(f"{args.source!r} is a folder without {LATENTS_INDEX}: pack a manifest of audio "
                                    "or a folder written by arcaudio encode")
        total = json.loads((source / LATENTS_INDEX).read_text())["num_items"]
        with tqdm(total=total, unit="clip", desc="packing") as bar:
            pack_latents(source, args.out_dir, args.shard_size, progress=bar.update)
    else:
        from ..data.manifest import read_manifest

        total = len(read_manifest(source))
        with tqdm(total=total, unit="file", desc="packing") as bar:
            pack_manifest(source, args.out_dir, args.shard_size, progress=bar.update)
    index = json.loads((Path(args.out_dir) / INDEX_NAME).read_text())
    print(f"packed {index['num_items']} {index['kind']} sample(s) into {len(index['shards'])} shard(s) in "
          f"{args.out_dir} in {time.perf_counter() - t0:.1f} s; train on them with --data {args.out_dir} (or a "
          "brace pattern, pipe: command or URL of the same files)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("pack", help="write a manifest's audio or pre-encoded latents as tar shards (WebDataset "
                                    "layout) to stream in training (resumable)")
    p.add_argument("source", help="a manifest (CSV/JSONL) of audio files, or a folder written by arcaudio encode")
    p.add_argument("out_dir", help="output folder of shard-NNNNNN.tar and shards.json; an interrupted run resumes")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.set_defaults(func=cmd_pack)
