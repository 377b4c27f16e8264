"""`arcaudio info` and `arcaudio convert`: inspect and convert model checkpoints."""

from __future__ import annotations

import argparse
import json
import time


def cmd_info(args: argparse.Namespace) -> int:
    from ..loading import build_model, load_config

    t0 = time.perf_counter()
    config = load_config(args.model)
    model = build_model(config, device="meta")
    counts = model.parameter_counts()
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"config": config.to_dict(), "parameters": counts}, indent=2))
        return 0
    print(config.to_json())
    print()
    print(f"{'component':<30}{'parameters':>14}")
    for name, n in counts.items():
        print(f"{name:<30}{n / 1e6:>12.2f} M")
    prompt = config.conditioning.prompt
    if not prompt.builtin:
        print(f"{'(text encoder)':<30}  external pre-trained T5 {prompt.t5_model_name!r}, loaded from local files, "
              "not counted")
    print(f"\n{config.latent_length} latent frames x {config.dit.io_channels} channels = "
          f"{config.max_seconds:.2f} s at {config.sample_rate} Hz; built on the meta device in {elapsed:.2f} s")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from ..checkpoint import save_model, save_sao
    from ..loading import load

    model = load(args.src, t5=False)
    if args.base and args.to == "sao":
        raise SystemExit("--base applies to arcaudio files only (stable-audio-tools has no shared-weights format)")
    out = save_sao(model, args.out) if args.to == "sao" else save_model(model, args.out, base=args.base)
    print(out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="print a model's config and parameter counts (no weights are read)")
    p.add_argument("model", help="preset name, arcaudio checkpoint, or stable-audio-tools folder/file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert between stable-audio-tools and arcaudio checkpoint formats")
    p.add_argument("src", help="checkpoint to read (any accepted format)")
    p.add_argument("out", help="arcaudio .safetensors file, or a folder for --to sao")
    p.add_argument("--to", choices=["arcaudio", "sao"], default="arcaudio")
    p.add_argument("--base", help="an arcaudio file in OUT's folder: write only the tensors that differ from it "
                                  "(e.g. a post-trained model's rectified-flow base, which differs in the DiT only)")
    p.set_defaults(func=cmd_convert)
