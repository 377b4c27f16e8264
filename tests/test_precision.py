"""Per-component precision: the int8 linear against its literal formula, `auto` decided from the hardware, loading
that casts and quantises tensor by tensor (the same model as casting after loading), and the encoder left out."""

import os

import pytest
import torch

import arcaudio.precision as precision_module
from arcaudio.checkpoint import StateDictMismatchError, save_model, save_safetensors
from arcaudio.cli import main
from arcaudio.cli.options import PRECISION_NAMES
from arcaudio.config import preset
from arcaudio.generation import generate
from arcaudio.loading import build_model, load
from arcaudio.models.autoencoder import SkippedEncoder
from arcaudio.nn.int8_linear import Int8Linear, int8_linears, quantize_rows
from arcaudio.precision import (
    Hardware,
    Precision,
    apply_precision,
    auto_precision,
    precision_of,
    resolve_precision,
)

VNNI_BF16 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})


@pytest.fixture
def int8_everywhere(monkeypatch):
    """The tiny models are narrower than INT8_MIN_FEATURES: quantise every linear layer in these tests."""
    monkeypatch.setattr(precision_module, "INT8_MIN_FEATURES", 0)


def test_quantize_rows_is_symmetric_per_row_with_the_row_maximum_at_127():
    x = torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [3.0, 1.5, -0.01]])
    q, scale = quantize_rows(x)
    assert q.dtype == torch.int8 and scale.shape == (3, 1)
    assert q.tolist() == [[64, -127, 32], [0, 0, 0], [127, 64, 0]]  # round(x / (max|x| / 127)), half to even
    assert torch.allclose(scale[:, 0], torch.tensor([1.0, 1e-12, 3.0]) / 127)


def test_int8_linear_is_the_literal_dequantised_product():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(5, 7, 64)
    int8 = Int8Linear.from_linear(linear)
    qx, sx = quantize_rows(x.reshape(-1, 64))
    qw, sw = quantize_rows(linear.weight)
    literal = (qx.double() @ qw.double().T) * sx.double() * sw.double().T + linear.bias.double()  # (35, 48)
    with torch.no_grad():
        y = int8(x)
        exact = linear(x)
    assert y.shape == (5, 7, 48) and y.dtype == torch.float32
    assert torch.allclose(y.reshape(-1, 48).double(), literal, rtol=1e-5, atol=1e-5)
    assert (y - exact).abs().max() < 0.02 * exact.abs().max()  # and int8 is close to the float layer
    assert int8(x.bfloat16()).dtype == torch.bfloat16  # output in the input's dtype


def test_int8_linears_replaces_only_wide_enough_layers():
    net = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Sequential(torch.nn.Linear(256, 64)))
    int8_linears(net, min_features=128)
    assert isinstance(net[0], Int8Linear) and type(net[1][0]) is torch.nn.Linear
    with torch.device("meta"):
        meta = torch.nn.Sequential(torch.nn.Linear(8, 8, bias=False))
    int8_linears(meta)
    assert isinstance(meta[0], Int8Linear) and meta[0].weight.is_meta and meta[0].bias is None


@pytest.mark.parametrize("flags, expected", [
    (VNNI_BF16, Precision("bf16", "int8", "bf16")),  # AVX-512 BF16 + VNNI
    (frozenset({"avx2", "amx_bf16", "amx_int8"}), Precision("bf16", "int8", "bf16")),  # AMX
    (frozenset({"avx2", "fma"}), Precision("fp32", "int8", "fp32")),  # AVX2 only: no bf16, int8 still pays
    (frozenset(), Precision()),  # no AVX2 (or unknown): fp32
])
def test_auto_decides_from_the_cpu_flags(flags, expected):
    assert auto_precision(Hardware("cpu", flags)) == expected


