"""Timing of text -> audio, stage by stage: text encoder, each DiT step, decoder, total; medians over repeats.

Random weights time the same as trained ones, so a preset is enough. A preset whose prompt encoder is an external
pre-trained T5 (`sao-small`) gets a random stand-in of the same shape (`t5-base`: 12 layers, d_model 768, d_ff
3072), tokenised byte-level: its compute per token is that of T5-base.
"""

from __future__ import annotations

import copy
import resource
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from .config import ModelConfig, T5ArchConfig
from .generation import resolve_seconds, sampling_settings
from .loading import build_model, load_config
from .models.text_to_audio import TextToAudioModel
from .precision import Precision, apply_precision, hardware, precision_of, resolve_precision
from .sampling import batch_randn, cfg_velocity


@dataclass
class BenchResult:
    """Medians over repeats, in seconds, for one batch of `batch` clips of `seconds` each."""

    model: str
    device: str
    precision: str  # per component: text_encoder=..,dit=..,decoder=.. (arcaudio.precision)
    hardware: str  # what `auto` decided from, e.g. "cpu (x86_64: avx2 avx512_bf16 avx512_vnni avx512f)"
    batch: int
    seconds: float
    steps: int
    sampler: str
    cfg_scale: float
    text_s: float
    dit_step_s: float  # one sampler step (both CFG branches when cfg_scale != 1)
    sampling_s: float  # every step, with the sampler's own work
    decoder_s: float
    total_s: float
    peak_memory_mb: float  # CUDA: peak allocated; CPU: the process's peak resident set so far
    repeats: int
    warmup_s: float = 0.0  # the warm-up generations, where a compiled model compiles (not in the medians)
    compile_mode: str | None = None  # torch.compile mode (arcaudio.compilation), None: eager
    capture_s: float | None = None  # captured generation (arcaudio.captured): recording its graphs; None: not captured
    noise: str = "host"  # captured generation: where the noise is drawn (arcaudio.captured.NOISE_SOURCES)

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio made per second of compute (higher is faster)."""
        return self.batch * self.seconds / self.total_s

    def table(self) -> str:
        rows = [("text encoder", self.text_s), ("DiT step", self.dit_step_s),
                (f"sampling ({self.steps} steps)", self.sampling_s), ("decoder", self.decoder_s),
                ("total", self.total_s)]
        head = (f"{self.model} on {self.hardware}, {self.precision}, batch {self.batch}, {self.seconds:.2f} s, "
                f"{self.sampler} {self.steps} steps, CFG {self.cfg_scale:g}; medians of {self.repeats}")
        lines = [head] + [f"  {name:<22}{value * 1000:>10.1f} ms" for name, value in rows]
        lines.append(f"  real-time factor {self.realtime_factor:.1f}x, peak memory {self.peak_memory_mb:.0f} MB")
        if self.compile_mode:
            lines.append(f"  compiled ({self.compile_mode}): warm-up with compilation {self.warmup_s:.1f} s")
        if self.capture_s is not None:
            lines.append(f"  captured as CUDA graphs in {self.capture_s:.2f} s, then warm-up {self.warmup_s:.2f} s; "
                         f"noise drawn on the {self.noise}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {**asdict(self), "realtime_factor": self.realtime_factor}


def bench_model(source: str, device: str = "cpu", precision: str | Precision | None = None) -> TextToAudioModel:
    """A random-weight model of a preset or checkpoint config, without the autoencoder's encoder, built in
    `precision` one component at a time (see loading.build_model); an external T5 gets a T5-base-sized stand-in."""
    config: ModelConfig = load_config(source)
    if not config.conditioning.prompt.builtin:
        config.conditioning.prompt.arch = T5ArchConfig(d_model=config.conditioning.cond_dim)  # T5-base otherwise
    plan = resolve_precision(precision, device, config)
    return build_model(config.validate(), device=device, precision=plan, encoder=False).eval().requires_grad_(False)


@torch.no_grad()
def fill_zero_weights(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> torch.nn.Module:
    """Give every all-zero weight matrix or kernel (the zero-initialised output layers of a fresh DiT, whose
    blocks are then identities) N(0, std^2) values, in place, so that a comparison on random weights sees every
    layer. Returns the model."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        if param.ndim >= 2 and param.is_floating_point() and not param.any():
            param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model


