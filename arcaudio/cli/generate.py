"""`arcaudio generate` and `arcaudio demo`: text -> audio files."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from .options import add_compile_argument, add_guidance_arguments, add_precision_argument, add_sampler_argument

DEMO_PROMPTS = ["a loud plucked sine tone at A4, panned left", "quiet pink noise, slowly swelling, on the right",
                "a punchy drum loop at 120 bpm, centered", "a soft rising sweep, sustained, on the left side",
                "a loud steady white noise hiss in the center"]


def slug(text: str, limit: int = 48) -> str:
    """A safe file-name fragment of a prompt."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()[:limit] or "clip"


def write_clips(clips, prompts, sample_rate: int, out_dir: Path, first_index: int = 0, fmt: str = "wav",
                spectrogram: bool = False) -> list[Path]:
    """Write (C, L) clips as 16-bit WAV or FLAC files named `NN_prompt_slug.<fmt>`, each with a `.png` spectrogram
    beside it if asked; returns the audio paths."""
    from ..data.audio import write_audio
    from ..data.spectrogram import write_spectrogram

    paths = []
    for i, (clip, prompt) in enumerate(zip(clips, prompts)):
        path = Path(out_dir) / f"{first_index + i:02d}_{slug(prompt)}.{fmt}"
        paths.append(write_audio(path, clip, sample_rate))
        if spectrogram:
            write_spectrogram(path.with_suffix(".png"), clip, sample_rate)
    return paths