def test_auto_reads_the_flags_oneDNN_may_use(monkeypatch):
    """bf16 flags count only where oneDNN runs bf16 natively: capped below (ONEDNN_MAX_CPU_ISA=AVX2) it emulates."""
    import subprocess
    import sys

    monkeypatch.setattr(precision_module, "onednn_bf16", lambda: False)
    precision_module.cpu_flags.cache_clear()
    try:
        assert not precision_module.cpu_flags() & precision_module.BF16_FLAGS
    finally:
        precision_module.cpu_flags.cache_clear()
    code = ("from arcaudio.precision import hardware, auto_precision; from arcaudio.config import preset; "
            "h = hardware(); print(auto_precision(h, preset('sao-small'))); print(h.describe())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    decided, described = done.stdout.splitlines()
    assert "bf16" not in decided and "oneDNN capped at AVX2" in described


def test_auto_on_cuda_and_for_small_models():
    assert auto_precision(Hardware("cuda", frozenset(), cuda_bf16=True)) == Precision("bf16", "bf16", "bf16")
    assert auto_precision(Hardware("cuda", frozenset(), cuda_bf16=False)) == Precision("fp32", "fp16", "fp32")
    builtin = preset("small-partials")  # a word table, a 192-wide DiT, the partials codec: nothing pays
    assert auto_precision(Hardware("cpu", VNNI_BF16), builtin) == Precision()
    assert auto_precision(Hardware("cuda", frozenset(), cuda_bf16=True), builtin) == Precision()
    assert auto_precision(Hardware("cuda", frozenset(), cuda_bf16=True), preset("sao-small")) == Precision(
        "bf16", "bf16", "bf16")
    assert auto_precision(Hardware("cpu", VNNI_BF16), preset("sao-small")) == Precision("bf16", "int8", "bf16")


def test_resolve_precision_names_custom_specs_and_clear_errors():
    assert resolve_precision("int8-bf16") == Precision("bf16", "int8", "bf16")
    assert resolve_precision("dit=int8, decoder=fp32") == Precision("fp32", "int8", "fp32")
    assert resolve_precision(None) == Precision()
    assert set(PRECISION_NAMES) == set(precision_module.CHOICES)  # the CLI offers what the library takes
    with pytest.raises(ValueError, match="fp16 is not used on a CPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="int8 runs on the CPU only"):
        resolve_precision("int8", "cuda")
    with pytest.raises(ValueError, match=r"unknown component 'vae'.*text_encoder"):
        resolve_precision("vae=bf16")
    with pytest.raises(ValueError, match=r"decoder must be one of \['fp32', 'bf16', 'fp16'\], got 'int8'"):
        resolve_precision("decoder=int8")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fast")


def test_loading_in_a_precision_equals_casting_after_loading(tmp_path, int8_everywhere):
    torch.manual_seed(0)
    path = save_model(build_model(preset("tiny")), tmp_path / "tiny.safetensors")
    plan = Precision("bf16", "int8", "bf16")
    streamed = load(path, precision=plan)
    cast = apply_precision(load(path), plan)
    assert precision_of(streamed) == plan
    a, b = streamed.state_dict(), cast.state_dict()
    assert a.keys() == b.keys() and any(k.endswith("weight_scale") for k in a)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    assert streamed.autoencoder.decoder.layers[0].weight_v.dtype == torch.bfloat16
    assert streamed.autoencoder.encoder.layers[0].weight_v.dtype == torch.float32  # kept as stored
    clips = generate(streamed, ["a hum"], seconds=0.5, steps=2, seed=3)
    assert clips[0].dtype == torch.float32 and torch.isfinite(clips[0]).all()


def test_loading_in_a_precision_stays_strict(tmp_path, int8_everywhere):
    state = build_model(preset("tiny")).state_dict()
    state.pop("dit.transformer.layers.0.ff.ff.0.proj.weight")
    path = save_safetensors(tmp_path / "bad.safetensors", state,
                            {"arcaudio_config": preset("tiny").to_json()})
    with pytest.raises(StateDictMismatchError, match=r"missing:     dit.transformer.layers.0.ff.ff.0.proj.weight"):
        load(path, precision="int8")


def test_a_model_loaded_without_its_encoder_says_how_to_get_it(tmp_path):
    path = save_model(build_model(preset("tiny")), tmp_path / "tiny.safetensors")
    model = load(path, encoder=False)
    assert isinstance(model.autoencoder.encoder, SkippedEncoder)
    assert not any(k.startswith("autoencoder.encoder.") for k in model.state_dict())
    assert generate(model, ["a hum"], seconds=0.5, steps=1)[0].shape[-1] > 0  # text-to-audio needs no encoder
    with pytest.raises(RuntimeError, match=r"without its autoencoder's encoder.*encoder=True"):
        generate(model, ["a hum"], seconds=0.5, steps=1, init_audio=torch.zeros(2, 22050), strength=0.5)
    preset_model = load("tiny", precision="fp32", encoder=False)  # a preset: built without it too
    assert isinstance(preset_model.autoencoder.encoder, SkippedEncoder)


def test_build_model_in_a_precision_builds_the_same_structure(int8_everywhere):
    model = build_model(preset("tiny"), precision=Precision("bf16", "int8", "bf16"), encoder=False)
    assert precision_of(model) == Precision("bf16", "int8", "bf16")
    assert not any(p.is_meta for p in model.parameters())
    assert not any(type(m) is torch.nn.Linear for m in model.dit.modules())


def test_generate_cli_takes_and_reports_a_precision(tmp_path, capsys):
    path = save_model(build_model(preset("tiny")), tmp_path / "tiny.safetensors")
    assert main(["generate", str(path), "a hum", "--seconds", "0.5", "--steps", "1", "--precision",
                 "text_encoder=bf16", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "text_encoder=bf16,dit=fp32,decoder=fp32 on cpu" in capsys.readouterr().err
    assert main(["generate", str(path), "a hum", "--precision", "fp16", "--out", str(tmp_path / "o2")]) == 2
    assert "fp16 is not used on a CPU" in capsys.readouterr().err


def test_reading_tensor_by_tensor_gives_what_safetensors_gives(tmp_path):
    from arcaudio.checkpoint import read_state_dict

    tensors = {"a": torch.randn(3, 4), "b": torch.randn(5).bfloat16(), "d": torch.tensor([True, False]),
               "c": torch.arange(6, dtype=torch.int8).view(2, 3), "e": torch.zeros(0), "f": torch.randn(2, 2).half()}
    path = save_safetensors(tmp_path / "t.safetensors", tensors, {"note": "x"})
    plain, meta = read_state_dict(path)
    seen = []
    converted, meta_converted = read_state_dict(path, convert=lambda k, t: (seen.append(k), {k: t.clone()})[1])
    assert meta_converted == meta and meta["note"] == "x" and sorted(seen) == sorted(tensors)
    for key, value in tensors.items():
        assert converted[key].dtype == value.dtype and torch.equal(converted[key], plain[key]), key
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="truncated"):
        read_state_dict(cut, convert=lambda k, t: {k: t})
