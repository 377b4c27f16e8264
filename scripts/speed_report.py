"""arcaudio against stable-audio-tools at Stable Audio Open Small size, side by side in one run, with each stage
set against this CPU's measured matmul and convolution throughput.

    .venv/bin/python scripts/speed_report.py [--sat-venv ../satvenv] [--sat-scripts ../shared/reference/...]
                                            [--repeats 2] [--json speed.json]

Runs, one after the other, on an idle machine (figures taken under load are worthless):
1. the reference's own timing script (`sat_speed.py`: `generate_diffusion_cond`, 8 ping-pong steps, CFG 1, fp32),
   when its private environment exists (see ../shared/reference/stable-audio-tools/README.md); skipped otherwise;
2. `arcaudio bench sao-small --precision P` for fp32, auto (what this machine's hardware picks), int8 (int8 DiT,
   fp32 elsewhere) and bf16, and auto decoding 64 latent frames at a time, each in its own process (so each peak
   memory is its own);
3. the throughput of this CPU: fp32 / bf16 matmul, int8 linear (`torch._int_mm`, as arcaudio's Int8Linear), fp32
   and bf16 (1, 7) conv2d channels-last;
4. the FLOPs of one DiT step and of the decoder (torch's FlopCounterMode on the real modules).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def best_rate(fn, flops: float, repeats: int = 5) -> float:
    """FLOP/s of the fastest of `repeats` calls after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flops / best


def cpu_throughput() -> dict[str, float]:
    """GFLOP/s (GOP/s for int8) of the kernels generation spends its time in."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    out = {}
    m, k, n = 1024, 4096, 1024
    for name, dtype in (("matmul_fp32", torch.float32), ("matmul_bf16", torch.bfloat16)):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        repeats = 1 if dtype == torch.bfloat16 else 5  # bf16 may be emulated (no AVX-512 BF16): very slow
        out[name] = best_rate(functools.partial(torch.matmul, a, b), 2 * m * k * n, repeats=repeats) / 1e9
    from arcaudio.nn.int8_linear import Int8Linear

    lin = Int8Linear.from_linear(torch.nn.Linear(k, n, bias=False))
    x = torch.randn(m, k)
    out["linear_int8"] = best_rate(lambda: lin(x), 2 * m * k * n) / 1e9
    c, t = 128, 65536
    for name, dtype in (("conv_k7_fp32_channels_last", torch.float32), ("conv_k7_bf16_channels_last", torch.bfloat16)):
        xc = torch.randn(1, c, 1, t, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 1, 7, dtype=dtype)
        out[name] = best_rate(functools.partial(F.conv2d, xc, w, padding=(0, 3)), 2 * c * c * 7 * t,
                              repeats=1 if dtype == torch.bfloat16 else 5) / 1e9
    return out


def flops_per_stage() -> dict[str, float]:
    """FLOPs of one DiT forward (batch 1, CFG 1) and of one decode, at sao-small size, counted on the modules."""
    from torch.utils.flop_counter import FlopCounterMode

    from arcaudio.bench import bench_model

    model = bench_model("sao-small")
    cfg = model.config
    with torch.no_grad():
        cond = model.condition(["a dog barking"], 11.9)
        x = torch.randn(1, cfg.dit.io_channels, cfg.latent_length)
        with FlopCounterMode(display=False) as counter:
            model(x, torch.tensor([0.5]), cond)
        dit = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            model.autoencoder.decode(x[:, :, :16])  # 1/16 of the clip: the decoder's FLOPs are linear in length
        decoder = counter.get_total_flops() * cfg.latent_length / 16
    return {"dit_step": float(dit), "decoder": float(decoder)}


def run_reference(venv: Path, scripts: Path) -> dict[str, float] | None:
    python, script = venv / "bin" / "python", scripts / "sat_speed.py"
    if not python.is_file() or not script.is_file():
        print(f"[reference] skipped: no {python} or no {script}", file=sys.stderr)
        return None
    env = {**os.environ, "PYTHONPATH": str(venv / "stub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([str(python), str(script)], env=env, capture_output=True, text=True, check=True)
    figures = dict(re.findall(r"(\w+_s)=([0-9.]+)", done.stdout))
    return {k: float(v) for k, v in figures.items()}


def run_arcaudio(precision: str, repeats: int, extra: tuple[str, ...] = ()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([sys.executable, "-m", "arcaudio", "bench", "sao-small", "--precision", precision,
                        "--repeats", str(repeats), "--warmup", "1", "--json", str(out), *extra], check=True,
                       capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        return json.loads(out.read_text())[0]


RUNS = {"fp32": ("fp32", ()), "auto": ("auto", ()), "int8": ("int8", ()), "bf16": ("bf16", ()),
        "auto_chunked": ("auto", ("--decode-chunk", "64"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sat-venv", type=Path, default=ROOT.parent / "satvenv")
    p.add_argument("--sat-scripts", type=Path, default=ROOT.parent / "shared" / "reference" / "stable-audio-tools")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="which arcaudio runs")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    from arcaudio.precision import hardware

    report: dict = {"threads": torch.get_num_threads(), "hardware": hardware("cpu").describe()}
    print("[1/4] stable-audio-tools generate_diffusion_cond ...", file=sys.stderr, flush=True)
    report["reference"] = run_reference(args.sat_venv, args.sat_scripts)
    for name in args.runs:
        precision, extra = RUNS[name]
        print(f"[2/4] arcaudio bench sao-small --precision {precision} {' '.join(extra)} ...", file=sys.stderr,
              flush=True)
        report[f"arcaudio_{name}"] = run_arcaudio(precision, 1 if extra else args.repeats, extra)
    print("[3/4] CPU throughput ...", file=sys.stderr, flush=True)
    report["throughput_gflops"] = peak = cpu_throughput()
    print("[4/4] FLOP counts ...", file=sys.stderr, flush=True)
    report["flops"] = flops = flops_per_stage()

    ref = report["reference"]
    first = report[f"arcaudio_{args.runs[0]}"]
    print(f"\nsao-small, one {first['seconds']:.2f} s clip, 8 ping-pong steps, CFG 1, {report['threads']} threads, "
          f"{report['hardware']}")
    if ref:
        print(f"  stable-audio-tools 0.0.19 fp32: total {ref['total_s']:.2f} s (DiT step {ref['dit_step_s']:.3f} s, "
              f"decoder {ref['decode_s']:.2f} s)")
    for name in args.runs:
        r = report[f"arcaudio_{name}"]
        ratio = f", ratio to the reference {r['total_s'] / ref['total_s']:.2f}" if ref else ""
        dit_rate = flops["dit_step"] / r["dit_step_s"] / 1e9
        dec_rate = flops["decoder"] / r["decoder_s"] / 1e9
        print(f"  arcaudio {name} ({r['precision']}): total {r['total_s']:.2f} s{ratio}; text "
              f"{r['text_s'] * 1e3:.0f} ms, DiT step {r['dit_step_s']:.3f} s ({dit_rate:.0f} GFLOP/s), sampling "
              f"{r['sampling_s']:.2f} s, decoder {r['decoder_s']:.2f} s ({dec_rate:.0f} GFLOP/s), peak RSS "
              f"{r['peak_memory_mb']:.0f} MB")
    print("  CPU throughput (GFLOP/s): " + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()))
    print(f"  DiT step: {flops['dit_step'] / 1e9:.0f} GFLOP; decoder: {flops['decoder'] / 1e12:.2f} TFLOP "
          "(rates above: FLOPs per second of each run's stage time)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
