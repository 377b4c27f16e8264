"""`arcaudio encode`: pre-encode a manifest's audio to autoencoder latents, in resumable shards."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def cmd_encode(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.dataset import AudioDataset
    from ..data.latents import INDEX_NAME, completed_shards, encode_dataset
    from ..loading import load, load_config
    from ..training.distributed import cleanup, init_distributed

    if args.shard_size < 1 or args.batch_size < 1:
        raise ValueError(f"--shard-size and --batch-size must be >= 1, got {args.shard_size} and {args.batch_size}")
    windows = parse_windows(args.windows)
    if args.hop_seconds is not None and not args.hop_seconds > 0:
        raise ValueError(f"--hop-seconds must be > 0, got {args.hop_seconds}")
    config = load_config(args.model)  # no weights read yet: manifest errors come first
    dataset = AudioDataset(args.manifest, sample_rate=config.sample_rate, sample_size=config.sample_size,
                           channels=config.autoencoder.io_channels, random_crop=False)
    hop = None if args.hop_seconds is None else max(1, round(args.hop_seconds * config.sample_rate))
    info = init_distributed(args.device or "cpu")  # under torchrun: this process's share of the shards
    try:
        model = load(args.model, device=args.device, t5=False)
        out_dir = Path(args.out_dir)
        reused = len(completed_shards(out_dir)) if out_dir.is_dir() else 0
        t0 = time.perf_counter()
        num_shards = -(-len(dataset) // args.shard_size)
        mine = sum(min(len(dataset), (k + 1) * args.shard_size) - k * args.shard_size
                   for k in range(info.rank, num_shards, info.world_size))
        with tqdm(total=mine, unit="file", desc="encoding", disable=not info.is_main) as bar:
            encode_dataset(model.autoencoder, dataset, out_dir, shard_size=args.shard_size,
                           batch_size=args.batch_size, device=args.device or "cpu", sample=args.sample,
                           progress=bar.update, model_id=str(args.model), seed=args.seed, windows=windows, hop=hop,
                           rank=info.rank, world_size=info.world_size)
    finally:
        cleanup(info)
    if not info.is_main:
        return 0
    index = json.loads((out_dir / INDEX_NAME).read_text())
    elapsed = time.perf_counter() - t0
    num_shards = index["num_shards"]
    reused = min(reused, num_shards)
    processes = f" by {info.world_size} processes" if info.world_size > 1 else ""
    print(f"encoded {index['num_items']} clip(s) from {index['num_dataset_items']} manifest entries into {out_dir} "
          f"in {elapsed:.1f} s{processes}: {num_shards} shard(s), {num_shards - reused} written, {reused} reused; "
          f"latents {index['latent_shape'][0]} x {index['latent_shape'][1]} per clip")
    print(f"skipped {index['skipped_count']} file(s)" + (":" if index["skipped"] else ""))
    for path in index["skipped"]:
        print(f"  {path}")
    return 0


def parse_windows(text: str) -> int | None:
    """--windows: 'all' -> None (every window of each file), a positive integer -> that many per file."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--windows must be 'all' or a positive number of windows per file, got {text!r}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="pre-encode a dataset manifest to autoencoder latents (resumable; runs "
                                      "under torchrun, each process encoding its share of the shards)")
    p.add_argument("model", help="preset name, arcaudio checkpoint, or stable-audio-tools folder/file")
    p.add_argument("manifest", help="CSV (path,caption[,seconds]) or JSONL manifest of the audio files")
    p.add_argument("out_dir", help="output folder of latent shards; an interrupted run resumes there")
    p.add_argument("--shard-size", type=int, default=256, help="manifest entries (files) per shard (default 256)")
    p.add_argument("--windows", default="all",
                   help="windows per file: 'all' (default: a long recording contributes all of its audio, each "
                        "window with its seconds_start) or N, evenly spread (1: the beginning only)")
    p.add_argument("--hop-seconds", type=float, default=None,
                   help="seconds between window starts (default: the model's window length, side by side)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--device", default=None, help="e.g. cuda (default cpu)")
    p.add_argument("--sample", action="store_true", help="store posterior samples instead of posterior means")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples with --sample")
    p.set_defaults(func=cmd_encode)
