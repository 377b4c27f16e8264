"""The HTTP API and the web page (FastAPI): text-to-audio with variations, audio-to-audio from an upload, progress
streamed as server-sent events, cancel by closing the connection, the model's info and limits, health.

    app = create_app(load("default", precision="auto", encoder=True), "default")   # then: uvicorn.run(app)

Every /v1 call needs `Authorization: Bearer TOKEN` when a token is set (/health and the page itself do not, so a
load balancer can probe and a browser can load the page; the page asks for the token). Uploads are capped and
decoded from memory by the audio reader only; nothing a client sends is used as a path.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from ..data.audio import AudioReadError, read_audio_bytes
from ..generation import prepare_init_audio, sampling_settings
from ..models.text_to_audio import TextToAudioModel
from ..precision import hardware, precision_of
from .worker import GenerationWorker, Job, JobRequest, QueueFull, asyncio_emitter

STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_prompt_chars: int = 500
    max_variations: int = 8
    max_steps: int = 64
    max_upload_bytes: int = 20 * 2**20
    retry_after_s: int = 2  # told to clients when the queue is full


class RequestError(ValueError):
    """A request the server refuses, with the HTTP status to answer and a message naming the bad value."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class LoraRef(BaseModel):
    name: str = Field(description="an adapter the server was started with (`arcaudio serve --lora NAME=PATH`)")
    scale: float = Field(1.0, description="adapter strength")


class GenerateBody(BaseModel):
    """A text-to-audio request (limits: GET /v1/info)."""

    prompt: str = Field(description="what to generate")
    seconds: float | None = Field(None, description="clip length (default: the model's window)")
    steps: int | None = Field(None, description="sampling steps (default: the model's, 8 for ARC models)")
    seed: int = Field(0, description="variation v uses seed + v")
    variations: int = Field(1, description="clips of this prompt, each from its own seed")
    cfg_scale: float | None = Field(None, description="classifier-free guidance (default: the model's)")
    format: Literal["wav", "flac"] = "wav"
    spectrogram: bool = Field(True, description="include a PNG spectrogram of each clip")
    lora: list[LoraRef] = Field(default_factory=list, description="LoRA adapters for this request, by name")


class LoopBody(BaseModel):
    """A beat-aligned loop: whole bars (or beats) at a tempo, optionally from a rhythmic guide (limits: /v1/info)."""

    prompt: str
    bpm: float = Field(description="tempo, 20-400")
    bars: float | None = Field(None, description="length in 4/4 bars (default 1 unless beats is given)")
    beats: float | None = Field(None, description="length in beats, instead of bars")
    guide: Literal["click", "drums"] | None = Field(None, description="a rhythmic guide used as init audio")
    strength: float = Field(0.2, description="with a guide: how far from it, in (0, 1] (default: GUIDE_STRENGTH)")
    steps: int | None = None
    seed: int = 0
    variations: int = 1
    format: Literal["wav", "flac"] = "wav"
    spectrogram: bool = True


