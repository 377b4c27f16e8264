"""`arcaudio bench`: every stage timed, the parts add up, an external T5 replaced by a T5-base-sized stand-in."""

import json

import pytest
import torch

import arcaudio.precision as precision_module
from arcaudio.bench import bench_model, benchmark, fill_zero_weights, precision_agreement
from arcaudio.cli import main
from arcaudio.nn.int8_linear import Int8Linear


def test_bench_model_gives_an_external_t5_a_t5_base_sized_stand_in(sat_dir):
    model = bench_model(str(sat_dir))
    arch = model.config.conditioning.prompt.arch
    assert model.conditioners["prompt"].builtin
    assert (arch.d_model, arch.num_layers, arch.d_ff, arch.num_heads) == (768, 12, 3072, 12)


def test_benchmark_times_every_stage_and_the_parts_add_up():
    model = bench_model("tiny")
    result = benchmark(model, "tiny", batch=2, seconds=1.0, steps=2, sampler="pingpong", cfg_scale=1.0,
                       repeats=2, warmup=0)
    assert (result.batch, result.steps, result.sampler) == (2, 2, "pingpong")
    assert result.precision == "text_encoder=fp32,dit=fp32,decoder=fp32" and result.hardware.startswith("cpu")
    assert min(result.text_s, result.dit_step_s, result.decoder_s) > 0
    assert result.dit_step_s * 2 <= result.sampling_s + 1e-6  # two steps: median = mean, inside sampling
    parts = result.text_s + result.sampling_s + result.decoder_s
    assert parts <= result.total_s * 1.05 + 1e-3  # with 2 repeats, medians are means: parts <= total exactly
    assert result.realtime_factor == pytest.approx(2 * 1.0 / result.total_s)
    assert result.peak_memory_mb > 0


def test_bench_command_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "tiny", "--steps", "2", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    assert "DiT step" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())
    assert row["model"] == "tiny" and row["steps"] == 2 and row["realtime_factor"] > 0
    assert row["asked"] == "auto" and row["precision"].startswith("text_encoder=")  # auto by default, recorded


def test_bench_refuses_fp16_on_the_cpu_and_bad_repeats():
    with pytest.raises(ValueError, match="fp16 is not used on a CPU"):
        bench_model("tiny", precision="fp16")
    with pytest.raises(ValueError, match="repeats >= 1"):
        benchmark(bench_model("tiny"), repeats=0)


def test_int8_quantises_the_dit_linears_and_keeps_its_output(monkeypatch):
    monkeypatch.setattr(precision_module, "INT8_MIN_FEATURES", 0)  # tiny is narrower than the threshold
    int8 = bench_model("tiny", precision="int8")
    assert not any(type(m) is torch.nn.Linear for m in int8.dit.modules())
    assert benchmark(int8, steps=1, repeats=1, warmup=0).precision == "text_encoder=fp32,dit=int8,decoder=fp32"
    torch.manual_seed(0)
    model = bench_model("tiny")
    x, t = torch.randn(1, 32, 64), torch.tensor([0.5])
    with torch.no_grad():
        cond = model.condition(["a"], 2.0)
        a = model(x, t, cond)
        b = precision_module.apply_precision(model, precision_module.NAMED["int8"])(x, t, cond)
    assert not torch.equal(a, b)
    assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99


def test_precision_agreement_compares_the_same_seeds_and_leaves_the_model_fp32(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision_module, "INT8_MIN_FEATURES", 0)
    torch.manual_seed(0)
    model = fill_zero_weights(bench_model("tiny"))
    result, same = precision_agreement(model, ["int8", "fp32"], ["a hum", "a hiss"], seconds=0.5, steps=2,
                                       sampler="pingpong")
    assert same["latent_cosine_min"] > 1 - 1e-6 and same["spectrogram_snr_db_min"] > 100  # fp32 against itself
    assert result["clips"] == 2 and 0.9 < result["latent_cosine_min"] <= result["latent_cosine"] <= 1.0 + 1e-6
    assert 5 < result["audio_snr_db_min"] <= result["audio_snr_db"] < 200
    assert result["precision"] == "text_encoder=fp32,dit=int8,decoder=fp32"
    assert all(type(m) is not Int8Linear for m in model.dit.modules())  # the original is untouched
    assert main(["bench", "tiny", "--agreement", "--precision", "int8", "bf16", "--seconds", "0.5", "--steps", "2",
                 "--json", str(tmp_path / "a.json")]) == 0
    assert "latent cosine" in capsys.readouterr().out
    rows = json.loads((tmp_path / "a.json").read_text())
    assert [r["asked"] for r in rows] == ["int8", "bf16"]
    assert set(rows[0]) >= {"latent_cosine", "audio_snr_db", "spectrogram_snr_db"}


def test_snr_is_the_literal_power_ratio():
    from arcaudio.bench import _snr_db

    x = torch.ones(2, 100)
    assert abs(float(_snr_db(x, x + 0.1)) - 20.0) < 1e-4  # power 1 against 0.01


def test_fill_zero_weights_makes_a_fresh_dits_blocks_count():
    model = bench_model("tiny")
    zero = [n for n, p in model.named_parameters() if p.ndim >= 2 and not p.any()]
    assert "dit.postprocess_conv.weight" in zero and any(".ff.ff.2." in n for n in zero)
    fill_zero_weights(model)
    params = dict(model.named_parameters())
    assert all(params[n].any() and 0.01 < float(params[n].std()) < 0.03 for n in zero)