def split_model_and_prompts(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The model (--model, else a first positional that names one, else the built-in default) and the prompts
    (the other positionals, then --prompt-file's non-empty lines)."""
    from ..loading import DEFAULT_MODEL, model_names

    words = list(args.words)
    model = args.model
    if model is None and words and _names_a_model(words[0], model_names()):
        model = words.pop(0)
    prompts = words
    if args.prompt_file:
        path = Path(args.prompt_file)
        if not path.is_file():
            raise FileNotFoundError(f"prompt file {str(path)!r} does not exist")
        prompts += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError("give at least one prompt (positional or --prompt-file)")
    return model or DEFAULT_MODEL, prompts


def _names_a_model(word: str, names: list[str]) -> bool:
    return word in names or Path(word).exists() or word.endswith((".safetensors", ".ckpt", ".pt", ".pth"))


def cmd_generate(args: argparse.Namespace) -> int:
    import warnings

    from ..generation import generate, load_init_audio, resolve_seconds, sampling_settings
    from ..loading import load
    from ..precision import hardware, precision_of
    from ..sampling import check_guidance

    model_name, prompts = split_model_and_prompts(args)
    from ..export.runner import is_export

    if is_export(model_name):
        return _generate_from_export(args, model_name, prompts)
    _check_creative_options(args)
    needs_encoder = args.init_audio is not None or args.voice is not None or args.guide is not None
    model = load(model_name, device=args.device, t5=args.t5, precision=args.precision, encoder=needs_encoder)
    print(f"arcaudio generate: {model_name} in {precision_of(model)} on {hardware(model.device).describe()}",
          file=sys.stderr)
    for spec in args.lora or []:
        from ..nn.lora import apply_adapter, parse_adapter_spec

        path, scale = parse_adapter_spec(spec)
        apply_adapter(model, path, scale)
        print(f"arcaudio generate: LoRA {path} at scale {scale:g} (merged)", file=sys.stderr)
    if args.compile:
        from ..compilation import compile_model

        compile_model(model, None if args.compile == "auto" else args.compile)
        print(f"arcaudio generate: compiling the DiT and the decoder ({model.compile_mode}) on first use",
              file=sys.stderr)
    if args.bpm is not None:
        return _write_loops(args, model, prompts)
    if args.voice is not None:
        return _write_voice(args, model, prompts)
    seconds = args.seconds
    init = None
    if args.init_audio:
        init = load_init_audio(args.init_audio, model)  # (C, L)
        if seconds is None:  # the input's length, up to the model's window
            seconds = min(init.shape[-1] / model.config.sample_rate, model.config.max_seconds)
    elif args.strength is not None:
        raise ValueError("--strength applies to audio-to-audio; give --init-audio FILE too")

    resolve_seconds(model.config, seconds)  # bad input fails before the progress bar appears
    check_guidance(sampling_settings(model.config.objective, args.sampler, args.steps, args.cfg_scale).cfg_scale,
                   args.cfg_interval, args.cfg_rescale)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        steps = sampling_settings(model.config.objective, args.sampler, args.steps, args.cfg_scale).steps
        batches = -(-len(prompts) // (args.batch_size or len(prompts)))
        bar = tqdm(total=steps * batches, desc="sampling", unit="step", file=sys.stderr, leave=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        clips = generate(model, prompts, seconds=seconds, steps=args.steps, sampler=args.sampler,
                         cfg_scale=args.cfg_scale, seed=args.seed, batch_size=args.batch_size, init_audio=init,
                         strength=1.0 if args.strength is None else args.strength, decode_chunk=args.decode_chunk,
                         negative_prompt=args.negative_prompt, cfg_interval=tuple(args.cfg_interval),
                         cfg_rescale=args.cfg_rescale, init_posterior=args.init_posterior,
                         callback=(lambda i, x: bar.update(1)) if bar else None)
    elapsed = time.perf_counter() - t0
    if bar:
        bar.close()
    for w in caught:
        print(f"arcaudio generate: warning: {w.message}", file=sys.stderr)
    for path in write_clips(clips, prompts, model.config.sample_rate, Path(args.out), fmt=args.format,
                            spectrogram=args.spectrogram):
        print(path)
    audio_s = sum(c.shape[-1] for c in clips) / model.config.sample_rate
    print(f"{len(clips)} clip(s), {audio_s:.1f} s of audio, in {elapsed:.2f} s ({model_name})", file=sys.stderr)
    return 0


def _generate_from_export(args: argparse.Namespace, folder: str, prompts: list[str]) -> int:
    """MODEL is an ONNX export: run it with onnxruntime (export/runner.py), no torch model."""
    from ..export.runner import OnnxRunner

    unsupported = [name for name in ("init_audio", "voice", "bpm", "cfg_scale", "sampler", "negative_prompt")
                   if getattr(args, name, None) not in (None, False, [])]
    if unsupported:
        raise ValueError(f"an ONNX export runs text-to-audio with ping-pong sampling only; drop "
                         f"{', '.join('--' + n.replace('_', '-') for n in unsupported)}")
    runner = OnnxRunner(folder, int8=args.precision in ("int8", "int8-bf16"))
    clips = []
    for i, prompt in enumerate(prompts):
        t0 = time.perf_counter()
        clips.append(runner.generate(prompt, seconds=args.seconds, steps=args.steps, seed=args.seed + i))
        print(f"arcaudio generate: {folder} (onnxruntime{', int8' if runner.int8 else ''}) {prompt!r} in "
              f"{time.perf_counter() - t0:.2f} s", file=sys.stderr)
    from ..data.audio import write_audio

    out = Path(args.out)
    for i, (clip, prompt) in enumerate(zip(clips, prompts)):
        import torch

        print(write_audio(out / f"{i:02d}_{slug(prompt)}.{args.format}", torch.from_numpy(clip), runner.sample_rate))
    return 0


def _check_creative_options(args: argparse.Namespace) -> None:
    if args.bpm is None and (args.bars is not None or args.beats is not None or args.guide is not None):
        raise ValueError("--bars, --beats and --guide make a loop; give --bpm too")
    if args.bpm is not None and (args.init_audio or args.voice or args.seconds is not None):
        raise ValueError("--bpm sets the length from the tempo and takes its rhythm from --guide; it does not combine "
                         "with --seconds, --init-audio or --voice")
    if args.voice is not None and args.init_audio:
        raise ValueError("give --voice (a recording, pre-processed) or --init-audio (as it is), not both")


def _write_loops(args: argparse.Namespace, model, prompts: list[str]) -> int:
    """--bpm: one seamless loop per prompt (creative/loops.py)."""
    from ..creative.loops import GUIDE_STRENGTH, GUIDES, generate_loop
    from ..generation import load_init_audio

    if args.bars is None and args.beats is None:
        args.bars = 1
    guide, guide_audio = (args.guide, None) if args.guide in (None, *GUIDES) else (None, None)
    if args.guide is not None and args.guide not in GUIDES:
        guide_audio = load_init_audio(args.guide, model)
    strength = GUIDE_STRENGTH if args.strength is None else args.strength
    clips, names = [], []
    for i, prompt in enumerate(prompts):
        t0 = time.perf_counter()
        loop = generate_loop(model, prompt, args.bpm, bars=args.bars, beats=args.beats, seed=args.seed + i,
                             steps=args.steps, guide=guide, guide_audio=guide_audio, strength=strength)
        clips.append(loop.audio)
        names.append(f"{prompt} {args.bpm:g}bpm loop")
        print(f"arcaudio generate: loop of {loop.seconds:.2f} s at {loop.bpm:g} bpm from {loop.prompt!r}"
              f"{f', guide {loop.guide} at strength {loop.strength:g}' if loop.guide else ''} in "
              f"{time.perf_counter() - t0:.2f} s", file=sys.stderr)
    for path in write_clips(clips, names, model.config.sample_rate, Path(args.out), fmt=args.format,
                            spectrogram=args.spectrogram):
        print(path)
    return 0


def _write_voice(args: argparse.Namespace, model, prompts: list[str]) -> int:
    """--voice FILE: voice-to-audio (creative/voice.py), one clip per prompt, the voice's length."""
    from ..creative.voice import VOICE_STRENGTH, voice_to_audio
    from ..data.audio import read_audio

    voice, rate = read_audio(args.voice)
    strength = VOICE_STRENGTH if args.strength is None else args.strength
    clips = [voice_to_audio(model, voice, rate, prompt, strength=strength, seed=args.seed + i, steps=args.steps)[0]
             for i, prompt in enumerate(prompts)]
    for path in write_clips(clips, prompts, model.config.sample_rate, Path(args.out), fmt=args.format,
                            spectrogram=args.spectrogram):
        print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..generation import generate
    from ..loading import DEFAULT_MODEL, DEFAULT_WEIGHTS, load

    t0 = time.perf_counter()
    model = load(DEFAULT_MODEL, precision="auto", encoder=False)
    print(f"arcaudio demo: the built-in model ({DEFAULT_WEIGHTS.name}, trained on the procedural set; see "
          f"{DEFAULT_WEIGHTS.parent / 'MODEL_CARD.md'}), 8 ping-pong steps; loaded in "
          f"{time.perf_counter() - t0:.2f} s")
    out = Path(args.out)
    for i, prompt in enumerate(DEMO_PROMPTS):
        t0 = time.perf_counter()
        (clip,) = generate(model, [prompt], seed=i)
        elapsed = time.perf_counter() - t0
        (path,) = write_clips([clip], [prompt], model.config.sample_rate, out, first_index=i, spectrogram=True)
        print(f"  {path}  (+ .png spectrogram)  {clip.shape[-1] / model.config.sample_rate:.2f} s of audio in "
              f"{elapsed * 1000:.0f} ms  <- {prompt!r}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="text -> audio files", description=(
        "Generate one clip per prompt. MODEL is optional: a first word that is a model name (default, presets) or "
        "an existing path is taken as the model; otherwise the built-in default model is used."))
    p.add_argument("words", nargs="*", metavar="[MODEL] PROMPT", help="optional model, then one or more prompts")
    p.add_argument("-m", "--model", help="model name or path (instead of a first positional MODEL)")
    p.add_argument("--prompt-file", help="a text file with one prompt per line")
    p.add_argument("--seconds", type=float, help="clip length (default: the model's window, or the input's length)")
    p.add_argument("--steps", type=int, help="sampling steps (default: 8 ping-pong, or 50 Euler for a base flow)")
    add_sampler_argument(p)
    p.add_argument("--cfg-scale", type=float, help="classifier-free guidance (default 1 for ARC models)")
    add_guidance_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="clip i uses seed + i (default 0)")
    p.add_argument("--batch-size", type=int, help="prompts per forward pass (default: all)")
    p.add_argument("--init-audio", help="audio-to-audio: an input file (WAV/FLAC/...) whose timing the output keeps")
    p.add_argument("--strength", type=float,
                   help="audio-to-audio: how far from the input, in (0, 1] (lower: closer to it; 1: ignore it)")
    p.add_argument("--init-posterior", choices=["mean", "sample"], default="mean",
                   help="audio-to-audio: encode the input to its posterior mean (default) or a posterior sample "
                        "(stable-audio-tools' behaviour)")
    p.add_argument("--bpm", type=float, help="a seamless loop at this tempo: whole --bars (default 1) or --beats")
    p.add_argument("--bars", type=float, help="loop length in 4/4 bars (with --bpm)")
    p.add_argument("--beats", type=float, help="loop length in beats (with --bpm; instead of --bars)")
    p.add_argument("--guide", help="with --bpm: a rhythmic guide used as init audio at --strength (default 0.2): "
                                   "click, drums, or an audio file")
    p.add_argument("--voice", help="voice-to-audio: a recording (beatbox, humming) whose rhythm and loudness contour "
                                   "the output follows, pre-processed (high-pass, normalised); --strength default 0.5")
    p.add_argument("--decode-chunk", type=int, help="decode this many latent frames at a time (less memory)")
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--format", choices=["wav", "flac"], default="wav", help="16-bit WAV or FLAC")
    p.add_argument("--spectrogram", action="store_true", help="also write a PNG spectrogram per clip")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--t5", help="local folder of the T5 text encoder (default: look up the config's name locally)")
    p.add_argument("--device", default=None)
    add_precision_argument(p)
    add_compile_argument(p)
    p.add_argument("--lora", action="append", metavar="ADAPTER[:SCALE]",
                   help="apply a LoRA adapter (from `arcaudio train --lora`), merged, at SCALE (default 1); repeatable")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="generate a few clips with the built-in default model, with spectrograms")
    p.add_argument("--out", default="demo_out")
    p.set_defaults(func=cmd_demo)
