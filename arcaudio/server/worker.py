"""The one thread that owns the model: a bounded queue of jobs, compatible jobs batched into one forward pass,
progress after every sampling step, cancellation between steps.

Jobs are independent of each other and of any earlier request (nothing is kept once a job is answered), so several
server processes can run side by side behind a load balancer.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..creative.loops import seamless_loop
from ..data.audio import audio_bytes
from ..data.spectrogram import spectrogram_png
from ..generation import GenerationCancelled, condition, decode, sample
from ..models.text_to_audio import TextToAudioModel
from ..nn.lora import adapters_applied


class QueueFull(Exception):
    """The queue holds `max_queue` jobs already: the caller should retry later (HTTP 503 + Retry-After)."""


@dataclass(frozen=True)
class JobRequest:
    """One validated request: `variations` clips of `prompt`, seeds seed, seed + 1, ...; audio-to-audio when
    `init_audio` ((channels, L) at the model's rate) is given, at `strength`."""

    prompt: str
    seconds: float
    steps: int
    seed: int = 0
    variations: int = 1
    cfg_scale: float | None = None
    audio_format: str = "wav"
    spectrogram: bool = True
    init_audio: torch.Tensor | None = None
    strength: float = 1.0
    loop_samples: int | None = None  # a loop: each clip closed with creative.loops.seamless_loop at this length
    crossfade_samples: int = 0
    loras: tuple = ()  # ((adapter path, scale), ...) merged for this job only (nn/lora.py adapters_applied)

    def batch_key(self) -> tuple | None:
        """Requests with the same key share a forward pass; audio-to-audio runs alone."""
        if self.init_audio is not None:
            return None
        return self.seconds, self.steps, self.cfg_scale, self.loop_samples, self.loras


@dataclass
class Job:
    """A request in flight. `emit` hands events to whoever waits (an asyncio queue on the server's loop):
    ("progress", {"step", "steps"}), then ("result", {...}) or ("error", exception) or ("cancelled", None)."""

    request: JobRequest
    emit: Callable[[str, object], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        self.cancelled.set()


def asyncio_emitter(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> Callable[[str, object], None]:
    """An `emit` for Job that puts (kind, payload) on an asyncio queue from the worker thread."""
    return lambda kind, payload: loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))


class GenerationWorker:
    """Runs jobs one batch at a time on a daemon thread. `submit` raises QueueFull past `max_queue` waiting jobs;
    up to `max_batch` clips of compatible waiting jobs (same length, steps and guidance, text only) share one
    forward pass, each clip still drawn from its own seed."""

    def __init__(self, model: TextToAudioModel, max_queue: int = 16, max_batch: int = 8):
        if max_queue < 1 or max_batch < 1:
            raise ValueError(f"max_queue and max_batch must be >= 1, got {max_queue}, {max_batch}")
        self.model, self.max_queue, self.max_batch = model, max_queue, max_batch
        self._pending: collections.deque[Job] = collections.deque()
        self._cv = threading.Condition()
        self._stopped = False
        self.busy = False
        self.completed = 0
        self._thread = threading.Thread(target=self._run, name="arcaudio-worker", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> int:
        """Queue a job; returns how many jobs wait before it. Raises QueueFull."""
        with self._cv:
            if self._stopped:
                raise RuntimeError("the worker has stopped")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(f"{len(self._pending)} jobs are waiting (the limit is {self.max_queue})")
            self._pending.append(job)
            self._cv.notify()
            return len(self._pending) - 1

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            for job in self._pending:
                job.emit("cancelled", None)
            self._pending.clear()
            self._cv.notify()
        self._thread.join(timeout=30)

    def _next_batch(self) -> list[Job] | None:
        with self._cv:
            while not self._pending and not self._stopped:
                self._cv.wait()
            if self._stopped:
                return None
            first = self._pending.popleft()
            batch, clips = [first], first.request.variations
            key = first.request.batch_key()
            if key is not None:
                for job in list(self._pending):
                    if job.request.batch_key() == key and clips + job.request.variations <= self.max_batch:
                        self._pending.remove(job)
                        batch.append(job)
                        clips += job.request.variations
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [job for job in batch if not job.cancelled.is_set()]
            for job in batch:
                if job.cancelled.is_set():
                    job.emit("cancelled", None)
            if not live:
                continue
            self.busy = True
            try:
                with adapters_applied(self.model, list(live[0].request.loras)):
                    self._generate(live)
            except GenerationCancelled:
                for job in live:
                    job.emit("cancelled", None)
            except Exception as err:  # noqa: BLE001 - every job must be answered; the server maps the error
                for job in live:
                    job.emit("error", err)
            finally:
                self.busy = False
                self.completed += len(live)

    @torch.no_grad()
    def _generate(self, jobs: list[Job]) -> None:
        model, first = self.model, jobs[0].request
        started = time.perf_counter()
        prompts = sorted({job.request.prompt for job in jobs})
        encoded = condition(model, prompts, first.seconds)
        index, seeds = [], []
        for job in jobs:
            r = job.request
            index += [prompts.index(r.prompt)] * r.variations
            seeds += [r.seed + v for v in range(r.variations)]
        init = None if first.init_audio is None else [first.init_audio] * first.variations

        def progress(i: int, x: torch.Tensor) -> None:
            if all(job.cancelled.is_set() for job in jobs):
                raise GenerationCancelled
            for job in jobs:
                if not job.cancelled.is_set():
                    job.emit("progress", {"step": i + 1, "steps": first.steps})

        latents = sample(model, encoded.select(index), seeds, steps=first.steps, cfg_scale=first.cfg_scale,
                         init_audio=init, strength=first.strength, callback=progress)
        clips = decode(model, latents, first.seconds)  # raises FloatingPointError on non-finite audio
        compute = time.perf_counter() - started
        start = 0
        for job in jobs:
            r = job.request
            mine, start = clips[start:start + r.variations], start + r.variations
            if r.loop_samples is not None:
                mine = [seamless_loop(clip, r.loop_samples, r.crossfade_samples) for clip in mine]
            if job.cancelled.is_set():
                job.emit("cancelled", None)
                continue
            job.emit("result", {
                "clips": [_encode_clip(clip, model.config.sample_rate, r, seed)
                          for clip, seed in zip(mine, range(r.seed, r.seed + r.variations))],
                "compute_s": compute, "batch_clips": len(clips),
                "seconds_per_clip": compute / len(clips),
                "latency_s": time.perf_counter() - job.submitted,
            })


def _encode_clip(clip: torch.Tensor, sample_rate: int, request: JobRequest, seed: int) -> dict:
    out = {"seed": seed, "format": request.audio_format, "seconds": clip.shape[-1] / sample_rate,
           "audio": base64.b64encode(audio_bytes(clip, sample_rate, request.audio_format)).decode("ascii")}
    if request.spectrogram:
        out["spectrogram_png"] = base64.b64encode(spectrogram_png(clip, sample_rate)).decode("ascii")
    return out
