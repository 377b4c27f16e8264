"""The GPU path measured in one run: Stable Audio Open Small's size (random weights), `precision="auto"`, prompt
in and waveform on the GPU, eager and captured as CUDA graphs (arcaudio/captured.py), at batch 1, 8 and 32.

    python scripts/gpu_report.py --json gpu.json [--budget-s 420] [--sections agreement,levers]
    python scripts/gpu_report.py --json smoke.json --device cpu --preset tiny   # the script's own smoke test

Sections, each written to the JSON as soon as it is measured (a run cut short keeps what it had):
1. the device, and its bf16 matmul rate (8192^3, the ceiling the stages are set against);
2. agreement of the auto precision with fp32, same seeds: sao-small random weights (zero-initialised output layers
   filled, so every layer counts) and the built-in model;
3. eager generation stage by stage (arcaudio.bench.benchmark), fp32 and auto, batch 1;
4. captured generation at batch 1, 8 and 32: end-to-end per call (tokenize, noise, the replays, finite check, the
   clips cloned; medians), stage by stage (arcaudio.bench.benchmark_captured), the capture's own time, peak memory,
   and its agreement with eager `generate`;
   device-drawn noise at batch 1 and 32; cuDNN autotuning (`cudnn.benchmark`) at batch 1;
5. `torch.compile` (inductor, mode "default": SnakeBeta and the residual adds fused) inside the captured graphs at
   batch 1, compile time reported apart, while the budget lasts;
6. the levers toward 15 ms at batch 1 (captured, compiled, device noise), each against a baseline compiled in the
   same run: every top-level decoder layer timed in each layout (where cuDNN's batch-1 fallback lives), the decoder
   with the fastest layout per layer, the text encoder compiled too, inductor's autotuned GEMMs
   (`max-autotune-no-cudagraphs`), and the three together.
`--sections` runs a subset (section 1 always runs): agreement (2), eager (3), captured (4), compiled (5), levers (6).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from arcaudio.bench import (  # noqa: E402
    bench_model,
    benchmark,
    benchmark_captured,
    fill_zero_weights,
    precision_agreement,
)
from arcaudio.captured import CapturedGenerator  # noqa: E402
from arcaudio.compilation import DEFAULT_PARTS, compile_model  # noqa: E402
from arcaudio.generation import generate  # noqa: E402
from arcaudio.loading import load  # noqa: E402
from arcaudio.models.autoencoder import DECODER_LAYOUTS, DEFAULT_LAYOUT, channels_last_2d  # noqa: E402
from arcaudio.precision import resolve_precision  # noqa: E402

PROMPT = "a punchy drum loop at 120 bpm with a warm bass line"
SECTIONS = ("agreement", "eager", "captured", "compiled", "levers")


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, repeats: int, device) -> list[float]:
    """Wall seconds of each of `repeats` calls, the device synchronised around each."""
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def peak_memory_mb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * ordered[0],
            "p90_ms": 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "calls": len(times)}


def matmul_rate(device, n: int = 8192) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = timed(lambda: a @ b, 10, device)
    return 2 * n**3 / statistics.mean(times)


def flops(model) -> dict[str, float]:
    """FLOPs of one DiT forward and of one decode at batch 1 (torch's FlopCounterMode on the modules)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg = model.config
    with torch.no_grad():
        cond = model.condition([PROMPT], cfg.max_seconds)
        x = torch.randn(1, cfg.dit.io_channels, cfg.latent_length, device=model.device,
                        dtype=model.dit.preprocess_conv.weight.dtype)
        with FlopCounterMode(display=False) as counter:
            model(x, torch.full((1,), 0.5, device=model.device), cond)
        dit = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            model.autoencoder.decode(x)
        decoder = float(counter.get_total_flops())
        flash = None
        if model.device.type == "cuda":  # does every attention of a DiT step run in the flash kernel?
            from torch.nn.attention import SDPBackend, sdpa_kernel

            try:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    model(x, torch.full((1,), 0.5, device=model.device), cond)
                flash = True
            except RuntimeError:
                flash = False
        return {"dit_step": float(dit), "decoder": decoder, "dit_attention_runs_flash": flash}


def dit_forward_agreement(fp32) -> dict[str, float]:
    """Cosine of one bf16 DiT forward's velocity with the fp32 one (same inputs, t = 0.5), under torch's settings:
    cuBLAS's reduced-precision bf16 reductions allowed (torch's default) or not, SDPA's flash kernel or its math
    one."""
    import copy

    from torch.nn.attention import SDPBackend, sdpa_kernel

    from arcaudio.precision import Precision, apply_precision

    cfg, device = fp32.config, fp32.device
    bf16 = apply_precision(copy.deepcopy(fp32), Precision("fp32", "bf16", "fp32"))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, cfg.dit.io_channels, cfg.latent_length, generator=generator).to(device)
    t = torch.full((2,), 0.5, device=device)
    out = {}
    with torch.no_grad():
        cond = fp32.condition([PROMPT, "rain on a tin roof"], cfg.max_seconds)
        reference = fp32(x, t, cond).flatten(1).double()
        matmul = torch.backends.cuda.matmul
        for reduction in (True, False):
            for backend in ("flash", "math"):
                matmul.allow_bf16_reduced_precision_reduction = reduction
                kernel = SDPBackend.FLASH_ATTENTION if backend == "flash" else SDPBackend.MATH
                try:
                    with sdpa_kernel(kernel):
                        v = bf16(x.bfloat16(), t, cond).flatten(1).double()
                    cosine = torch.nn.functional.cosine_similarity(reference, v, dim=1).min()
                    out[f"reduced_reduction={reduction},sdpa={backend}"] = float(cosine)
                except RuntimeError as error:
                    out[f"reduced_reduction={reduction},sdpa={backend}"] = f"failed: {error}"[:200]
        matmul.allow_bf16_reduced_precision_reduction = True
        out["velocity_rms_fp32"] = float(reference.pow(2).mean().sqrt())
    return out


