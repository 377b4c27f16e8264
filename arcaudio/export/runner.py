"""Run an arcaudio ONNX export with numpy and onnxruntime only (no torch): tokenize, condition, ping-pong sample,
decode. `arcaudio generate EXPORT_DIR "prompt"` uses it when EXPORT_DIR holds a manifest.json.

Noise: drawn with numpy's PCG64 from `seed` (clip i of a call: seed + i): the same seeds give the same audio on every
machine, but not torch's draws, so the audio differs from `arcaudio generate` on the torch model. `generate_latents`
takes the noise as an argument to reproduce a torch run exactly (the tests do).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def is_export(path: str | Path) -> bool:
    return (Path(path) / "manifest.json").is_file()


def word_ids(text: str, vocab_size: int) -> list[int]:
    """The built-in word encoder's tokens: lower-cased runs of letters and digits, CRC-32 hashed to 2..vocab-1, then
    the end id 1 (models/word_encoder.py, reimplemented without torch)."""
    return [2 + zlib.crc32(w.encode()) % (vocab_size - 2) for w in _WORD.findall(text.lower())] + [1]


def byte_ids(text: str) -> list[int]:
    """ByT5's tokens: each UTF-8 byte + 3, then the end id 1."""
    return [b + 3 for b in text.encode("utf-8")] + [1]


def rf_schedule(steps: int, logsnr_min: float = -6.0, logsnr_max: float = 2.0) -> np.ndarray:
    """The reference's time grid from pure noise, (steps + 1,): t = sigmoid(-logSNR), logSNR evenly spaced, the ends
    forced to 1 and 0 (sampling.rf_schedule, in float32 as there)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    logsnr = np.linspace(logsnr_min, logsnr_max, steps + 1, dtype=np.float32)
    t = (1.0 / (1.0 + np.exp(logsnr.astype(np.float32)))).astype(np.float32)
    t[0], t[-1] = 1.0, 0.0
    return t.astype(np.float64)


class OnnxRunner:
    """An export folder, loaded into ONNX Runtime sessions. `int8=True` uses the int8 DiT graphs when exported."""

    def __init__(self, folder: str | Path, int8: bool = False, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ValueError(f"running an export needs onnxruntime: pip install onnxruntime ({err})") from None

        self.folder = Path(folder)
        if not is_export(self.folder):
            raise FileNotFoundError(f"{str(self.folder)!r} holds no arcaudio export (manifest.json missing); make one "
                                    "with `arcaudio export MODEL DIR --format onnx`")
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        files = self.manifest["files"]
        if int8 and "dit_int8" not in files:
            raise ValueError(f"{str(self.folder)!r} has no int8 graphs; export with --quantize int8")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads

        def session(name: str):
            return ort.InferenceSession(str(self.folder / name), options, providers=["CPUExecutionProvider"])

        self.text = session(files["text"])
        self.context = session(files["context_int8"] if int8 else files["context"])
        dits = files["dit_int8"] if int8 else files["dit"]
        self.dit = {int(k): session(v) for k, v in dits.items()}
        self.decoder = {int(k): session(v) for k, v in files["decoder"].items()}
        self.int8 = int8
        self._tokenizer = None

    @property
    def sample_rate(self) -> int:
        return self.manifest["sample_rate"]

    def tokenize(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """-> input_ids (1, L) int64, attention_mask (1, L) int64, truncated and padded to the model's length."""
        spec, limit = self.manifest["tokenizer"], self.manifest["max_tokens"]
        if spec["kind"] == "words":
            ids = word_ids(prompt, spec["vocab_size"])
        elif spec["kind"] == "bytes":
            ids = byte_ids(prompt)
        else:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder / spec["path"]), local_files_only=True)
            ids = self._tokenizer(prompt)["input_ids"]
        ids = ids[:limit]
        input_ids = np.zeros((1, limit), np.int64)
        mask = np.zeros((1, limit), np.int64)
        input_ids[0, :len(ids)] = ids
        mask[0, :len(ids)] = 1
        return input_ids, mask

    def frames_for(self, seconds: float) -> int:
        """The shortest exported length that holds `seconds`."""
        m = self.manifest
        if not (math.isfinite(seconds) and 0 < seconds <= m["max_seconds"]):
            raise ValueError(f"seconds must be in (0, {m['max_seconds']:.2f}] for this model, got {seconds}")
        need = math.ceil(seconds * m["sample_rate"] / m["downsampling_ratio"])
        fits = [f for f in m["lengths"] if f >= need]
        if not fits:
            raise ValueError(f"{seconds} s needs {need} latent frames; this export has {m['lengths']} (export with "
                             f"--seconds {seconds})")
        return min(fits)

    def condition(self, prompt: str, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        ids, mask = self.tokenize(prompt)
        cross, glob = self.text.run(None, {"input_ids": ids, "attention_mask": mask,
                                           "seconds": np.array([seconds], np.float32)})
        (kv,) = self.context.run(None, {"cross": cross})
        return glob, kv

    def generate_latents(self, prompt: str, seconds: float, noises: list[np.ndarray]) -> np.ndarray:
        """Ping-pong with the given noise: noises[0] the start (1, C, T), noises[i] the re-noise after step i
        (len(noises) == steps). Returns the final latents (1, C, T)."""
        glob, kv = self.condition(prompt, seconds)
        frames = noises[0].shape[-1]
        dit = self.dit[frames]
        ts = rf_schedule(len(noises), self.manifest["sampler"]["logsnr_min"], self.manifest["sampler"]["logsnr_max"])
        x = noises[0].astype(np.float32)
        for i in range(len(ts) - 1):
            t = np.full((1,), ts[i], np.float32)
            (v,) = dit.run(None, {"x": x, "t": t, "global": glob, "kv": kv})
            x0 = x - t[:, None, None] * v  # the denoised estimate
            t_next = ts[i + 1]
            x = ((1 - t_next) * x0 + t_next * noises[i + 1]).astype(np.float32) if t_next > 0 else x0
        return x

    def decode(self, latents: np.ndarray, seconds: float) -> np.ndarray:
        (audio,) = self.decoder[latents.shape[-1]].run(None, {"latents": latents.astype(np.float32)})
        clip = audio[0, :, :round(seconds * self.sample_rate)]
        if not np.isfinite(clip).all():
            raise FloatingPointError("generated audio is not finite (NaN or inf); nothing is written")
        return clip

    def generate(self, prompt: str, seconds: float | None = None, steps: int | None = None,
                 seed: int = 0) -> np.ndarray:
        """One clip (channels, round(seconds * sample_rate)) float32; the noise from numpy's PCG64(seed)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt must be non-empty text, got {prompt!r}")
        seconds = self.manifest["max_seconds"] if seconds is None else float(seconds)
        steps = self.manifest["sampler"]["steps"] if steps is None else steps
        frames = self.frames_for(seconds)
        rng = np.random.default_rng(seed)
        shape = (1, self.manifest["io_channels"], frames)
        noises = [rng.standard_normal(shape, dtype=np.float32) for _ in range(steps)]
        return self.decode(self.generate_latents(prompt, seconds, noises), seconds)
