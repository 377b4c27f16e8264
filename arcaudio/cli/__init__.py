"""The `arcaudio` command line: parsing and printing only; every command calls the library.

    arcaudio info sao-small                      # config and parameter counts, built on the meta device
    arcaudio generate tiny "a dog barking" --steps 8 --sampler pingpong --out out/
    arcaudio convert model_dir model.safetensors  # stable-audio-tools -> arcaudio (or --to sao)
    arcaudio bench sao-small --precision auto fp32   # time each stage of generation
    arcaudio demo                                 # what `make demo` runs
    arcaudio serve                                # web page + HTTP API on http://127.0.0.1:8000/

Each subcommand lives in its own module with an `add_parser(subparsers)` function.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import adherence, arc, bench, encode, evaluate, export, generate, models, pack, serve, synth, train

COMMANDS = [models, generate, serve, bench, train, arc, encode, pack, synth, adherence, evaluate, export]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arcaudio", description="Fast text-to-audio generation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"arcaudio {args.command}: error: {err}", file=sys.stderr)
        return 2
