"""The built-in model exported to ONNX (fp32 and int8 DiT), run by the torch-free runner: probe adherence on short
prompts against the torch model, and int8 against fp32 with the same noise.

    .venv/bin/python scripts/onnx_adherence.py [--n 150] [--out /tmp/default_onnx] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from arcaudio.eval.adherence import adherence_prompts, evaluate_adherence, read_prompt, summarise
from arcaudio.export.onnx_export import export_onnx
from arcaudio.export.runner import OnnxRunner
from arcaudio.loading import load


def spectrogram_snr(a: np.ndarray, b: np.ndarray) -> float:
    def mag(x):
        frames = np.lib.stride_tricks.sliding_window_view(x.mean(0), 2048)[::512] * np.hanning(2048)
        return np.abs(np.fft.rfft(frames, axis=1))

    ma, mb = mag(a), mag(b)
    return float(10 * np.log10((ma ** 2).sum() / ((ma - mb) ** 2).sum()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=150)
    p.add_argument("--out", type=Path, default=Path("/tmp/default_onnx"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    model = load("default")
    export_onnx(model, args.out, quantize="int8", source="default")
    prompts = adherence_prompts(args.n, style="short")
    report = {"torch": evaluate_adherence(model, prompts, seed=0, batch_size=1).mean_accuracy}
    for name, int8 in (("onnx_fp32", False), ("onnx_int8", True)):
        runner = OnnxRunner(args.out, int8=int8)
        t0 = time.perf_counter()
        scored = [(q.attributes, read_prompt(runner.generate(q.caption, seed=i), runner.sample_rate, q))
                  for i, q in enumerate(prompts)]
        report[name] = summarise(scored, 0.0).mean_accuracy
        report[f"{name}_s_per_clip"] = (time.perf_counter() - t0) / len(prompts)
    a, b = OnnxRunner(args.out), OnnxRunner(args.out, int8=True)
    m = a.manifest
    cosines, snrs = [], []
    for i, q in enumerate(prompts[:16]):
        rng = np.random.default_rng(i)
        noises = [rng.standard_normal((1, m["io_channels"], m["latent_length"]), dtype=np.float32) for _ in range(8)]
        la = a.generate_latents(q.caption, m["max_seconds"], noises)
        lb = b.generate_latents(q.caption, m["max_seconds"], noises)
        cosines.append(float(np.dot(la.ravel(), lb.ravel()) / np.linalg.norm(la) / np.linalg.norm(lb)))
        snrs.append(spectrogram_snr(a.decode(la, m["max_seconds"]), a.decode(lb, m["max_seconds"])))
    report.update({"int8_latent_cosine_mean": float(np.mean(cosines)), "int8_latent_cosine_min": min(cosines),
                   "int8_spectrogram_snr_db_mean": float(np.mean(snrs)), "int8_spectrogram_snr_db_min": min(snrs),
                   "sizes": m["sizes"], "prompts": args.n})
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
