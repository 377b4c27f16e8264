"""`arcaudio train`: train an autoencoder, a rectified-flow DiT, or ARC-post-train one; resumable; runs under
torchrun for DDP.

    arcaudio train --stage autoencoder --model tiny --data synth/manifest.jsonl --out runs/ae --steps 2000
    arcaudio encode runs/ae/model.safetensors synth/manifest.jsonl latents/
    arcaudio train --stage flow --model runs/ae/model.safetensors --data latents/ --out runs/flow --steps 5000
    torchrun --nproc_per_node 2 -m arcaudio train ...   # the same command, data-parallel
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..training.config import TrainConfig, apply_overrides


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    data = json.loads(open(args.config).read()) if args.config else TrainConfig().to_dict()
    direct = {"stage": args.stage, "model": args.model, "data": args.data, "steps": args.steps,
              "batch_size": args.batch_size, "seed": args.seed, "precision": args.precision,
              "lora": args.lora, "strategy": args.strategy}
    overrides = [f"{k}={v!r}" for k, v in direct.items() if v is not None] + list(args.set)
    return TrainConfig.from_dict(apply_overrides(data, overrides))


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.runner import resolve_model_config, train

    config = resolve_config(args)
    if args.dry_run:
        model_config = resolve_model_config(config.model, args.model_set)
        print(json.dumps({"train": config.to_dict(),
                          "model": model_config.to_dict() if model_config else f"from checkpoint {config.model}"},
                         indent=2))
        return 0
    summary = train(config, args.out, model_overrides=args.model_set, device=args.device,
                    progress=not args.no_progress)
    print(f"trained {config.stage} to step {summary.steps} (resumed from {summary.resumed_from}) in "
          f"{summary.seconds:.1f} s, {summary.steps_per_second:.2f} steps/s; last: "
          + ", ".join(f"{k} {v:.4g}" for k, v in summary.last_metrics.items()), file=sys.stderr)
    if summary.throughput:
        t = summary.throughput
        print(f"throughput: {t['samples_per_s']:.2f} samples/s"
              + (f", {t['tflops']:.3g} model TFLOP/s" if "tflops" in t else "")
              + (f", MFU {100 * t['mfu']:.1f} %" if "mfu" in t else ""), file=sys.stderr)
    print(f"skipped files: {len(summary.skipped_files)}" + "".join(f"\n  {p}" for p in summary.skipped_files),
          file=sys.stderr)
    print(f"{args.out}/model.safetensors")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun the run is complete here (files written atomically and closed, the process group
        # destroyed). Interpreter teardown then destroys C++ threads of the distributed stack, which aborted a rank
        # now and then ("terminate called without an active exception", SIGABRT after a finished run, seen in CI);
        # leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an autoencoder or a rectified-flow DiT (resumable, torchrun-ready)")
    p.add_argument("--stage", choices=["autoencoder", "flow", "arc"])
    p.add_argument("--model", help="preset, model config JSON, or checkpoint to start from")
    add_run_arguments(p)
    p.set_defaults(func=cmd_train)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `arc`."""
    p.add_argument("--config", help="a TrainConfig JSON file (defaults otherwise)")
    p.add_argument("--data", help="manifest (CSV/JSONL), folder of pre-encoded latents, or tar shards to stream (a "
                                   "folder of .tar, a brace pattern, pipe:COMMAND or a URL; arcaudio pack)")
    p.add_argument("--out", required=False, default="runs/train", help="run folder (resumed if it has a checkpoint)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lora", metavar="rank=16[,alpha=..,dropout=..,targets=to_qkv+ff]",
                   help="flow stage: train LoRA adapters on the DiT only; writes adapter.safetensors and the merged "
                        "model")
    p.add_argument("--precision", choices=["fp32", "bf16"])
    p.add_argument("--strategy", choices=["ddp", "fsdp"],
                   help="under torchrun: ddp (default) replicates the model; fsdp (FSDP2, flow and ARC stages) "
                        "shards its trainable weights, gradients and optimizer state across the processes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a train-config field, e.g. --set optim.lr=3e-4 (repeatable)")
    p.add_argument("--model-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model-config field of a preset, e.g. --model-set dit.depth=6 (repeatable)")
    p.add_argument("--device", help="default: cuda:LOCAL_RANK if available, else cpu")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configs as JSON and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
