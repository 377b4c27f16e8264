"""ONNX export: every graph against torch on the same inputs, the torch-free runner's sampler against the torch
pipeline with the same noise, int8 against fp32, and the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from arcaudio.checkpoint import save_model  # noqa: E402
from arcaudio.config import preset  # noqa: E402
from arcaudio.export.onnx_export import ContextGraph, TextGraph, export_onnx, fold_weight_norm  # noqa: E402
from arcaudio.export.runner import OnnxRunner, byte_ids, rf_schedule, word_ids  # noqa: E402
from arcaudio.flow import add_noise, x0_from_velocity  # noqa: E402
from arcaudio.loading import build_model, load  # noqa: E402
from arcaudio.models.word_encoder import WordTokenizer  # noqa: E402
from arcaudio.sampling import rf_schedule as torch_rf_schedule  # noqa: E402


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(preset("tiny")).eval()
    for p in model.dit.parameters():  # a fresh DiT's zero-initialised output layers would hide its blocks
        if p.ndim >= 2 and not p.any():
            p.data.normal_(0, 0.02)
    path = save_model(model, tmp_path_factory.mktemp("w") / "tiny.safetensors")
    folder = tmp_path_factory.mktemp("export") / "tiny"
    export_onnx(load(path), folder, seconds=[1.0, 2.97], quantize="int8", source=str(path))
    return load(path), folder


def test_each_graph_matches_torch(exported):
    model, folder = exported
    runner = OnnxRunner(folder)
    ids, mask = runner.tokenize("a dog barking")
    with torch.no_grad():
        cross, glob = TextGraph(model)(torch.from_numpy(ids), torch.from_numpy(mask), torch.tensor([2.0]))
        reference = model.condition(["a dog barking"], 2.0)
        kv = ContextGraph(model)(cross)
    assert torch.allclose(cross, reference.cross_attn_cond, atol=1e-6)  # the wrapper is model.condition
    onnx_cross, onnx_glob = runner.text.run(None, {"input_ids": ids, "attention_mask": mask,
                                                   "seconds": np.array([2.0], np.float32)})
    assert rel(onnx_cross, cross) <= 1e-4 and rel(onnx_glob, glob) <= 1e-4
    (onnx_kv,) = runner.context.run(None, {"cross": onnx_cross})
    assert rel(onnx_kv, kv) <= 1e-4
    x = torch.randn(1, 32, 64)
    with torch.no_grad():
        v = model(x, torch.tensor([0.7]), reference)
        audio = model.autoencoder.decode(x)
    (onnx_v,) = runner.dit[64].run(None, {"x": x.numpy(), "t": np.array([0.7], np.float32), "global": onnx_glob,
                                         "kv": onnx_kv})
    assert rel(onnx_v, v) <= 1e-4
    (onnx_audio,) = runner.decoder[64].run(None, {"latents": x.numpy()})
    assert rel(onnx_audio, audio) <= 1e-4


def test_the_runner_samples_as_the_torch_pipeline_with_the_same_noise(exported):
    model, folder = exported
    runner = OnnxRunner(folder)
    steps, seconds = 8, 2.97
    rng = np.random.default_rng(3)
    noises = [rng.standard_normal((1, 32, 64), dtype=np.float32) for _ in range(steps)]
    latents = runner.generate_latents("white noise on the left", seconds, noises)
    ts = torch_rf_schedule(steps)
    assert np.allclose(rf_schedule(steps), ts.numpy())  # the same grid, computed without torch
    with torch.no_grad():  # the ping-pong loop of sampling.py, with these draws
        cond = model.condition(["white noise on the left"], seconds)
        x = torch.from_numpy(noises[0])
        for i in range(steps):
            t = torch.full((1,), float(ts[i]))
            x0 = x0_from_velocity(x, t, model(x, t, cond))
            x = add_noise(x0, torch.from_numpy(noises[i + 1]), torch.full((1,), float(ts[i + 1]))) \
                if ts[i + 1] > 0 else x0
    cosine = float(np.dot(latents.ravel(), x.numpy().ravel()) / np.linalg.norm(latents) / np.linalg.norm(x.numpy()))
    assert cosine >= 0.9999
    clip = runner.generate("white noise on the left", seconds=1.0, seed=5)
    assert clip.shape == (2, 44100) and np.isfinite(clip).all()
    assert np.array_equal(clip, runner.generate("white noise on the left", seconds=1.0, seed=5))  # seeded


def test_int8_graphs_stay_close_to_fp32(exported):
    _, folder = exported
    fp32, int8 = OnnxRunner(folder), OnnxRunner(folder, int8=True)
    rng = np.random.default_rng(0)
    noises = [rng.standard_normal((1, 32, 64), dtype=np.float32) for _ in range(8)]
    a = fp32.generate_latents("a drum loop", 2.97, noises)
    b = int8.generate_latents("a drum loop", 2.97, noises)
    cosine = float(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))
    assert 0.99 < cosine < 1.0 - 1e-9  # close, and really quantised
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sizes"]["dit_64.int8.onnx"] < 0.5 * manifest["sizes"]["dit_64.onnx"]


def test_tokenizers_without_torch_match_the_models():
    words = WordTokenizer(4096)
    assert word_ids("A plucked-sine note, 120bpm!", 4096) == words.encode("A plucked-sine note, 120bpm!")
    from transformers import ByT5Tokenizer

    assert byte_ids("héllo") == ByT5Tokenizer()("héllo")["input_ids"]


def test_the_runner_imports_no_torch_and_the_cli_round_trip(exported, tmp_path):
    _, folder = exported
    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch fails
            "from arcaudio.export.runner import OnnxRunner\n"
            f"clip = OnnxRunner({str(folder)!r}).generate('a hum', seconds=1.0, seed=1)\n"
            "print(clip.shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "(2, 44100)" in done.stdout
    from arcaudio.cli import main

    assert main(["generate", str(folder), "a hum", "--seconds", "1", "--out", str(tmp_path / "o")]) == 0
    assert len(list((tmp_path / "o").glob("*.wav"))) == 1
    assert main(["generate", str(folder), "a hum", "--bpm", "120", "--out", str(tmp_path / "o")]) == 2


def test_the_built_in_model_exports_and_runs_without_torch(tmp_path):
    model = load("default")
    export_onnx(model, tmp_path / "default", seconds=[2.97])
    runner = OnnxRunner(tmp_path / "default")
    ids, mask = runner.tokenize("a plucked sine note on the left")
    assert ids[0, :mask.sum()].tolist() == WordTokenizer(4096).encode("a plucked sine note on the left")
    from arcaudio.procedural.synth import make_clip

    clip, _, _ = make_clip(0, 3, max_seconds=model.config.max_seconds)
    audio_in = torch.zeros(1, 2, model.config.sample_size)
    audio_in[0, :, :clip.shape[-1]] = torch.from_numpy(clip)
    with torch.no_grad():
        x = model.autoencoder.encode(audio_in, sample=False)  # real latents of a procedural clip
        audio = model.autoencoder.decode(x)  # the partials codec: inverse FFT and overlap-add in the graph
    (onnx_audio,) = runner.decoder[x.shape[-1]].run(None, {"latents": x.numpy()})
    # measured 1.5e-4 of the peak at worst, 80 dB SNR: the codec's 8192-point inverse FFTs, exp / log and envelope
    # arithmetic in ONNX Runtime's kernels; the other graphs stay within 1e-4
    assert rel(onnx_audio, audio) <= 3e-4
    snr = 10 * np.log10((audio.numpy() ** 2).sum() / ((onnx_audio - audio.numpy()) ** 2).sum())
    assert snr > 70
    clip = runner.generate("white noise on the left", seed=2)
    assert clip.shape == (2, model.config.sample_size) and np.isfinite(clip).all()  # the full window


def test_what_cannot_be_exported_is_refused_clearly(tmp_path):
    from arcaudio.cli import main

    with pytest.raises(ValueError, match="'spectral' autoencoder's decoder cannot be exported to ONNX yet"):
        export_onnx(load("tiny-spectral"), tmp_path / "x")
    assert main(["export", "tiny", str(tmp_path / "y"), "--format", "tflite"]) == 2


def test_fold_weight_norm_keeps_the_output():
    decoder = build_model(preset("tiny")).autoencoder.decoder.eval()
    z = torch.randn(1, 32, 8)
    with torch.no_grad():
        before = decoder(z)
        fold_weight_norm(decoder)
        after = decoder(z)
    assert not any(name.endswith(("weight_g", "weight_v")) for name, _ in decoder.named_parameters())
    assert torch.allclose(before, after, atol=1e-6)