@torch.no_grad()
def precision_agreement(model: TextToAudioModel, precisions: list[str | Precision], prompts: list[str] | None = None,
                        seconds: float | None = None, steps: int | None = None, sampler: str | None = None,
                        seed: int = 0) -> list[dict[str, float]]:
    """How far each precision moves the output: the same prompts and seeds sampled with `model` (fp32, left
    untouched; sampled once) and with a copy cast or quantised to the precision. Returns, per precision, the mean
    over clips of the final latents' cosine similarity (flattened per clip), of the decoded audio's SNR against the
    fp32 audio and of the SNR of its STFT magnitudes, in dB, plus the worst clip of each, and the precision."""
    from .generation import generate

    prompts = prompts or ["a warm sine tone, soft and steady", "loud white noise on the left",
                          "a rising sweep, quiet, in the center", "a drum loop at 120 bpm, punchy"]

    def sample(m: TextToAudioModel) -> tuple[list[torch.Tensor], torch.Tensor]:
        finals: list[torch.Tensor] = []
        audio = generate(m, prompts, seconds=seconds, steps=steps, sampler=sampler, seed=seed,
                         callback=lambda i, x: finals.append(x))
        return audio, finals[-1].flatten(1).float()  # clips, (B, C * T) the sampler's last state

    reference_audio, reference_latents = sample(model)
    results = []
    for precision in precisions:
        plan = resolve_precision(precision, model.device, model.config)
        audio, latents = sample(apply_precision(copy.deepcopy(model), plan))
        cosine = torch.nn.functional.cosine_similarity(reference_latents, latents, dim=1)  # (B,)
        snr = torch.stack([_snr_db(a, b) for a, b in zip(reference_audio, audio)])  # (B,)
        spec_snr = torch.stack([_snr_db(_magnitudes(a), _magnitudes(b)) for a, b in zip(reference_audio, audio)])
        results.append({"precision": str(plan), "latent_cosine": float(cosine.mean()),
                        "latent_cosine_min": float(cosine.min()), "audio_snr_db": float(snr.mean()),
                        "audio_snr_db_min": float(snr.min()), "spectrogram_snr_db": float(spec_snr.mean()),
                        "spectrogram_snr_db_min": float(spec_snr.min()), "clips": len(prompts)})
    return results


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """10 log10(|reference|^2 / |reference - other|^2), a 0-dim tensor."""
    return 10 * torch.log10(reference.pow(2).sum() / (reference - other).pow(2).sum().clamp_min(1e-20))


def _magnitudes(audio: torch.Tensor) -> torch.Tensor:
    """(C, L) -> STFT magnitudes (C, 1025, frames), window 2048, hop 512: what the ear hears of the difference
    (a decoder that accumulates phase turns tiny latent changes into large waveform differences)."""
    return torch.stft(audio.float().cpu(), 2048, 512, window=torch.hann_window(2048), return_complex=True).abs()


