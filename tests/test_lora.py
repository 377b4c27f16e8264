"""LoRA: the layer against its literal formula, training only the adapters (resumable exactly), the adapter file
applied to a model, and a mismatched base refused."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from arcaudio.cli import main
from arcaudio.loading import load
from arcaudio.nn.lora import LoRAConfig, LoRALinear, apply_adapter, inject_dit_lora, lora_layers, read_adapter

SMALL_MODEL = ["--model-set", "dit.depth=2", "--model-set", "dit.embed_dim=64", "--model-set",
               "autoencoder.channels=4", "--model-set", "conditioning.prompt.arch.num_layers=1"]


def test_the_layer_is_its_literal_formula_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(12, 7)
    layer = LoRALinear(base, LoRAConfig(rank=3, alpha=6))
    x = torch.randn(5, 12)
    assert torch.equal(layer(x), base(x))  # B starts at zero: the base layer exactly
    layer.lora_B.data.normal_()
    literal = x @ base.weight.T + base.bias + 2.0 * (x @ layer.lora_A.T @ layer.lora_B.T)  # scale alpha / r = 2
    assert torch.allclose(layer(x), literal, atol=1e-5)
    assert torch.allclose(layer.merged()(x), literal, atol=1e-5)
    assert layer.weight is base.weight  # the base parameter under its own name: its key is unchanged
    assert LoRAConfig.parse("rank=8,alpha=4,targets=to_qkv+ff") == LoRAConfig(8, 4.0, 0.0, ("to_qkv", "ff"))
    with pytest.raises(ValueError, match="unknown LoRA setting 'size'"):
        LoRAConfig.parse("size=3")


def test_injection_keeps_every_base_key_and_adds_only_adapters():
    model = load("tiny")
    before = set(model.state_dict())
    names = inject_dit_lora(model, LoRAConfig(rank=2))
    after = set(model.state_dict())
    assert before <= after and all(".lora_" in k for k in after - before)
    assert any(".self_attn.to_qkv" in n for n in names) and any(".ff.ff.2" in n for n in names)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    lines = []
    for i in range(8):
        x = 0.3 * np.sin(2 * np.pi * [220, 880][i % 2] * np.arange(22050) / 44100)
        sf.write(root / f"{i}.wav", np.stack([x, x], 1), 44100)
        lines.append(json.dumps({"path": f"{i}.wav", "caption": ["a zorblat", "a high tone"][i % 2]}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def _args(manifest, base, out, steps=4):
    return ["train", "--stage", "flow", "--model", str(base), "--data", str(manifest), "--out", str(out),
            "--steps", str(steps), "--batch-size", "2", "--lora", "rank=4,alpha=4", "--set", "checkpoint_every=2",
            "--set", "log_every=1", "--no-progress"]


@pytest.fixture(scope="module")
def base_and_run(manifest, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    assert main(["train", "--stage", "flow", "--model", "tiny", "--data", str(manifest), "--out", str(root / "base"),
                 "--steps", "2", "--batch-size", "2", *SMALL_MODEL, "--no-progress"]) == 0
    base = root / "base" / "model.safetensors"
    assert main(_args(manifest, base, root / "lora")) == 0
    return base, root / "lora"


def test_only_the_adapters_train_and_the_outputs_load(base_and_run):
    base, run = base_and_run
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    state = checkpoint["stage"]["optimizer"]["state"]
    adapter_config, info, tensors = read_adapter(run / "adapter.safetensors")
    assert adapter_config.rank == 4 and tensors and all(".lora_" in k for k in tensors)
    trainable = sum(t.numel() for t in tensors.values())
    full = sum(t.numel() for k, t in load_file(base).items() if k.startswith("dit."))
    assert trainable < 0.2 * full
    moments = sum(v.numel() for s in state.values() for v in s.values() if torch.is_tensor(v) and v.ndim)
    assert 0 < moments <= 2 * trainable  # optimizer state for the adapters only (AdamW: 2 moments each)
    merged = load(run / "model.safetensors")  # merged weights load strictly as a plain model
    base_model = load(base)
    assert not torch.equal(merged.dit.transformer.layers[0].self_attn.to_qkv.weight,
                           base_model.dit.transformer.layers[0].self_attn.to_qkv.weight)
    applied = apply_adapter(load(base), run / "adapter.safetensors")  # adapter on the base = merged model
    for key, value in merged.state_dict().items():
        assert torch.allclose(applied.state_dict()[key], value, atol=1e-5), key
    assert not lora_layers(applied)
    kept = apply_adapter(load(base), run / "adapter.safetensors", scale=0.5, merge=False)
    assert lora_layers(kept) and all(m.multiplier == 0.5 for m in lora_layers(kept).values())


def test_a_mismatched_base_is_refused(base_and_run, tmp_path):
    _, run = base_and_run
    with pytest.raises(ValueError, match="trained on another architecture"):
        apply_adapter(load("tiny"), run / "adapter.safetensors")
    assert main(["generate", "tiny", "a hum", "--lora", str(run / "adapter.safetensors"), "--out",
                 str(tmp_path)]) == 2


KILL_AFTER_CHECKPOINT = str(Path(__file__).with_name("kill_after_checkpoint.py"))


def test_a_killed_lora_run_resumes_exactly(base_and_run, manifest, tmp_path):
    base, run = base_and_run
    killed = subprocess.run([sys.executable, KILL_AFTER_CHECKPOINT, "2", *_args(manifest, base, tmp_path / "r")],
                            capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin"})
    assert killed.returncode != 0 and (tmp_path / "r" / "checkpoint.pt").is_file()
    assert main(_args(manifest, base, tmp_path / "r")) == 0  # resumes from step 2
    a, b = load_file(run / "adapter.safetensors"), load_file(tmp_path / "r" / "adapter.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_generate_takes_adapters_for_one_call_and_restores_the_weights(base_and_run):
    from arcaudio.generation import generate

    base, run = base_and_run
    model = load(base)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = generate(model, ["a zorblat"], seconds=0.5, steps=2, seed=1)[0]
    with_lora = generate(model, ["a zorblat"], seconds=0.5, steps=2, seed=1,
                         loras=[(run / "adapter.safetensors", 1.0)])[0]
    merged = generate(load(run / "model.safetensors"), ["a zorblat"], seconds=0.5, steps=2, seed=1)[0]
    assert not torch.allclose(plain, with_lora) and torch.allclose(with_lora, merged, atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # restored exactly
    with pytest.raises(ValueError, match="another architecture"):
        generate(load("tiny"), ["a"], seconds=0.5, steps=1, loras=[run / "adapter.safetensors"])


def test_the_server_applies_an_adapter_per_request(base_and_run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from arcaudio.server.app import create_app

    base, run = base_and_run
    model = load(base)
    with TestClient(create_app(model, "base", adapters={"zorb": str(run / "adapter.safetensors")})) as client:
        assert client.get("/v1/info").json()["lora_adapters"] == ["zorb"]
        body = {"prompt": "a zorblat", "seconds": 0.5, "steps": 2, "seed": 1, "spectrogram": False}
        plain = client.post("/v1/generate", json=body).json()["clips"][0]["audio"]
        adapted = client.post("/v1/generate", json={**body, "lora": [{"name": "zorb"}]}).json()["clips"][0]["audio"]
        again = client.post("/v1/generate", json=body).json()["clips"][0]["audio"]
        assert adapted != plain and again == plain  # per request; the model is restored after
        bad = client.post("/v1/generate", json={**body, "lora": [{"name": "nope"}]})
        assert bad.status_code == 422 and "unknown LoRA adapter 'nope'; this server has ['zorb']" in bad.text


def test_lora_trains_under_torchrun_with_two_processes(base_and_run, manifest, tmp_path):
    import os

    base, _ = base_and_run
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "arcaudio",
                           *_args(manifest, base, tmp_path / "ddp", steps=2)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    config, _, tensors = read_adapter(tmp_path / "ddp" / "adapter.safetensors")
    assert config.rank == 4 and any(t.abs().sum() > 0 for k, t in tensors.items() if k.endswith("lora_B"))
