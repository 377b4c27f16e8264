"""Strict loading of stable-audio-tools checkpoints, both weight-norm key forms, and our own format."""

import json
from pathlib import Path

import pytest
import torch
from conftest import GOLDEN, rel_err

from arcaudio import build_model, load, preset
from arcaudio.checkpoint import (
    StateDictMismatchError,
    atomic_write,
    load_state_dict_strict,
    read_config,
    save_model,
    save_sao,
)
from arcaudio.compat.sao import arcaudio_to_sao, sao_to_arcaudio


@pytest.fixture(scope="module")
def sao_small_meta_state():
    """A state dict with exactly the released SAO-small checkpoint's keys and shapes (meta tensors, no memory)."""
    keys = json.loads((GOLDEN / "sao_small_keys.json").read_text())
    return {k: torch.empty(shape, device="meta") for k, shape in keys.items()}


def test_sao_small_keys_and_shapes_match_exactly(sao_small_meta_state):
    model = build_model(preset("sao-small"), device="meta")
    ours = {k: list(v.shape) for k, v in arcaudio_to_sao(model.state_dict()).items()}
    assert ours == {k: list(v.shape) for k, v in sao_small_meta_state.items()}
    assert len(ours) == 750


def test_sao_small_state_dict_loads_strictly(sao_small_meta_state):
    model = build_model(preset("sao-small"), device="meta")
    state, unknown = sao_to_arcaudio(sao_small_meta_state)
    assert unknown == []
    load_state_dict_strict(model, state)  # zero missing, zero unexpected


def test_mismatches_are_all_named(sao_small_meta_state):
    model = build_model(preset("sao-small"), device="meta")
    state, _ = sao_to_arcaudio(sao_small_meta_state)
    del state["dit.transformer.layers.3.self_attn.to_qkv.weight"]
    state["dit.transformer.layers.3.extra.weight"] = torch.empty(3, device="meta")
    state["autoencoder.decoder.layers.7.weight_v"] = torch.empty(2, 128, 5, device="meta")
    state["dit.transformer.layers.0.self_attn.q_norm.weight"] = torch.empty(64, device="meta")
    with pytest.raises(StateDictMismatchError) as info:
        load_state_dict_strict(model, state, "model.safetensors")
    msg = str(info.value)
    assert "1 missing, 1 unexpected, 2 mis-shaped" in msg
    assert "missing:     dit.transformer.layers.3.self_attn.to_qkv.weight" in msg
    assert "unexpected:  dit.transformer.layers.3.extra.weight" in msg
    assert "autoencoder.decoder.layers.7.weight_v: checkpoint [2, 128, 5], model expects [2, 128, 7]" in msg
    assert "q_norm.weight: checkpoint [64], model expects [128]" in msg


def _outputs(model, sat_io):
    with torch.no_grad():
        return (model.dit(sat_io["x"], sat_io["t"], sat_io["cross_attn_cond"], sat_io["global_cond"]),
                model.autoencoder.decoder(sat_io["x"]))


def test_sao_torch_ckpt_with_parametrized_weight_norm(tmp_path, sat_dir, sat_state_dict, sat_io):
    """A Lightning-style model.ckpt ({'state_dict': ...}) with new-style weight-norm keys loads the same."""
    renamed = {}
    for key, value in sat_state_dict.items():
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        renamed[key] = value
    assert any("original0" in k for k in renamed)
    (tmp_path / "model_config.json").write_text((sat_dir / "model_config.json").read_text())
    torch.save({"state_dict": renamed, "global_step": 7}, tmp_path / "model.ckpt")
    model = load(tmp_path, t5=False)
    v, audio = _outputs(model, sat_io)
    assert rel_err(v, sat_io["v"]) < 1e-5 and rel_err(audio, sat_io["decoded"]) < 1e-5


def test_sao_checkpoint_with_unknown_prefix_fails(tmp_path, sat_dir, sat_state_dict):
    (tmp_path / "model_config.json").write_text((sat_dir / "model_config.json").read_text())
    state = dict(sat_state_dict, **{"discriminator.head.weight": torch.zeros(2)})
    from safetensors.torch import save_file

    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(StateDictMismatchError, match="unexpected:  discriminator.head.weight"):
        load(tmp_path, t5=False)


def test_arcaudio_format_round_trip(tmp_path, sat_dir, sat_io):
    model = load(sat_dir, t5=False)
    path = save_model(model, tmp_path / "m.safetensors")
    assert read_config(path) == model.config
    again = load(path, t5=False)
    for a, b in zip(_outputs(model, sat_io), _outputs(again, sat_io)):
        assert torch.equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary files left


def test_export_to_sao_names_round_trip(tmp_path, sat_dir, sat_io):
    model = load(sat_dir, t5=False)
    out = save_sao(model, tmp_path / "sao")
    assert json.loads((out / "model_config.json").read_text())["model"]["diffusion"]["type"] == "dit"
    again = load(out, t5=False)
    for a, b in zip(_outputs(model, sat_io), _outputs(again, sat_io)):
        assert torch.equal(a, b)


