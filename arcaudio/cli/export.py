"""`arcaudio export`: ONNX graphs of a model for edge devices, run later without torch (`arcaudio generate DIR`)."""

from __future__ import annotations

import argparse
import sys


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from ..export.onnx_export import export_onnx
    from ..loading import load

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ValueError(f"export needs onnx, onnxruntime and onnxscript: pip install 'arcaudio[export]' ({err})") \
            from None
    if args.format != "onnx":
        raise ValueError(f"--format must be onnx (LiteRT and CoreML are not built yet), got {args.format!r}")
    model = load(args.model, t5=args.t5, encoder=False)
    manifest = export_onnx(model, args.out, seconds=args.seconds, quantize=args.quantize, source=args.model)
    data = json.loads(manifest.read_text())
    for name, size in data["sizes"].items():
        print(f"  {args.out}/{name}  {size / 2**20:.1f} MB")
    print(f"arcaudio export: {args.model} -> {manifest} (lengths {data['lengths']} latent frames)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="ONNX graphs (text encoder, DiT step, decoder) and a manifest",
                       description="Export MODEL to OUT_DIR: text.onnx, context.onnx, dit_T.onnx and decoder_T.onnx "
                                   "per length, manifest.json; run it with `arcaudio generate OUT_DIR \"prompt\"` "
                                   "(numpy + onnxruntime, no torch).")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--format", default="onnx")
    p.add_argument("--quantize", choices=["int8"], help="also write int8 DiT graphs (ONNX Runtime dynamic)")
    p.add_argument("--seconds", type=float, nargs="+", help="lengths to export (default: the model's window)")
    p.add_argument("--t5", help="local T5 folder for models with a pre-trained text encoder")
    p.set_defaults(func=cmd_export)