def decoder_layouts(model, batches: tuple[int, ...]) -> dict:
    """Eager decoder time (median of 5 after 2 warm-ups) per layout and dtype, and the top CUDA kernels of the
    slowest, on one clip's latents."""
    import copy

    decoder = model.autoencoder.decoder
    cfg, device = model.config, model.device
    out: dict = {}
    slowest = (0.0, None)
    for dtype in (torch.bfloat16, torch.float32):
        dec = decoder if dtype == torch.bfloat16 else copy.deepcopy(decoder).float()
        for layout in DECODER_LAYOUTS:
            dec.layout = layout
            for batch in batches:
                z = torch.randn(batch, cfg.autoencoder.latent_dim, cfg.latent_length, device=device, dtype=dtype)
                with torch.no_grad():
                    for _ in range(2):
                        dec(z)
                    times = timed(lambda d=dec, z=z: d(z), 5, device)
                ms = 1000 * statistics.median(times)
                out[f"{str(dtype)[6:]},{layout},b{batch}"] = ms
                if ms / batch > slowest[0]:
                    slowest = (ms / batch, (dec, layout, dtype))
        dec.layout = None
    if device.type == "cuda" and slowest[1] is not None:
        from torch.profiler import ProfilerActivity, profile

        dec, layout, dtype = slowest[1]
        dec.layout = layout
        z = torch.randn(1, cfg.autoencoder.latent_dim, cfg.latent_length, device=device, dtype=dtype)
        with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
            dec(z)
            torch.cuda.synchronize(device)
        dec.layout = None
        out["slowest_profile"] = f"{str(dtype)[6:]},{layout}\n" + prof.key_averages().table(
            sort_by="cuda_time_total", row_limit=14, max_name_column_width=90)
    return out


def captured_figures(model, batch: int, repeats: int, device, noise: str = "host") -> dict:
    result = end_to_end(model, batch, repeats, device, noise)  # its generator, and its graphs' memory, freed after
    result["stages"] = benchmark_captured(model, "captured", batch, repeats=max(3, repeats // 5),
                                          noise=noise).as_dict()
    return result


def end_to_end(model, batch: int, repeats: int, device, noise: str) -> dict:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    gen = CapturedGenerator(model, batch=batch, noise=noise)
    capture_s = time.perf_counter() - t0
    prompts = [f"{PROMPT}, take {i}" for i in range(batch)]
    for _ in range(3):
        gen(prompts, seed=1)
    times = timed(lambda: gen(prompts, seed=1), repeats, device)
    replay = timed(lambda: [g.replay() for g in gen.graphs.values()], repeats, device) if gen.graphs else []
    result = {"batch": batch, "noise": noise, "capture_s": capture_s,
              "text_encoder_captured": gen.text_encoder_captured, "end_to_end": summary(times),
              "replay_only": summary(replay) if replay else None,
              "clips_per_s": batch / statistics.median(times),
              "audio_s_per_s": batch * gen.seconds / statistics.median(times),
              "peak_memory_mb": peak_memory_mb(device)}
    if noise == "host":  # the clips against eager generate's, same seeds
        got = gen(prompts, seed=1)
        want = generate(model, prompts, seed=1)
        diffs = [float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)) for a, b in zip(got, want)]
        result["max_relative_difference_to_eager"] = max(diffs)
    return result