def create_app(model: TextToAudioModel, model_name: str, token: str | None = None, max_queue: int = 16,
               max_batch: int = 8, limits: Limits = Limits(), adapters: dict[str, str] | None = None):
    """The FastAPI app serving `model` (loaded once, owned by one worker thread; see worker.py). `adapters`: LoRA
    adapter files by name, which requests may ask for (merged per batch, restored after)."""
    from ..nn.lora import read_adapter

    adapters = dict(adapters or {})
    for path in adapters.values():
        read_adapter(path)  # a bad file fails at start, not on a request
    config = model.config
    default_sampler, default_steps, default_cfg = (
        lambda s: (s.sampler, s.steps, s.cfg_scale))(sampling_settings(config.objective))
    worker = GenerationWorker(model, max_queue=max_queue, max_batch=max_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        worker.stop()  # waiting jobs are answered "cancelled"

    app = FastAPI(title="arcaudio", version=_version(), lifespan=lifespan,
                  description="Fast text-to-audio: text-to-audio with variations, audio-to-audio, progress events.")
    app.state.worker = worker

    def check_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise RequestError(401, "this server needs 'Authorization: Bearer <token>' (the token given to "
                                    "`arcaudio serve --token` or ARCAUDIO_TOKEN)")

    auth = [Depends(check_token)]

    @app.exception_handler(RequestError)
    async def _refused(request: Request, err: RequestError):
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        if err.status == 503:
            headers = {"Retry-After": str(limits.retry_after_s)}
        return JSONResponse({"detail": str(err)}, status_code=err.status, headers=headers)

    def job_request(prompt, seconds, steps, seed, variations, cfg_scale, fmt, spectrogram, init_audio=None,
                    strength=1.0) -> JobRequest:
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError(422, f"prompt must be non-empty text, got {prompt!r}")
        if len(prompt) > limits.max_prompt_chars:
            raise RequestError(422, f"prompt has {len(prompt)} characters; at most {limits.max_prompt_chars}")
        seconds = config.max_seconds if seconds is None else seconds
        if not (math.isfinite(seconds) and 0 < seconds <= config.max_seconds):
            raise RequestError(422, f"seconds must be in (0, {config.max_seconds:.2f}] for this model, got {seconds}")
        steps = default_steps if steps is None else steps
        if not 1 <= steps <= limits.max_steps:
            raise RequestError(422, f"steps must be in [1, {limits.max_steps}], got {steps}")
        if not 1 <= variations <= limits.max_variations:
            raise RequestError(422, f"variations must be in [1, {limits.max_variations}], got {variations}")
        if not 0 <= seed < 2**63 - limits.max_variations:
            raise RequestError(422, f"seed must be in [0, 2^63 - {limits.max_variations}), got {seed}")
        if cfg_scale is not None and not (math.isfinite(cfg_scale) and 0 <= cfg_scale <= 20):
            raise RequestError(422, f"cfg_scale must be a finite number in [0, 20], got {cfg_scale}")
        if not (math.isfinite(strength) and 0 < strength <= 1):
            raise RequestError(422, f"strength must be in (0, 1], got {strength}")
        return JobRequest(prompt.strip(), float(seconds), int(steps), int(seed), int(variations), cfg_scale, fmt,
                          spectrogram, init_audio, float(strength))

    async def run(request: Request, job_req: JobRequest, stream: bool):
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job = Job(job_req, asyncio_emitter(loop, events))
        try:
            position = worker.submit(job)
        except QueueFull as err:
            raise RequestError(503, f"busy: {err}; retry in {limits.retry_after_s} s") from None
        if stream:
            return StreamingResponse(_event_stream(job, events, position), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        while True:  # wait for the answer; a client that hangs up cancels its job
            try:
                kind, payload = await asyncio.wait_for(events.get(), timeout=0.25)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    job.cancel()
                    return Response(status_code=499)
                continue
            if kind != "progress":
                return _final(kind, payload)

    @app.get("/health", tags=["service"])
    def health():
        """Liveness and load: jobs waiting, whether a batch is running, jobs answered."""
        return {"status": "ok", "queued": worker.queued, "max_queue": worker.max_queue, "busy": worker.busy,
                "completed": worker.completed}

    @app.get("/v1/info", dependencies=auth, tags=["service"])
    def info():
        """The model, its defaults and the limits of one request."""
        return {"model": model_name, "sample_rate": config.sample_rate, "channels": config.autoencoder.io_channels,
                "max_seconds": config.max_seconds, "objective": config.objective,
                "defaults": {"sampler": default_sampler, "steps": default_steps, "cfg_scale": default_cfg},
                "precision": str(precision_of(model)), "hardware": hardware(model.device).describe(),
                "limits": asdict(limits), "max_queue": worker.max_queue, "max_batch": worker.max_batch,
                "lora_adapters": sorted(adapters),
                "token_required": token is not None}

    def lora_pairs(refs: list[LoraRef]) -> tuple:
        for ref in refs:
            if ref.name not in adapters:
                raise RequestError(422, f"unknown LoRA adapter {ref.name!r}; this server has {sorted(adapters)}")
            if not (math.isfinite(ref.scale) and -4 <= ref.scale <= 4):
                raise RequestError(422, f"LoRA scale must be in [-4, 4], got {ref.scale}")
        return tuple((adapters[r.name], float(r.scale)) for r in refs)

    @app.post("/v1/generate", dependencies=auth, tags=["generate"])
    async def generate_clips(body: GenerateBody, request: Request, stream: bool = False):
        """Text to audio: `variations` clips as base64 audio (+ PNG spectrograms), with timings. With
        `?stream=true` (or `Accept: text/event-stream`): server-sent events `queued`, `progress` (after every
        sampling step), then `result` (the same JSON) or `error`; closing the stream cancels the job."""
        job_req = job_request(body.prompt, body.seconds, body.steps, body.seed, body.variations, body.cfg_scale,
                              body.format, body.spectrogram)
        job_req = dataclasses.replace(job_req, loras=lora_pairs(body.lora))
        return await run(request, job_req, stream or "text/event-stream" in request.headers.get("accept", ""))

    @app.post("/v1/generate/audio", dependencies=auth, tags=["generate"],
              response_class=Response, responses={200: {"content": {"audio/wav": {}, "audio/flac": {}}}})
    async def generate_audio(body: GenerateBody, request: Request):
        """Text to audio, one clip, answered as the audio file itself (for apps and `curl -o`)."""
        if body.variations != 1:
            raise RequestError(422, f"/v1/generate/audio answers one clip; got variations={body.variations} (use "
                                    "/v1/generate for several)")
        job_req = job_request(body.prompt, body.seconds, body.steps, body.seed, 1, body.cfg_scale, body.format,
                              False)
        answer = await run(request, job_req, stream=False)
        if answer.status_code != 200:
            return answer
        clip = json.loads(answer.body)["clips"][0]
        return Response(base64.b64decode(clip["audio"]), media_type=f"audio/{body.format}",
                        headers={"X-Seed": str(clip["seed"])})

    @app.post("/v1/generate/loop", dependencies=auth, tags=["generate"])
    async def generate_loop(body: LoopBody, request: Request, stream: bool = False):
        """A seamless loop at `bpm`: the tempo said in the prompt, the length whole bars or beats (refused when it
        exceeds the model's window), optionally sampled from a click or drum guide at `strength`. Answered as
        /v1/generate answers; each clip repeats end to start without a click."""
        from ..creative.loops import CROSSFADE_S, TAIL_S, guide_track, loop_seconds, tempo_prompt

        try:
            bars = 1 if body.bars is None and body.beats is None else body.bars
            seconds = loop_seconds(body.bpm, bars, body.beats)
        except ValueError as err:
            raise RequestError(422, str(err)) from None
        total = seconds + TAIL_S
        if total > config.max_seconds:
            raise RequestError(422, f"{seconds:.2f} s at {body.bpm:g} bpm plus {TAIL_S * 1000:.0f} ms generated past "
                                    f"the loop point exceeds this model's {config.max_seconds:.2f} s window; at most "
                                    f"{math.floor((config.max_seconds - TAIL_S) * body.bpm / 60)} beats fit")
        init = None if body.guide is None else guide_track(body.guide, body.bpm, total, config.sample_rate,
                                                             config.autoencoder.io_channels, body.seed)
        job_req = job_request(tempo_prompt(body.prompt, body.bpm), total, body.steps, body.seed, body.variations,
                              None, body.format, body.spectrogram, init, body.strength if init is not None else 1.0)
        job_req = dataclasses.replace(job_req, loop_samples=round(seconds * config.sample_rate),
                                      crossfade_samples=round(CROSSFADE_S * config.sample_rate))
        return await run(request, job_req, stream or "text/event-stream" in request.headers.get("accept", ""))

    @app.post("/v1/audio-to-audio", dependencies=auth, tags=["generate"])
    async def audio_to_audio(request: Request, stream: bool = False):
        """Audio to audio (style transfer, voice to sound): multipart form with `file` (WAV, FLAC, Ogg or MP3, at
        most `limits.max_upload_bytes`), `prompt`, `strength` in (0, 1] (lower: closer to the input), `voice=true`
        for a voice recording (high-passed and normalised first: voice-to-audio) and the fields of /v1/generate.
        The clip keeps the input's timing; its length is the input's, up to the window."""
        length = request.headers.get("content-length")
        if length is not None and int(length) > limits.max_upload_bytes + 65536:
            raise RequestError(413, f"upload of {int(length)} bytes; at most {limits.max_upload_bytes}")
        form = await request.form(max_files=1, max_fields=16)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise RequestError(422, "a multipart field 'file' with the input audio is required")
        data = await upload.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise RequestError(413, f"upload larger than {limits.max_upload_bytes} bytes")
        try:
            audio, rate = read_audio_bytes(data, "upload")
        except AudioReadError as err:
            raise RequestError(415, f"{err.reason}; send WAV, FLAC, Ogg or MP3 audio") from None
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if fields.get("voice", "false").lower() == "true":  # a voice: high-passed, normalised (creative/voice.py)
            from ..creative.voice import prepare_voice

            audio = prepare_voice(audio, rate)
        init = prepare_init_audio(audio, rate, model)  # (channels, L) at the model's rate
        seconds = _number(fields, "seconds", float, None)
        if seconds is None:
            seconds = min(init.shape[-1] / config.sample_rate, config.max_seconds)
        fmt = fields.get("format", "wav")
        if fmt not in ("wav", "flac"):
            raise RequestError(422, f"format must be 'wav' or 'flac', got {fmt!r}")
        job_req = job_request(fields.get("prompt", ""), seconds, _number(fields, "steps", int, None),
                              _number(fields, "seed", int, 0), _number(fields, "variations", int, 1),
                              _number(fields, "cfg_scale", float, None), fmt,
                              fields.get("spectrogram", "true").lower() != "false", init,
                              _number(fields, "strength", float, 0.5))
        return await run(request, job_req, stream or "text/event-stream" in request.headers.get("accept", ""))

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _number(fields: dict, name: str, kind, default):
    if name not in fields or fields[name] == "":
        return default
    try:
        return kind(fields[name])
    except ValueError:
        raise RequestError(422, f"{name} must be {'an integer' if kind is int else 'a number'}, got "
                                f"{fields[name]!r}") from None


def _final(kind: str, payload):
    if kind == "result":
        return JSONResponse(payload)
    if kind == "cancelled":
        return JSONResponse({"detail": "cancelled"}, status_code=499)
    status, message = _error_status(payload)
    return JSONResponse({"detail": message}, status_code=status)


def _error_status(err: Exception) -> tuple[int, str]:
    if isinstance(err, ValueError):
        return 422, str(err)
    if isinstance(err, FloatingPointError):
        return 500, f"the model produced non-finite audio; nothing was sent ({err})"
    return 500, f"generation failed: {type(err).__name__}: {err}"


async def _event_stream(job: Job, events: asyncio.Queue, position: int):
    """Server-sent events for one job; a client that closes the stream cancels it."""
    started = time.perf_counter()
    try:
        yield _sse("queued", {"position": position})
        while True:
            kind, payload = await events.get()
            if kind == "progress":
                yield _sse("progress", {**payload, "elapsed_s": time.perf_counter() - started})
                continue
            if kind == "result":
                yield _sse("result", payload)
            elif kind == "cancelled":
                yield _sse("cancelled", {})
            else:
                status, message = _error_status(payload)
                yield _sse("error", {"status": status, "detail": message})
            return
    finally:
        job.cancel()  # no-op once answered; cancels when the client went away mid-job


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _version() -> str:
    from .. import __version__

    return __version__
