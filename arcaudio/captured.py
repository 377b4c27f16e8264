"""Captured generation: text -> audio at one fixed shape (batch, seconds, sampler, steps), everything after the
tokenizer recorded once as CUDA graphs and replayed for every call.

Why: at batch 1 on a large GPU, a DiT step is hundreds of small kernels and the decoder dozens more; launching them
one by one from Python costs more than running them. A replay launches a whole recorded sequence at once. Three
graphs, replayed in order and sharing one memory pool, so that each stage can be timed: "text" (the text encoder
and the conditioning), "sampling" (the DiT's cross-attention keys and values and every sampler step), "decoder"
(the decoder and the finite check). What stays on the host per call: tokenizing the prompts, the noise (see
below), one copy of each into the graphs' input buffers, and one read of the finite flags at the end.

Noise:
- "host" (default): each clip's noise from a CPU generator seeded `seed + i`, drawn in the order
  `generation.sample` draws it, into one pinned buffer sent with one copy: the clips are `generate`'s, seed for
  seed, on every device (host work: about steps x B x C x T normal draws).
- "device": one `randn` on the device from a generator seeded `seed`: no host work, but clip i then depends on the
  seed and on its place in the batch, and differs from `generate`'s.

A text encoder that cannot be recorded (one that reads a value back to the host, which a graph cannot) runs
eagerly before the replays instead; `text_encoder_captured` says which. (transformers' T5 checks whether a padding
mask is all ones, a read-back, but not while a graph is being recorded: there it always applies the mask, which
gives the same result.) With `capture=False` (the default off CUDA)
the same static-buffer body runs eagerly, so the path is tested without a GPU and equals `generate` bit for bit.

The graphs hold their own memory pool (the decoder's activations at this batch); drop the object to free it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .compilation import GRAPH_MODES
from .generation import _check_prompts, _warn_truncated, resolve_seconds, sampling_settings
from .models.text_to_audio import TextToAudioModel
from .sampling import NoiseQueue, cfg_velocity

NOISE_SOURCES = ("host", "device")


class CapturedGenerator:
    """Generate batches of exactly `batch` clips of `seconds` (default: the model's window) by replaying CUDA graphs;
    sampler, steps and cfg_scale default to the model objective's (generation.DEFAULTS). Guidance is capturable
    only over the whole time range (no cfg_interval).

    Call it with `batch` prompts and a seed (clip i: seed + i) or one seed per clip; it returns `batch` clips
    (channels, round(seconds * sample_rate)) float32 on the model's device, as `generation.generate` does. A call
    is `prepare` (host work), each of `stages` run in order, then `result`; timing code may run them one by one.

    Raises:
        ValueError: for bad settings, a noise source not in NOISE_SOURCES, or capture=True off CUDA.
    """

    def __init__(self, model: TextToAudioModel, batch: int = 1, seconds: float | None = None,
                 steps: int | None = None, sampler: str | None = None, cfg_scale: float | None = None,
                 noise: str = "host", capture: bool | None = None, capture_text_encoder: bool = True):
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        if noise not in NOISE_SOURCES:
            raise ValueError(f"noise must be one of {list(NOISE_SOURCES)}, got {noise!r}")
        device = model.device
        capture = device.type == "cuda" if capture is None else capture
        if capture and getattr(model, "compile_mode", None) in GRAPH_MODES:
            raise ValueError(f"the model was compiled with mode {model.compile_mode!r}, which records CUDA graphs of "
                             "its own; compile with 'default' or 'max-autotune-no-cudagraphs' for captured generation")
        if capture and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device; the model is on {device.type!r} (use capture=False "
                             "to run the same path eagerly)")
        config = model.config
        self.model, self.batch = model, batch
        self.seconds = resolve_seconds(config, seconds)
        self.settings = sampling_settings(config.objective, sampler, steps, cfg_scale)
        self.length = round(self.seconds * config.sample_rate)
        self.dtype = model.dit.preprocess_conv.weight.dtype  # the latents' dtype, as generation.sample draws them
        self.latent_shape = (batch, config.dit.io_channels, config.latent_length)  # (B, C, T)

        with torch.no_grad():
            ids, mask = model.conditioners["prompt"].tokenize(["a captured generation"] * batch)  # (B, L) each
            self.input_ids, self.mask = ids.to(device), mask.to(device)
            self.seconds_tokens, _ = model.conditioners["seconds_total"]([self.seconds] * batch)  # (B, 1, D)
            self.cond = self._condition()  # static conditioning: what the sampling stage reads
            dry = NoiseQueue(None)
            self._decode(self._sample(self.cond, dry))  # counts the sampler's draws, and warms the kernels up
        self.draws = dry.drawn
        self.noise = torch.empty((self.draws, *self.latent_shape), dtype=self.dtype, device=device)  # (N, B, C, T)
        self._host_noise = (torch.empty(self.noise.shape, dtype=self.dtype, pin_memory=True)
                            if device.type == "cuda" and noise == "host" else None)
        self._device_generator = torch.Generator(device=device) if noise == "device" else None
        self.text_encoder_captured = False
        self.graphs: dict[str, torch.cuda.CUDAGraph] = {}
        if capture:
            self._capture(capture_text_encoder)
        self.stages = [("text", self._run_text), ("sampling", self._run_sampling), ("decoder", self._run_decoder)]

    # the stages' bodies: static inputs -> static outputs, no host work
    def _condition(self):
        text, _ = self.model.conditioners["prompt"].encode(self.input_ids, self.mask)  # (B, L, D)
        return self.model.assemble_conditioning(text, self.mask, self.seconds_tokens)

    def _sample(self, cond, queue: NoiseQueue) -> torch.Tensor:
        x = queue.draw(self.latent_shape, self.model.device, self.dtype)  # (B, C, T) at t = 1
        model_fn = cfg_velocity(self.model, cond, self.settings.cfg_scale)
        return self.settings.sample_fn(model_fn, x, self.settings.schedule(), generator=queue)  # (B, C, T)

    def _decode(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> audio (B, channels, length) float32, finite (B,) bool."""
        audio = self.model.autoencoder.decode(latents).float()[:, :, :self.length]  # (B, channels, length)
        return audio, torch.isfinite(audio).flatten(1).all(dim=1)

    def _capture(self, with_text_encoder: bool) -> None:
        device = self.model.device
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(2):  # warm-up off the default stream, as torch.cuda.graphs asks before capturing
                self._decode(self._sample(self._condition(), NoiseQueue(self.noise)))
        torch.cuda.current_stream(device).wait_stream(stream)
        pool = torch.cuda.graph_pool_handle()  # one pool: the graphs replay in the order they were captured
        if with_text_encoder:
            try:
                graph = torch.cuda.CUDAGraph()
                with torch.no_grad(), torch.cuda.graph(graph, pool=pool):
                    cond = self._condition()
                self.graphs["text"], self.cond = graph, cond
            except RuntimeError:  # the encoder read something back to the host: it runs eagerly instead
                with_text_encoder = False  # (transformers' T5 skips its one read-back, a mask check, while capturing)
        self.text_encoder_captured = with_text_encoder
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph, pool=pool):
            self.latents = self._sample(self.cond, NoiseQueue(self.noise))
        self.graphs["sampling"] = graph
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph, pool=pool):
            self.audio, self.finite = self._decode(self.latents)
        self.graphs["decoder"] = graph

    def _run_text(self) -> None:
        if "text" in self.graphs:
            self.graphs["text"].replay()
            return
        cond = self._condition()  # eager: into the buffers the sampling stage reads
        self.cond.cross_attn_cond.copy_(cond.cross_attn_cond)
        self.cond.global_cond.copy_(cond.global_cond)

    def _run_sampling(self) -> None:
        if "sampling" in self.graphs:
            self.graphs["sampling"].replay()
        else:
            self.latents = self._sample(self.cond, NoiseQueue(self.noise))

    def _run_decoder(self) -> None:
        if "decoder" in self.graphs:
            self.graphs["decoder"].replay()
        else:
            self.audio, self.finite = self._decode(self.latents)

    def prepare(self, prompts: Sequence[str] | str, seed: int | Sequence[int] = 0) -> None:
        """Host work of a call: check the prompts and seeds, tokenize, fill the noise; copies into the inputs."""
        prompts = _check_prompts(prompts, "prompts")
        if len(prompts) != self.batch:
            raise ValueError(f"this captured generator makes batches of {self.batch} clip(s); got {len(prompts)} "
                             "prompts (capture another for another batch size)")
        seeds = [seed + i for i in range(self.batch)] if isinstance(seed, int) else [int(s) for s in seed]
        if len(seeds) != self.batch:
            raise ValueError(f"got {len(seeds)} seeds for {self.batch} clips; give one seed (clip i uses seed + i) "
                             "or one each")
        ids, mask = self.model.conditioners["prompt"].tokenize(prompts)  # (B, L) each, on the host
        if mask[:, -1].any():  # a prompt fills the encoder's length: it may have been cut (tokenizing again tells)
            _warn_truncated(self.model, prompts)
        self.input_ids.copy_(ids, non_blocking=True)
        self.mask.copy_(mask, non_blocking=True)
        self._fill_noise(seeds, seeds[0])

    def _fill_noise(self, seeds: list[int], seed: int) -> None:
        if self._device_generator is not None:  # float32 draws, as sampling.batch_randn
            self.noise.copy_(torch.randn(self.noise.shape, generator=self._device_generator.manual_seed(seed),
                                         device=self.noise.device))
            return
        host = self._host_noise if self._host_noise is not None else self.noise  # (N, B, C, T)
        for i, s in enumerate(seeds):  # clip i's draws from its own generator, in generation.sample's order
            generator = torch.Generator().manual_seed(int(s))
            for k in range(self.draws):  # float32 draws, cast on assignment: as sampling.batch_randn
                host[k, i] = torch.randn(self.latent_shape[1:], generator=generator)
        if host is not self.noise:
            self.noise.copy_(host, non_blocking=True)

    def result(self) -> list[torch.Tensor]:
        """The clips of the last call, copied out of the graph's buffers.

        Raises:
            FloatingPointError: when a clip is not finite (NaN or inf), naming it.
        """
        bad = [i for i, ok in enumerate(self.finite.tolist()) if not ok]
        if bad:
            raise FloatingPointError(f"generated audio of clip(s) {bad} is not finite (NaN or inf); check the "
                                     "model's weights and the sampling settings")
        return list(self.audio.clone().unbind(0))

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str] | str, seed: int | Sequence[int] = 0) -> list[torch.Tensor]:
        self.prepare(prompts, seed)
        for _, run in self.stages:
            run()
        return self.result()