def decoder_layer_times(decoder, latent_shape: tuple[int, int], batches: tuple[int, ...], device) -> dict:
    """Eager time (ms, median of 5 after 2 warm-ups) of each top-level decoder layer in each layout, its input
    already in that layout, on random latents (batch, *latent_shape); keys "b{batch},{i},{layout}"."""
    dtype = next(decoder.parameters()).dtype
    out: dict = {"layers": [type(layer).__name__ for layer in decoder.layers]}
    for batch in batches:
        x = torch.randn(batch, *latent_shape, device=device, dtype=dtype)  # (B, C, T), ncl
        with torch.no_grad():
            for i, layer in enumerate(decoder.layers):
                for layout in DECODER_LAYOUTS:
                    inp = channels_last_2d(x) if layout == "channels_last_2d" else x
                    for _ in range(2):
                        layer(inp)
                    out[f"b{batch},{i},{layout}"] = 1000 * statistics.median(
                        timed(lambda m=layer, y=inp: m(y), 5, device))
                x = layer(x)  # the next layer's input
    return out


def fastest_layouts(times: dict, batch: int) -> tuple[str, ...]:
    """The layout each layer ran fastest in at `batch` (decoder_layer_times' figures)."""
    return tuple(min(DECODER_LAYOUTS, key=lambda name, i=i: times[f"b{batch},{i},{name}"])
                 for i in range(len(times["layers"])))


def uncompile(model) -> None:
    """Back to eager: the compiled forwards removed (each module's class forward again), dynamo's caches reset."""
    for module in (model.dit, model.autoencoder.decoder, model.conditioners["prompt"].encoder):
        if module is not None:
            vars(module).pop("forward", None)
    model.compile_mode = None
    torch._dynamo.reset()


