"""`arcaudio serve`'s API: every endpoint, its errors, the token, the queue limit, batching and cancellation."""

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from arcaudio.generation import generate  # noqa: E402
from arcaudio.loading import load  # noqa: E402
from arcaudio.server.app import Limits, create_app  # noqa: E402

SECONDS, STEPS = 0.5, 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load("tiny")


@pytest.fixture
def client(model):
    with TestClient(create_app(model, "tiny", max_queue=4, limits=Limits(max_upload_bytes=200_000))) as c:
        yield c


def body(**kw):
    return {"prompt": "a hum", "seconds": SECONDS, "steps": STEPS, **kw}


def wav(seconds=0.3, rate=22050, channels=1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([0.3 * np.sin(2 * np.pi * 220 * t)] * channels, 1), rate, format="WAV")
    return buffer.getvalue()


def decoded(clip: dict) -> np.ndarray:
    data, rate = sf.read(io.BytesIO(base64.b64decode(clip["audio"])), dtype="float32", always_2d=True)
    return data.T  # (C, L)


def test_health_info_docs_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/v1/info").json()
    assert info["model"] == "tiny" and info["max_seconds"] > 0 and info["limits"]["max_variations"] == 8
    assert info["token_required"] is False and info["precision"].startswith("text_encoder=")
    assert "/v1/generate" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "arcaudio" in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_generate_returns_each_variation_as_the_library_makes_it(client, model):
    answer = client.post("/v1/generate", json=body(seed=7, variations=2))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [c["seed"] for c in result["clips"]] == [7, 8] and result["seconds_per_clip"] > 0
    want = generate(model, ["a hum", "a hum"], seconds=SECONDS, steps=STEPS, seed=7)
    for clip, reference in zip(result["clips"], want):
        assert np.abs(decoded(clip) - reference.clamp(-1, 1).numpy()).max() <= 1.5 / 2**15  # 16-bit WAV
        assert base64.b64decode(clip["spectrogram_png"]).startswith(b"\x89PNG")


def test_generate_audio_answers_the_file_itself(client):
    answer = client.post("/v1/generate/audio", json=body(format="flac"))
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/flac"
    data, rate = sf.read(io.BytesIO(answer.content), always_2d=True)
    assert data.shape == (round(SECONDS * rate), 2)
    assert client.post("/v1/generate/audio", json=body(variations=2)).status_code == 422


