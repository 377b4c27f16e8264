"""ONNX export at Stable Audio Open Small's size (random weights, a T5-base-sized byte-level stand-in text encoder, as
`arcaudio bench`), against arcaudio's torch paths, in one run on an idle machine:

    .venv/bin/python scripts/onnx_report.py [--out /tmp/sao_onnx] [--json runs/issue17/onnx.json]

1. export with --quantize int8 (wall time, size of each file);
2. each in its own process (so each peak RSS is its own): the ONNX Runtime runner fp32 and int8, and
   `arcaudio bench sao-small --precision fp32` / `auto`; one 11.9 s clip, 8 ping-pong steps, after one warm-up;
3. int8 against fp32 through the runner with the same noise: latent cosine and spectrogram SNR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RUN = """
import json, resource, sys, time
import numpy as np
from arcaudio.export.runner import OnnxRunner
runner = OnnxRunner(sys.argv[1], int8=sys.argv[2] == "int8")
runner.generate("warm up", seed=0)
t0 = time.perf_counter()
clip = runner.generate("a dog barking in the rain", seed=1)
total = time.perf_counter() - t0
print(json.dumps({"total_s": total, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "finite": bool(np.isfinite(clip).all())}))
"""

AGREE = """
import json, sys
import numpy as np
from arcaudio.export.runner import OnnxRunner
a, b = OnnxRunner(sys.argv[1]), OnnxRunner(sys.argv[1], int8=True)
rng = np.random.default_rng(0)
m = a.manifest
noises = [rng.standard_normal((1, m["io_channels"], m["latent_length"]), dtype=np.float32) for _ in range(8)]
la = a.generate_latents("a dog barking", m["max_seconds"], noises)
lb = b.generate_latents("a dog barking", m["max_seconds"], noises)
cos = float(np.dot(la.ravel(), lb.ravel()) / np.linalg.norm(la) / np.linalg.norm(lb))
xa, xb = a.decode(la, m["max_seconds"]), a.decode(lb, m["max_seconds"])
def mag(x):
    frames = np.lib.stride_tricks.sliding_window_view(x.mean(0), 2048)[::512] * np.hanning(2048)
    return np.abs(np.fft.rfft(frames, axis=1))
ma, mb = mag(xa), mag(xb)
snr = float(10 * np.log10((ma ** 2).sum() / ((ma - mb) ** 2).sum()))
print(json.dumps({"latent_cosine": cos, "spectrogram_snr_db": snr}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/sao_onnx"))
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    report = {}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c",
                    "import sys\nfrom arcaudio.bench import bench_model, fill_zero_weights\n"
                    "from arcaudio.export.onnx_export import export_onnx\n"
                    "export_onnx(fill_zero_weights(bench_model('sao-small')), sys.argv[1], quantize='int8', "
                    "source='sao-small (random weights)')", str(args.out)], check=True, env=env)
    report["export_s"] = time.perf_counter() - t0
    manifest = json.loads((args.out / "manifest.json").read_text())
    report["sizes_mb"] = {k: v / 2**20 for k, v in manifest["sizes"].items()}
    for name in ("fp32", "int8"):
        done = subprocess.run([sys.executable, "-c", RUN, str(args.out), name], check=True, env=env,
                              capture_output=True, text=True)
        report[f"onnx_{name}"] = json.loads(done.stdout.strip().splitlines()[-1])
    done = subprocess.run([sys.executable, "-c", AGREE, str(args.out)], check=True, env=env, capture_output=True,
                          text=True)
    report["int8_vs_fp32"] = json.loads(done.stdout.strip().splitlines()[-1])
    for precision in ("fp32", "auto"):
        out = args.out / f"bench_{precision}.json"
        subprocess.run([sys.executable, "-m", "arcaudio", "bench", "sao-small", "--precision", precision, "--repeats",
                        "1", "--warmup", "1", "--json", str(out)], check=True, env=env, capture_output=True)
        row = json.loads(out.read_text())[0]
        report[f"torch_{precision}"] = {"total_s": row["total_s"], "peak_rss_mb": row["peak_memory_mb"],
                                        "precision": row["precision"]}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
