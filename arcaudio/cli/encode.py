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

    if args.shard_size < 1 or args.batch_size < 1:
        raise ValueError(f"--shard-size and --batch-size must be >= 1, got {args.shard_size} and {args.batch_size}")
    config = load_config(args.model)  # no weights read yet: manifest errors come first
    dataset = AudioDataset(args.manifest, sample_rate=config.sample_rate, sample_size=config.sample_size,
                           channels=config.autoencoder.io_channels, random_crop=False)
    model = load(args.model, device=args.device, t5=False)
    out_dir = Path(args.out_dir)
    reused = len(completed_shards(out_dir)) if out_dir.is_dir() else 0
    t0 = time.perf_counter()
    with tqdm(total=len(dataset), unit="clip", desc="encoding") as bar:
        encode_dataset(model.autoencoder, dataset, out_dir, shard_size=args.shard_size, batch_size=args.batch_size,
                       device=args.device or "cpu", sample=args.sample, progress=bar.update, model_id=str(args.model),
                       seed=args.seed)
    index = json.loads((out_dir / INDEX_NAME).read_text())
    elapsed = time.perf_counter() - t0
    num_shards = index["num_shards"]
    reused = min(reused, num_shards)
    print(f"encoded {index['num_items']} clip(s) of {index['num_dataset_items']} manifest entries into {out_dir} "
          f"in {elapsed:.1f} s: {num_shards} shard(s), {num_shards - reused} written, {reused} reused; "
          f"latents {index['latent_shape'][0]} x {index['latent_shape'][1]} per clip")
    print(f"skipped {index['skipped_count']} file(s)" + (":" if index["skipped"] else ""))
    for path in index["skipped"]:
        print(f"  {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="pre-encode a dataset manifest to autoencoder latents (resumable)")
    p.add_argument("model", help="preset name, arcaudio checkpoint, or stable-audio-tools folder/file")
    p.add_argument("manifest", help="CSV (path,caption[,seconds]) or JSONL manifest of the audio files")
    p.add_argument("out_dir", help="output folder of latent shards; an interrupted run resumes there")
    p.add_argument("--shard-size", type=int, default=256, help="clips per shard (default 256)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--device", default=None, help="e.g. cuda (default cpu)")
    p.add_argument("--sample", action="store_true", help="store posterior samples instead of posterior means")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples with --sample")
    p.set_defaults(func=cmd_encode)
