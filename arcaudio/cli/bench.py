"""`arcaudio bench`: time text encoder, DiT steps, decoder and total for a preset or checkpoint config."""

from __future__ import annotations

import argparse
import json
import sys

from .options import add_compile_argument, add_precision_argument, add_sampler_argument


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from ..bench import bench_model, benchmark, benchmark_captured
    from ..precision import hardware

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.agreement:
        return _agreement(args)
    results = []
    print(f"arcaudio bench: {hardware(args.device).describe()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)
    if args.cuda_graph and torch.device(args.device).type != "cuda":
        raise SystemExit(f"arcaudio bench: --cuda-graph needs a CUDA device, got --device {args.device}")
    if args.cuda_graph and args.decode_chunk:
        raise SystemExit("arcaudio bench: --cuda-graph decodes whole clips; leave out --decode-chunk")
    for precision in args.precision:
        model = bench_model(args.model, device=args.device, precision=precision)
        if args.compile:
            from ..compilation import compile_model

            mode = None if args.compile == "auto" else args.compile
            compile_model(model, "default" if args.cuda_graph and mode is None else mode)  # graphs: captured here
        settings = dict(name=args.model, batch=args.batch, seconds=args.seconds, steps=args.steps,
                        sampler=args.sampler, cfg_scale=args.cfg_scale, repeats=args.repeats, warmup=args.warmup)
        if args.cuda_graph:
            result = benchmark_captured(model, noise=args.noise, **settings)
        else:
            result = benchmark(model, decode_chunk=args.decode_chunk, **settings)
        print(result.table(), flush=True)
        results.append({**result.as_dict(), "asked": precision})
        del model
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from ..bench import bench_model, fill_zero_weights, precision_agreement
    from ..config import PRESETS
    from ..loading import load

    # a preset has no weights: random ones, its zero-initialised layers filled too (else a fresh DiT's blocks are
    # identities and its int8 layers change nothing); a checkpoint is compared on its own trained weights
    model = (fill_zero_weights(bench_model(args.model, device=args.device)) if args.model in PRESETS
             else load(args.model, device=args.device, t5=args.t5, encoder=False))
    results = precision_agreement(model, args.precision, seconds=args.seconds, steps=args.steps,
                                  sampler=args.sampler)
    for precision, result in zip(args.precision, results):
        result["asked"] = precision
        print(f"{args.model}: {precision} ({result['precision']}) against fp32, same seeds, {result['clips']} clips: "
              f"latent cosine {result['latent_cosine']:.5f} (min {result['latent_cosine_min']:.5f}), audio SNR "
              f"{result['audio_snr_db']:.1f} dB (min {result['audio_snr_db_min']:.1f} dB), spectrogram SNR "
              f"{result['spectrogram_snr_db']:.1f} dB (min {result['spectrogram_snr_db_min']:.1f} dB)", flush=True)
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
    add_precision_argument(p, several=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, help="default: the model's window")
    p.add_argument("--steps", type=int)
    add_sampler_argument(p)
    p.add_argument("--cfg-scale", type=float)
    p.add_argument("--decode-chunk", type=int, help="decode this many latent frames at a time (less memory)")
    add_compile_argument(p)
    p.add_argument("--cuda-graph", action="store_true",
                   help="captured generation (CUDA only): text encoder, sampling loop and decoder recorded once as "
                        "CUDA graphs and replayed; the capture's time is reported apart")
    p.add_argument("--noise", choices=["host", "device"], default="host",
                   help="with --cuda-graph: draw the noise on the host (seed for seed the clips of `generate`; "
                        "default) or on the device (no host work, other clips)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--agreement", action="store_true",
                   help="instead of timing: compare each --precision with fp32 outputs on the same seeds (latent "
                        "cosine, audio and spectrogram SNR); a checkpoint is compared on its trained weights, a "
                        "preset on random ones")
    p.add_argument("--t5", help="local T5 folder, for --agreement on a checkpoint with an external T5")
    p.add_argument("--json", help="also write the results here")
    p.set_defaults(func=cmd_bench)
