"""`arcaudio serve`: the HTTP API and web page for real-time sound design."""

from __future__ import annotations

import argparse
import os
import sys

from .options import add_precision_argument


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..server.app import Limits, create_app
    except ImportError as err:
        from ..server import SERVE_HINT

        raise ValueError(f"{SERVE_HINT} ({err})") from None
    from ..loading import DEFAULT_MODEL, load
    from ..precision import hardware, precision_of

    token = args.token or os.environ.get("ARCAUDIO_TOKEN") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"arcaudio serve: warning: listening on {args.host} without a token: anyone who can reach it can use "
              "it (set --token or ARCAUDIO_TOKEN)", file=sys.stderr)
    name = args.model or DEFAULT_MODEL
    model = load(name, device=args.device, t5=args.t5, precision=args.precision)  # encoder kept: audio-to-audio
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 2**20))
    adapters = {}
    for spec in args.lora or []:
        adapter_name, sep, path = spec.partition("=")
        if not sep or not adapter_name or not path:
            raise ValueError(f"--lora takes NAME=PATH, got {spec!r}")
        adapters[adapter_name] = path
    app = create_app(model, name, token=token, max_queue=args.max_queue, max_batch=args.max_batch, limits=limits,
                     adapters=adapters)
    print(f"arcaudio serve: {name} in {precision_of(model)} on {hardware(model.device).describe()}; "
          f"http://{args.host}:{args.port}/ (API docs at /docs){', token required' if token else ''}",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="HTTP API and web page (needs the serve extra)", description=(
        "Serve MODEL (default: the built-in model) over HTTP: a web page at /, the API under /v1 (docs at /docs). "
        "Binds 127.0.0.1 unless --host says otherwise."))
    p.add_argument("model", nargs="?", help="model name or path (default: the built-in default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every API call (or ARCAUDIO_TOKEN)")
    p.add_argument("--max-queue", type=int, default=16, help="jobs waiting before the server answers 503")
    p.add_argument("--max-batch", type=int, default=8, help="clips of compatible jobs sharing one forward pass")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest audio upload (default 20 MB)")
    add_precision_argument(p)
    p.add_argument("--lora", action="append", metavar="NAME=PATH",
                   help="a LoRA adapter requests may ask for by NAME (repeatable); needs a float DiT (--precision "
                        "fp32 or bf16 for large models)")
    p.add_argument("--t5", help="local folder of the T5 text encoder")
    p.add_argument("--device", default=None)
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.set_defaults(func=cmd_serve)