def compiled_variant(model, batch: int, repeats: int, device, mode: str = "default", parts=DEFAULT_PARTS,
                     layout=None, noises: tuple[str, ...] = ("device",)) -> dict:
    """Captured figures (end to end and stage by stage) per noise source, with `parts` compiled in `mode` and the
    decoder in `layout`, compiled afresh; the compile time apart. The model is left eager, in its default layout."""
    uncompile(model)
    model.autoencoder.decoder.layout = layout
    try:
        compile_model(model, mode, parts)
        t0 = time.perf_counter()
        with torch.no_grad():
            generate(model, [PROMPT] * batch)  # compiles for this batch (noise does not change shapes)
        compile_s = time.perf_counter() - t0
        return {"compile_s": compile_s, "mode": mode, "parts": list(parts),
                "layout": list(layout) if isinstance(layout, tuple) else layout,
                **{noise: captured_figures(model, batch, repeats, device, noise) for noise in noises}}
    finally:
        uncompile(model)
        model.autoencoder.decoder.layout = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="skip the compiled sections' later rows past fractions of this")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script (nothing captured)")
    parser.add_argument("--preset", default="sao-small")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated, of {','.join(SECTIONS)} (default: all)")
    args = parser.parse_args()
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections takes a comma-separated selection of {list(SECTIONS)}, got {args.sections!r}")
    start = time.perf_counter()
    report: dict = {"sections": sections}

    def save(key: str, value) -> None:
        report[key] = value
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.json)
        print(f"[{time.perf_counter() - start:6.1f} s] {key}: {json.dumps(value)}", flush=True)

    def attempt(key: str, fn) -> None:
        """save(key, fn()), or the error's text: one failing section does not lose the others."""
        try:
            save(key, fn())
        except Exception as error:  # noqa: BLE001 - recorded, and the run goes on
            save(key, f"failed: {type(error).__name__}: {error}")

    def within(fraction: float, key: str) -> bool:
        """Whether `fraction` of the budget is still unspent; if not, `key` is saved as skipped."""
        used = time.perf_counter() - start
        if used <= args.budget_s * fraction:
            return True
        save(key, f"skipped: {used:.0f} s of the {args.budget_s:.0f} s budget used")
        return False

    # 1. the device
    device = torch.device(args.device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        save("device", {"name": props.name, "capability": f"{props.major}.{props.minor}", "torch": torch.__version__,
                        "cuda": torch.version.cuda, "sms": props.multi_processor_count,
                        "flash_sdp": torch.backends.cuda.flash_sdp_enabled(),
                        "bf16_matmul_tflops": matmul_rate(device) / 1e12})
    else:
        save("device", {"name": "cpu", "torch": torch.__version__,
                        "bf16_matmul_tflops": matmul_rate(device, 512) / 1e12})
    batches = ((1, 50), (8, 10), (32, 5)) if device.type == "cuda" else ((1, 2), (2, 2))
    (small, n_small), (large, n_large) = batches[0], batches[-1]

    # 2. agreement with fp32: one DiT forward under torch's bf16 settings, each component alone, auto
    if "agreement" in sections or "eager" in sections:
        torch.manual_seed(0)
        fp32 = fill_zero_weights(bench_model(args.preset, device=device, precision="fp32"))
    if "agreement" in sections:
        plan = resolve_precision("auto", device, fp32.config)
        save("auto_precision", str(plan))
        attempt("dit_forward_agreement", lambda: dit_forward_agreement(fp32))
        components = ["text_encoder=bf16", "dit=bf16", "decoder=bf16", "auto"]
        attempt("agreement_sao_small", lambda: precision_agreement(fp32, components, seed=3))
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
            attempt("agreement_sao_small_full_precision_reduction",
                    lambda: precision_agreement(fp32, ["auto"], seed=3))
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True
        builtin = load("default", device=device, precision="fp32")
        attempt("agreement_builtin", lambda: precision_agreement(builtin, ["auto", "dit=bf16"], seed=3))
        save("auto_builtin", str(resolve_precision("auto", device, builtin.config)))
        builtin = None  # freed

    # 3. eager, stage by stage
    if "eager" in sections:
        save("eager_fp32_b1", benchmark(fp32, args.preset, batch=1, repeats=5, warmup=2).as_dict())
    fp32 = None  # freed
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch.manual_seed(0)
    model = bench_model(args.preset, device=device, precision="auto")
    save("flops", flops(model))
    if "eager" in sections:
        attempt("decoder_layouts", lambda: decoder_layouts(model, (small, 8) if device.type == "cuda" else (small,)))
        save("eager_auto_b1", benchmark(model, args.preset, batch=1, repeats=10, warmup=2).as_dict())
        save("eager_auto_b8", benchmark(model, args.preset, batch=8, repeats=3, warmup=1).as_dict())

    # 4. captured
    if "captured" in sections:
        for batch, repeats in batches:
            attempt(f"captured_b{batch}", lambda b=batch, n=repeats: captured_figures(model, b, n, device))
        attempt(f"captured_b{small}_device_noise", lambda: captured_figures(model, small, n_small, device, "device"))
        attempt(f"captured_b{large}_device_noise", lambda: captured_figures(model, large, n_large, device, "device"))
        other = next(x for x in DECODER_LAYOUTS if x != DEFAULT_LAYOUT.get(device.type))
        model.autoencoder.decoder.layout = other
        attempt(f"captured_b{small}_decoder_{other}", lambda: captured_figures(model, small, n_small, device))
        model.autoencoder.decoder.layout = None

    # 5. compiled inside the graphs
    if "compiled" in sections and within(0.4, f"compiled_b{small}"):
        attempt(f"compiled_b{small}", lambda: compiled_variant(model, small, n_small, device,
                                                               noises=("host", "device")))
        for batch, repeats in batches[1:]:
            if within(0.75, f"compiled_b{batch}_device_noise"):
                attempt(f"compiled_b{batch}_device_noise",
                        lambda b=batch, n=repeats: compiled_variant(model, b, n, device))

    # 6. the levers toward 15 ms at batch 1, each against a baseline compiled in this run
    if "levers" in sections:
        cfg = model.config
        latent_shape = (cfg.autoencoder.latent_dim, cfg.latent_length)
        attempt("decoder_layer_times", lambda: decoder_layer_times(
            model.autoencoder.decoder, latent_shape, (small, 8) if device.type == "cuda" else (small,), device))
        if "compiled" not in sections:  # else compiled_b1 is the baseline
            attempt("lever_baseline", lambda: compiled_variant(model, small, n_small, device))
        times = report.get("decoder_layer_times")
        layout = fastest_layouts(times, small) if isinstance(times, dict) else None
        if layout is not None and within(0.5, "lever_decoder_layout_per_layer"):
            attempt("lever_decoder_layout_per_layer",
                    lambda: compiled_variant(model, small, n_small, device, layout=layout))
        every_part = ("text_encoder", "dit", "decoder")
        if within(0.55, "lever_text_encoder_compiled"):
            attempt("lever_text_encoder_compiled",
                    lambda: compiled_variant(model, small, n_small, device, parts=every_part))
        if within(0.6, "lever_max_autotune"):
            attempt("lever_max_autotune", lambda: compiled_variant(
                model, small, n_small, device, mode="max-autotune-no-cudagraphs"))
        if within(0.75, "lever_all"):  # the three together (the autotuning is cached from the row above)
            attempt("lever_all", lambda: compiled_variant(
                model, small, n_small, device, mode="max-autotune-no-cudagraphs", parts=every_part, layout=layout))


if __name__ == "__main__":
    main()
