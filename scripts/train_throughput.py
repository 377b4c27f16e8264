"""Training throughput at a model's size: rectified-flow and ARC steps on random latents, with samples/s, the peak
memory, the model TFLOP/s and (on a GPU with a known peak) the MFU; under torchrun, DDP against FSDP.

    .venv/bin/python scripts/train_throughput.py sao-small --device cuda --batch-size 8 --precision bf16
    torchrun --nproc_per_node 8 scripts/train_throughput.py sao-small --device cuda --strategy fsdp --out fsdp.json
    .venv/bin/python scripts/train_throughput.py tiny --steps 4          # a smoke run on a CPU

Random weights train at the speed of real ones. An external T5 (sao-small's) gets a T5-base-sized random stand-in
(arcaudio.bench.bench_model's rule); the autoencoder's encoder is left out (latents come pre-encoded, as in a real
run). --strategy applies to both stages.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from arcaudio.config import T5ArchConfig  # noqa: E402
from arcaudio.loading import build_model, load_config  # noqa: E402
from arcaudio.training.config import TrainConfig  # noqa: E402
from arcaudio.training.distributed import cleanup, init_distributed  # noqa: E402
from arcaudio.training.throughput import Throughput  # noqa: E402

WORDS = "a loud kick drum snare hit rising sweep soft pad warm chord bright noise on the left right".split()


def _model(source: str, device: torch.device):
    config = load_config(source)
    if not config.conditioning.prompt.builtin:
        config.conditioning.prompt.arch = T5ArchConfig(d_model=config.conditioning.cond_dim)
    torch.manual_seed(0)
    return build_model(config.validate(), device="cpu", encoder=False), config


def _batch(config, batch_size: int, device: torch.device, rank: int) -> dict:
    g = torch.Generator().manual_seed(rank)
    captions = [" ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (8,), generator=g))
                for _ in range(batch_size)]
    latents = torch.randn(batch_size, config.dit.io_channels, config.latent_length, generator=g)
    return {"latents": latents.to(device), "caption": captions,
            "seconds_total": torch.full((batch_size,), config.sample_size / config.sample_rate)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(stage_name: str, args, info) -> dict:
    model, config = _model(args.model, info.device)
    strategy = args.strategy
    train = TrainConfig(stage=stage_name, data="random", batch_size=args.batch_size, precision=args.precision,
                        strategy=strategy, steps=args.warmup + args.steps, grad_checkpointing=args.grad_checkpointing)
    train.validate()
    if stage_name == "flow":
        from arcaudio.training.flow_stage import FlowStage

        model.conditioners["prompt"].requires_grad_(True)
        stage = FlowStage(model.train().requires_grad_(True), train, info)
    else:
        from arcaudio.training.arc_stage import ARCStage

        stage = ARCStage(model.train(), train, info)
    if info.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(info.device)
    batch = _batch(config, args.batch_size, info.device, info.rank)
    meter = Throughput(args.batch_size, info.world_size, info.device, args.precision)
    if hasattr(stage, "step_flops"):
        meter.step_flops = stage.step_flops(batch)
    generator = torch.Generator().manual_seed(info.rank)
    t0 = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            _sync(info.device)
            t0 = time.perf_counter()
        stage.train_step(batch, step, generator)
    _sync(info.device)
    steps_per_s = args.steps / (time.perf_counter() - t0)
    return {"stage": stage_name, "strategy": strategy if info.world_size > 1 else "single",
            **meter.figures(steps_per_s), "steps_per_s": steps_per_s, "peak_memory_mb": _peak_mb(info.device),
            "batch_per_process": args.batch_size, "processes": info.world_size, "precision": args.precision}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="preset or config (sao-small, tiny, ...)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=8, help="per process")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--strategy", choices=["ddp", "fsdp"], default="ddp")
    p.add_argument("--stages", default="flow,arc")
    p.add_argument("--steps", type=int, default=20, help="timed steps per stage")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--out", help="write the figures as JSON here (rank 0)")
    args = p.parse_args()
    info = init_distributed(args.device)
    try:
        rows = [measure(name, args, info) for name in args.stages.split(",")]
    finally:
        cleanup(info)
    if info.is_main:
        device = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else "cpu"
        print(f"{args.model} on {info.world_size} x {device}, batch {args.batch_size} per process, {args.precision}")
        for r in rows:
            extra = "".join([f", {r['tflops']:.3g} model TFLOP/s" if "tflops" in r else "",
                             f", MFU {100 * r['mfu']:.1f} %" if "mfu" in r else ""])
            print(f"  {r['stage']:<5} ({r['strategy']}): {r['samples_per_s']:.2f} samples/s, "
                  f"{1000 / r['steps_per_s']:.1f} ms/step{extra}, peak {r['peak_memory_mb']:.0f} MB")
        if args.out:
            Path(args.out).write_text(json.dumps({"device": device, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