def test_progress_is_streamed_step_by_step(client):
    with client.stream("POST", "/v1/generate?stream=true", json=body(steps=3)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block.split("\n")[0].removeprefix("event: ") for block in text.strip().split("\n\n")]
    assert events == ["queued", "progress", "progress", "progress", "result"]
    result = json.loads(text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert len(result["clips"]) == 1


@pytest.mark.parametrize("change, message", [
    ({"seconds": 99.0}, "seconds must be in (0,"),
    ({"seconds": -1.0}, "got -1.0"),
    ({"steps": 0}, "steps must be in [1, 64], got 0"),
    ({"steps": 500}, "got 500"),
    ({"variations": 9}, "variations must be in [1, 8], got 9"),
    ({"prompt": "   "}, "prompt must be non-empty"),
    ({"prompt": "x" * 501}, "prompt has 501 characters; at most 500"),
    ({"cfg_scale": 1e9}, "cfg_scale must be a finite number in [0, 20]"),
    ({"seed": -3}, "seed must be in"),
])
def test_bad_requests_are_refused_with_the_bad_value_named(client, change, message):
    answer = client.post("/v1/generate", json=body(**change))
    assert answer.status_code == 422 and message in answer.json()["detail"]


def test_malformed_json_is_a_422_naming_the_field(client):
    answer = client.post("/v1/generate", json={"prompt": "a", "steps": "many"})
    assert answer.status_code == 422 and "steps" in answer.text and "many" in answer.text
    assert client.post("/v1/generate", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422


def test_audio_to_audio_from_an_upload(client, model):
    files = {"file": ("../../../etc/x.wav", wav(), "audio/wav")}  # a client's name is never used as a path
    answer = client.post("/v1/audio-to-audio", files=files,
                         data={"prompt": "a hum", "strength": "0.5", "steps": "2", "variations": "2"})
    assert answer.status_code == 200, answer.text
    clips = answer.json()["clips"]
    assert len(clips) == 2 and decoded(clips[0]).shape == (2, round(0.3 * model.config.sample_rate))


@pytest.mark.parametrize("files, data, status, message", [
    ({"file": ("a.wav", b"this is not audio", "audio/wav")}, {"prompt": "a"}, 415, "unreadable"),
    ({"file": ("a.wav", b"\0" * 300_000, "audio/wav")}, {"prompt": "a"}, 413, "200000"),
    ({"file": ("a.wav", wav(), "audio/wav")}, {"prompt": "a", "strength": "0"}, 422, "strength must be in (0, 1]"),
    ({"file": ("a.wav", wav(), "audio/wav")}, {"prompt": "a", "steps": "two"}, 422, "steps must be an integer"),
    ({}, {"prompt": "a"}, 422, "'file'"),
])
def test_bad_uploads_are_refused(client, files, data, status, message):
    answer = client.post("/v1/audio-to-audio", files=files or {"other": ("x", b"x")}, data=data)
    assert answer.status_code == status and message in answer.json()["detail"]


def test_a_token_guards_every_api_call(model):
    with TestClient(create_app(model, "tiny", token="s3cret")) as c:
        assert c.get("/health").status_code == 200  # for load balancers
        assert c.get("/").status_code == 200  # the page asks for the token
        for call in (lambda h: c.get("/v1/info", headers=h), lambda h: c.post("/v1/generate", json=body(), headers=h)):
            assert call({}).status_code == 401
            assert call({"Authorization": "Bearer wrong"}).status_code == 401
            assert call({"Authorization": "Bearer s3cret"}).status_code == 200
        assert "Bearer" in c.get("/v1/info").headers["www-authenticate"]


class Gate:
    """Holds the worker inside its next batch until opened; counts the prompts it generated."""

    def __init__(self, worker):
        self.open, self.entered, self.prompts = threading.Event(), threading.Event(), []
        original = worker._generate

        def gated(jobs):
            self.entered.set()
            self.open.wait(30)
            self.prompts += [j.request.prompt for j in jobs]
            original(jobs)
        worker._generate = gated


def test_a_full_queue_answers_503_with_retry_after_and_compatible_jobs_share_a_batch(model):
    app = create_app(model, "tiny", max_queue=2)
    with TestClient(app) as c:
        gate = Gate(app.state.worker)
        answers = {}

        def ask(name, **kw):
            answers[name] = c.post("/v1/generate", json=body(**kw))
        threads = [threading.Thread(target=ask, args=("first",), kwargs={"prompt": "first"})]
        threads[0].start()
        assert gate.entered.wait(10)
        for name in ("b", "c"):  # queue: two waiting jobs of the same shape
            threads.append(threading.Thread(target=ask, args=(name,), kwargs={"prompt": name}))
            threads[-1].start()
        deadline = time.time() + 10
        while app.state.worker.queued < 2 and time.time() < deadline:
            time.sleep(0.01)
        full = c.post("/v1/generate", json=body())
        assert full.status_code == 503 and full.headers["retry-after"] == "2" and "busy" in full.json()["detail"]
        gate.open.set()
        for t in threads:
            t.join(30)
        assert all(a.status_code == 200 for a in answers.values())
        assert answers["b"].json()["batch_clips"] == answers["c"].json()["batch_clips"] == 2  # one forward pass
        assert c.get("/health").json()["status"] == "ok"


def test_closing_the_stream_cancels_a_waiting_job(model):
    app = create_app(model, "tiny")
    with TestClient(app) as c:
        gate = Gate(app.state.worker)
        blocker = threading.Thread(target=lambda: c.post("/v1/generate", json=body(prompt="blocker")))
        blocker.start()
        assert gate.entered.wait(10)
        with c.stream("POST", "/v1/generate?stream=true", json=body(prompt="abandoned")) as response:
            first = next(response.iter_text())
            assert first.startswith("event: queued")
        time.sleep(0.2)
        gate.open.set()
        blocker.join(30)
        time.sleep(0.3)
        assert "abandoned" not in gate.prompts  # cancelled before it ran
