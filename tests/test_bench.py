"""`arcaudio bench`: every stage timed, the parts add up, an external T5 replaced by a T5-base-sized stand-in."""

import json

import pytest
import torch

from arcaudio.bench import bench_model, benchmark, int8_agreement
from arcaudio.cli import main


def test_bench_model_gives_an_external_t5_a_t5_base_sized_stand_in(sat_dir):
    model = bench_model(str(sat_dir))
    arch = model.config.conditioning.prompt.arch
    assert model.conditioners["prompt"].builtin
    assert (arch.d_model, arch.num_layers, arch.d_ff, arch.num_heads) == (768, 12, 3072, 12)


def test_benchmark_times_every_stage_and_the_parts_add_up():
    model = bench_model("tiny")
    result = benchmark(model, "tiny", batch=2, seconds=1.0, steps=2, sampler="pingpong", cfg_scale=1.0,
                       repeats=2, warmup=0)
    assert (result.batch, result.steps, result.sampler, result.dtype) == (2, 2, "pingpong", "float32")
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


def test_bench_refuses_fp16_and_bad_repeats():
    with pytest.raises(ValueError, match="dtype 'fp16'"):
        bench_model("tiny", dtype="fp16")
    with pytest.raises(ValueError, match="repeats >= 1"):
        benchmark(bench_model("tiny"), repeats=0)


def test_int8_quantises_the_dit_linears_and_keeps_its_output():
    import torch

    from arcaudio.bench import quantize_dit

    int8 = bench_model("tiny", dtype="int8")
    assert not any(type(m) is torch.nn.Linear for m in int8.dit.modules())
    assert benchmark(int8, steps=1, repeats=1, warmup=0).dtype == "int8 DiT linears, float32 elsewhere"
    model = bench_model("tiny")
    x, t = torch.randn(1, 32, 64), torch.tensor([0.5])
    with torch.no_grad():
        cond = model.condition(["a"], 2.0)
        a = model(x, t, cond)
        b = quantize_dit(model)(x, t, cond)
    assert not torch.equal(a, b)
    assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99


def test_int8_agreement_compares_the_same_seeds_and_leaves_the_model_fp32(tmp_path, capsys):
    torch.manual_seed(0)
    model = bench_model("tiny")
    result = int8_agreement(model, ["a hum", "a hiss"], seconds=0.5, steps=2, sampler="pingpong")
    assert result["clips"] == 2 and 0.9 < result["latent_cosine_min"] <= result["latent_cosine"] <= 1.0 + 1e-6
    assert 5 < result["audio_snr_db_min"] <= result["audio_snr_db"] < 200
    assert not any("quantized" in type(m).__module__ for m in model.dit.modules())
    assert main(["bench", "tiny", "--agreement", "--seconds", "0.5", "--steps", "2", "--json",
                 str(tmp_path / "a.json")]) == 0
    assert "latent cosine" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "a.json").read_text())) >= {"latent_cosine", "audio_snr_db",
                                                                   "spectrogram_snr_db"}


def test_snr_is_the_literal_power_ratio():
    from arcaudio.bench import _snr_db

    x = torch.ones(2, 100)
    assert abs(float(_snr_db(x, x + 0.1)) - 20.0) < 1e-4  # power 1 against 0.01