def _now(device: torch.device) -> float:
    """perf_counter after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class _StepClock:
    """A sampler callback recording each step's wall time."""

    def __init__(self, device: torch.device):
        self.device, self.times, self.last = device, [], 0.0

    def start(self) -> None:
        self.last = _now(self.device)

    def __call__(self, i: int, x: torch.Tensor) -> None:
        now = _now(self.device)
        self.times.append(now - self.last)
        self.last = now


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@torch.no_grad()
def benchmark(model: TextToAudioModel, name: str = "model", batch: int = 1, seconds: float | None = None,
              steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None,
              repeats: int = 3, warmup: int = 1, decode_chunk: int | None = None) -> BenchResult:
    """Time `warmup` + `repeats` generations of `batch` clips, stage by stage, on the model's device and dtype.
    `decode_chunk`: decode that many latent frames at a time (see AudioAutoencoder.decode)."""
    if repeats < 1 or warmup < 0 or batch < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, batch >= 1; got {repeats}, {warmup}, {batch}")
    config = model.config
    seconds = resolve_seconds(config, seconds)
    settings = sampling_settings(config.objective, sampler, steps, cfg_scale)
    device, dtype = model.device, model.dit.preprocess_conv.weight.dtype  # the latents' dtype
    prompts = [f"benchmark prompt number {i}: a short burst of sound" for i in range(batch)]
    shape = (batch, config.dit.io_channels, config.latent_length)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times: dict[str, list[float]] = {"text": [], "step": [], "sampling": [], "decoder": [], "total": []}

    warmup_s = 0.0
    for run in range(warmup + repeats):
        steps_clock = _StepClock(device)
        t0 = _now(device)
        cond = model.condition(prompts, seconds)
        t1 = _now(device)
        x = batch_randn(shape, torch.Generator().manual_seed(run), device, dtype)
        steps_clock.start()
        latents = settings.sample_fn(cfg_velocity(model, cond, settings.cfg_scale), x,
                                     settings.schedule(),
                                     generator=torch.Generator().manual_seed(run), callback=steps_clock)
        t2 = _now(device)
        model.autoencoder.decode(latents, chunk_frames=decode_chunk)
        t3 = _now(device)
        if run < warmup:
            warmup_s += t3 - t0
        else:
            times["text"].append(t1 - t0)
            times["step"].append(statistics.median(steps_clock.times))
            times["sampling"].append(t2 - t1)
            times["decoder"].append(t3 - t2)
            times["total"].append(t3 - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return BenchResult(name, str(device), str(precision_of(model)), hardware(device).describe(), batch, seconds,
                       settings.steps, settings.sampler, settings.cfg_scale, med["text"], med["step"],
                       med["sampling"], med["decoder"], med["total"], _peak_memory_mb(device), repeats, warmup_s,
                       getattr(model, "compile_mode", None))


@torch.no_grad()
def benchmark_captured(model: TextToAudioModel, name: str = "model", batch: int = 1, seconds: float | None = None,
                       steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None,
                       repeats: int = 3, warmup: int = 1, noise: str = "host") -> BenchResult:
    """As `benchmark`, for captured generation (arcaudio.captured: the stages recorded as CUDA graphs once, then
    replayed). "text encoder" is the host work (tokenizing, the noise, the copies) plus the text stage; "decoder"
    includes reading back the finite flags and copying the clips out; the DiT step is the sampling stage / steps.
    The capture's time is reported apart (`capture_s`), as is the warm-up's."""
    from .captured import CapturedGenerator

    if repeats < 1 or warmup < 0 or batch < 1:
        raise ValueError(f"need repeats >= 1, warmup >= 0, batch >= 1; got {repeats}, {warmup}, {batch}")
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = _now(device)
    gen = CapturedGenerator(model, batch, seconds, steps, sampler, cfg_scale, noise=noise)
    capture_s = _now(device) - t0
    prompts = [f"benchmark prompt number {i}: a short burst of sound" for i in range(batch)]
    times: dict[str, list[float]] = {"text": [], "sampling": [], "decoder": [], "total": []}
    warmup_s = 0.0
    for run in range(warmup + repeats):
        marks = [_now(device)]
        gen.prepare(prompts, seed=run)
        for _, stage in gen.stages:
            stage()
            marks.append(_now(device))
        gen.result()
        marks[-1] = _now(device)
        if run < warmup:
            warmup_s += marks[-1] - marks[0]
            continue
        for key, (a, b) in zip(("text", "sampling", "decoder"), zip(marks, marks[1:])):
            times[key].append(b - a)
        times["total"].append(marks[-1] - marks[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    settings = gen.settings
    return BenchResult(name, str(device), str(precision_of(model)), hardware(device).describe(), batch, gen.seconds,
                       settings.steps, settings.sampler, settings.cfg_scale, med["text"],
                       med["sampling"] / settings.steps, med["sampling"], med["decoder"], med["total"],
                       _peak_memory_mb(device), repeats, warmup_s, getattr(model, "compile_mode", None), capture_s,
                       noise)
