"""Load test of `arcaudio serve` on localhost, and time to first audio byte.

    .venv/bin/python scripts/load_test.py [--clients 32] [--requests 8] [--json runs/issue14/load.json]
                                          [--sao-small]   # also time to first byte at sao-small size (random weights)

1. `arcaudio serve default` in its own process (the built-in model, `auto` precision, the default queue of 16);
2. `clients` threads each send `requests` requests, one in four malformed (a bad length, an empty prompt, broken
   JSON, too many steps, an unknown format, a non-audio upload); every answer must be a 200, a 4xx whose message
   names the problem, or a 503 with Retry-After when the queue is full; none may be lost or hang;
3. p50 / p95 latency and clips per second of the 200s, against the same clips generated one by one in this
   process with the library (the same model and precision);
4. time from request to the first audio byte of one clip at the model's full length (2.97 s), by
   POST /v1/generate/audio, median of 5; with --sao-small the same for Stable Audio Open Small's size (random
   weights, a T5-base-sized stand-in text encoder, 11.9 s) served from another process.
Run it on an idle machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [json.loads(line)["prompt"] for line in (ROOT / "scripts/prompts/outside.jsonl").read_text().splitlines()
           if line.strip()]
MALFORMED = [  # (what, how to send it, what the answer must name)
    ("bad length", lambda c: c.post("/v1/generate", json={"prompt": "a hum", "seconds": 99}), "seconds"),
    ("empty prompt", lambda c: c.post("/v1/generate", json={"prompt": " "}), "prompt"),
    ("broken JSON", lambda c: c.post("/v1/generate", content=b"{oops", headers={"content-type": "application/json"}),
     "json"),
    ("too many steps", lambda c: c.post("/v1/generate", json={"prompt": "a hum", "steps": 10_000}), "steps"),
    ("unknown format", lambda c: c.post("/v1/generate", json={"prompt": "a hum", "format": "mp5"}), "format"),
    ("not audio", lambda c: c.post("/v1/audio-to-audio", files={"file": ("x.wav", b"not audio", "audio/wav")},
                                   data={"prompt": "a hum"}), "unreadable"),
]


# Stable Audio Open Small's size with random weights and a T5-base-sized stand-in (as `arcaudio bench`), served
SAO_SMALL_SERVER = ("import sys, uvicorn\nfrom arcaudio.bench import bench_model\n"
                    "from arcaudio.server.app import create_app\n"
                    "app = create_app(bench_model('sao-small', precision='auto'), 'sao-small (random weights)')\n"
                    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[-1]), log_level='warning')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


def start_server(argv: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, *argv, "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return process, url


def client_run(url: str, index: int, requests: int, log: list) -> None:
    rng = random.Random(index)
    with httpx.Client(base_url=url, timeout=300) as client:
        for r in range(requests):
            t0 = time.perf_counter()
            if (index + r) % 4 == 3:
                what, send, names = MALFORMED[(index * requests + r) % len(MALFORMED)]
                answer = send(client)
                log.append({"kind": "malformed", "what": what, "status": answer.status_code,
                            "named": names in answer.text.lower(), "latency_s": time.perf_counter() - t0})
                continue
            prompt, seed = rng.choice(PROMPTS), rng.randrange(1000)
            answer = client.post("/v1/generate", json={"prompt": prompt, "seed": seed, "spectrogram": False})
            entry = {"kind": "valid", "prompt": prompt, "seed": seed, "status": answer.status_code,
                     "latency_s": time.perf_counter() - t0}
            if answer.status_code == 503:
                entry["retry_after"] = answer.headers.get("retry-after")
            log.append(entry)


def first_byte_s(url: str, body: dict, repeats: int = 5) -> float:
    times = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for _ in range(repeats):
            t0 = time.perf_counter()
            with client.stream("POST", "/v1/generate/audio", json=body) as answer:
                next(answer.iter_raw())
                times.append(time.perf_counter() - t0)
                assert answer.status_code == 200, answer.status_code
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--sao-small", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    report: dict = {}

    process, url = start_server(["-m", "arcaudio", "serve", "default", "--quiet"])
    try:
        info = httpx.get(f"{url}/v1/info").json()
        report["server"] = {k: info[k] for k in ("model", "precision", "hardware", "max_queue", "max_batch")}
        log: list = []
        threads = [threading.Thread(target=client_run, args=(url, i, args.requests, log))
                   for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        health = httpx.get(f"{url}/health").json()
        report["first_byte_builtin_s"] = first_byte_s(url, {"prompt": "a plucked sine note on the left"})
    finally:
        process.terminate()
        process.wait(30)

    sent = args.clients * args.requests
    ok = [e for e in log if e["status"] == 200]
    busy = [e for e in log if e["status"] == 503]
    malformed = [e for e in log if e["kind"] == "malformed"]
    report["load"] = {
        "sent": sent, "answered": len(log), "ok": len(ok), "busy_503": len(busy),
        "busy_with_retry_after": sum(e.get("retry_after") is not None for e in busy),
        "malformed": len(malformed), "malformed_4xx_naming_the_problem": sum(
            400 <= e["status"] < 500 and e["named"] for e in malformed),
        "other": sorted({e["status"] for e in log} - {200, 503, 413, 415, 422}),
        "wall_s": wall, "clips_per_s": len(ok) / wall,
        "p50_s": percentile([e["latency_s"] for e in ok], 0.5), "p95_s": percentile([e["latency_s"] for e in ok], 0.95),
        "healthy_after": health["status"] == "ok",
    }

    # the same clips one by one, in this process, with the library
    from arcaudio.generation import generate
    from arcaudio.loading import load

    model = load("default", precision="auto")
    generate(model, ["warm-up"], seed=0)
    t0 = time.perf_counter()
    for e in ok:
        generate(model, [e["prompt"]], seed=e["seed"])
    alone = time.perf_counter() - t0
    report["one_by_one"] = {"clips": len(ok), "wall_s": alone, "clips_per_s": len(ok) / max(alone, 1e-9),
                            "per_clip_s": alone / max(len(ok), 1)}

    if args.sao_small:
        process, url = start_server(["-c", SAO_SMALL_SERVER])
        try:
            report["first_byte_sao_small_s"] = first_byte_s(url, {"prompt": "a dog barking"}, repeats=3)
        finally:
            process.terminate()
            process.wait(30)

    load_report = report["load"]
    print(f"server: {report['server']}")
    print(f"load: {load_report['sent']} requests from {args.clients} clients, {load_report['answered']} answered: "
          f"{load_report['ok']} ok, {load_report['busy_503']} busy (503, {load_report['busy_with_retry_after']} "
          f"with Retry-After), {load_report['malformed_4xx_naming_the_problem']} / {load_report['malformed']} "
          f"malformed refused with a 4xx naming the problem, other statuses {load_report['other']}; healthy after: "
          f"{load_report['healthy_after']}")
    print(f"  200s: p50 {load_report['p50_s'] * 1000:.0f} ms, p95 {load_report['p95_s'] * 1000:.0f} ms, "
          f"{load_report['clips_per_s']:.1f} clips/s over {load_report['wall_s']:.1f} s; one by one in-process: "
          f"{report['one_by_one']['clips_per_s']:.1f} clips/s ({report['one_by_one']['per_clip_s'] * 1000:.0f} ms "
          "per clip)")
    print(f"first audio byte, built-in model, one 2.97 s clip: {report['first_byte_builtin_s'] * 1000:.0f} ms")
    if "first_byte_sao_small_s" in report:
        print(f"first audio byte, sao-small (random weights), one 11.9 s clip: "
              f"{report['first_byte_sao_small_s']:.2f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "log": log}, indent=2))


if __name__ == "__main__":
    main()
