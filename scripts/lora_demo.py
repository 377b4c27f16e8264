"""Teach the built-in flow base a new word with a LoRA adapter and apply it to the ARC model.

    .venv/bin/python scripts/lora_demo.py [--base runs/default/flow/model.safetensors] [--arc default] [--steps 300]
                                          [--out runs/lora_demo] [--json F]

1. data: 96 procedural clips of pink noise panned right (loud, steady), captioned "a zorblat" (a word no caption
   uses), and 96 ordinary procedural clips with their training captions (so old prompts are rehearsed);
2. `arcaudio train --stage flow --model BASE --lora rank=16` on them (resumable; adapter.safetensors);
3. the ARC model with and without the adapter, 8 ping-pong steps: probe adherence of "a zorblat" (kind noise, colour
   pink, pan right; 48 seeds) and of 150 short procedural prompts (kept within noise?);
4. trainable parameters and AdamW state against full fine-tuning, adapter file size.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from arcaudio.cli import main as arcaudio  # noqa: E402
from arcaudio.eval.adherence import AdherencePrompt, adherence_prompts, evaluate_adherence  # noqa: E402
from arcaudio.loading import load  # noqa: E402
from arcaudio.nn.lora import apply_adapter, read_adapter  # noqa: E402
from arcaudio.procedural.synth import make_clip, render, training_caption  # noqa: E402

NEW = {"kind": "noise", "colour": "pink", "pan": "right", "loudness": "loud", "envelope": "steady"}


def write_data(folder: Path, n: int = 96) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        sf.write(folder / f"new_{i}.wav", render(NEW, 2.9, rng).T, 44100)
        lines.append(json.dumps({"path": f"new_{i}.wav", "caption": "a zorblat"}))
        clip, attributes, _ = make_clip(11, i, max_seconds=2.97)
        sf.write(folder / f"old_{i}.wav", clip.T, 44100)
        lines.append(json.dumps({"path": f"old_{i}.wav",
                                 "caption": training_caption(attributes, np.random.default_rng([11, i]))}))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "manifest.jsonl"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="runs/default/flow/model.safetensors")
    p.add_argument("--arc", default="default")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path("runs/lora_demo"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    manifest = write_data(args.out / "data")
    assert arcaudio(["train", "--stage", "flow", "--model", args.base, "--data", str(manifest), "--out",
                     str(args.out / "lora"), "--steps", str(args.steps), "--batch-size", "16", "--lora", "rank=16",
                     "--set", "optim.lr=1e-3", "--set", "flow.time_sampler=uniform", "--set", "checkpoint_every=100",
                     "--set", "log_every=50", "--no-progress"]) == 0
    adapter = args.out / "lora" / "adapter.safetensors"
    new_prompts = [AdherencePrompt("a zorblat", NEW, 2.97, ["kind", "colour", "pan"])] * 48
    old_prompts = adherence_prompts(150, style="short")
    report = {}
    for name, model in (("arc", load(args.arc)), ("arc+lora", apply_adapter(load(args.arc), adapter))):
        new = evaluate_adherence(model, new_prompts, seed=100, batch_size=16)
        old = evaluate_adherence(model, old_prompts, seed=0, batch_size=16)
        report[name] = {"new_word": new.accuracy, "new_word_mean": new.mean_accuracy, "old_mean": old.mean_accuracy,
                        "old": old.accuracy}
        print(f"{name}: 'a zorblat' {new.accuracy} (mean {new.mean_accuracy:.3f}); 150 short prompts mean "
              f"{old.mean_accuracy:.3f}", flush=True)
    _, _, tensors = read_adapter(adapter)
    trainable = sum(t.numel() for t in tensors.values())
    full = sum(p.numel() for p in load(args.base).dit.parameters())
    report["trainable_parameters"] = {"lora": trainable, "full_dit": full,
                                      "adamw_state_mb_lora": 2 * 4 * trainable / 2**20,
                                      "adamw_state_mb_full": 2 * 4 * full / 2**20,
                                      "adapter_file_mb": adapter.stat().st_size / 2**20}
    print(json.dumps(report["trainable_parameters"], indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