def test_builtin_text_encoder_round_trips_in_our_format(tmp_path):
    model = load("tiny").eval()
    path = save_model(model, tmp_path / "tiny.safetensors")
    again = load(path)
    with torch.no_grad():
        a = model.condition(["a dog barks"], 2.0).cross_attn_cond
        b = again.condition(["a dog barks"], 2.0).cross_attn_cond
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    assert rel_err(a, b) < 1e-6  # same weights; memory layout may change the last bit
    with pytest.raises(ValueError, match="built-in text encoder"):
        save_sao(model, tmp_path / "sao")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing file or folder nor a model name"):
        load("no-such-model")
    lone = tmp_path / "lone"
    lone.mkdir()
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, lone / "weights.safetensors")
    with pytest.raises(FileNotFoundError, match="no model_config.json beside it"):
        load(lone / "weights.safetensors")
    (tmp_path / "x.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown checkpoint type '.onnx'"):
        load(tmp_path / "x.onnx")


def test_safetensors_bytes_do_not_depend_on_metadata_order(tmp_path):
    from arcaudio.checkpoint import save_safetensors

    tensors = {"b": torch.arange(6.0).view(2, 3), "a": torch.ones(5, dtype=torch.int64)}
    meta = {f"key{i}": str(i) for i in range(20)}
    one = save_safetensors(tmp_path / "one.safetensors", tensors, meta).read_bytes()
    two = save_safetensors(tmp_path / "two.safetensors", dict(reversed(tensors.items())),
                           dict(reversed(meta.items()))).read_bytes()
    assert one == two
    from safetensors import safe_open

    with safe_open(str(tmp_path / "one.safetensors"), "pt") as f:
        assert f.metadata() == meta and torch.equal(f.get_tensor("b"), tensors["b"])


def test_meta_loading_keeps_tied_parameters_tied_and_takes_the_last_key():
    from torch import nn

    from arcaudio.checkpoint import load_state_dict_strict

    def tied_pair() -> nn.Module:
        m = nn.Module()
        m.a, m.b = nn.Linear(3, 2, bias=False), nn.Linear(3, 2, bias=False)
        m.b.weight = m.a.weight
        return m

    with torch.device("meta"):
        meta = tied_pair()
    state = {"a.weight": torch.zeros(2, 3), "b.weight": torch.ones(2, 3)}  # as a stale copy would leave them
    load_state_dict_strict(meta, state)
    built = tied_pair()
    load_state_dict_strict(built, state)  # a load into a built model: the last key wins
    assert meta.a.weight is meta.b.weight and torch.equal(meta.a.weight, built.a.weight)
    assert torch.equal(meta.a.weight, torch.ones(2, 3))


def _tiny_pair():
    """Two `tiny-spectral` models that differ in the DiT only (a base and its post-trained descendant)."""
    torch.manual_seed(0)
    base = build_model(preset("tiny-spectral"))
    child = build_model(preset("tiny-spectral"))
    child.load_state_dict(base.state_dict())
    with torch.no_grad():
        for p in child.dit.parameters():
            p.add_(0.01)
    return base, child


def test_shared_weights_file_holds_only_what_differs_and_loads_whole(tmp_path):
    from safetensors import safe_open

    from arcaudio.checkpoint import BASE_KEY, read_model_state, save_model

    base, child = _tiny_pair()
    base_path = save_model(base, tmp_path / "base.safetensors")
    child_path = save_model(child, tmp_path / "child.safetensors", base=base_path)
    with safe_open(str(child_path), framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys and all(k.startswith("dit.") for k in keys)
    assert meta[BASE_KEY] == "base.safetensors"
    assert child_path.stat().st_size < base_path.stat().st_size / 2
    state, _ = read_model_state(child_path)
    want = child.state_dict()
    assert set(state) == set(want)
    assert all(torch.equal(state[k], want[k]) for k in want)
    loaded = load(child_path)
    assert all(torch.equal(loaded.state_dict()[k], want[k]) for k in want)


def test_shared_weights_file_refuses_a_changed_missing_or_distant_base(tmp_path):
    from arcaudio.checkpoint import save_model

    base, child = _tiny_pair()
    base_path = save_model(base, tmp_path / "base.safetensors")
    child_path = save_model(child, tmp_path / "child.safetensors", base=base_path)
    with pytest.raises(ValueError, match="same folder"):
        save_model(child, tmp_path / "elsewhere" / "child.safetensors", base=base_path)
    save_model(child, base_path)  # the base now holds other weights
    with pytest.raises(ValueError, match="sha256 differs"):
        load(child_path)
    base_path.unlink()
    with pytest.raises(FileNotFoundError, match="base.safetensors"):
        load(child_path)
