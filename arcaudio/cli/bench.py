"""`arcaudio bench`: time text encoder, DiT steps, decoder and total for a preset or checkpoint config."""

from __future__ import annotations

import argparse
import json


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from ..bench import bench_model, benchmark

    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for dtype in args.dtype:
        model = bench_model(args.model, device=args.device, dtype=dtype)
        result = benchmark(model, name=args.model, batch=args.batch, seconds=args.seconds, steps=args.steps,
                           sampler=args.sampler, cfg_scale=args.cfg_scale, repeats=args.repeats, warmup=args.warmup)
        print(result.table(), flush=True)
        results.append(result.as_dict())
        del model
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time each stage of generation (random weights are fine)",
                       description="Time the text encoder, each DiT step, the decoder and the total, as medians "
                                   "over repeats after warm-up, with the real-time factor and peak memory.")
    p.add_argument("model", nargs="?", default="sao-small", help="preset or checkpoint (its config only)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "bf16", "int8"],
                   help="int8: the DiT's linear layers dynamically quantised (CPU)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, help="default: the model's window")
    p.add_argument("--steps", type=int)
    p.add_argument("--sampler", choices=["pingpong", "euler"])
    p.add_argument("--cfg-scale", type=float)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(func=cmd_bench)
