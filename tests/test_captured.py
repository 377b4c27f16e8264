"""Captured generation (arcaudio/captured.py): the static-buffer path that a CUDA graph records gives `generate`'s
clips bit for bit (host noise), sizes its noise queue from the sampler's own draws, and refuses what it cannot do.
The CUDA graph itself is checked by the gpu-marked test (run on a GPU: `pytest -m gpu`)."""

import pytest
import torch

from arcaudio.bench import benchmark_captured, fill_zero_weights
from arcaudio.captured import CapturedGenerator
from arcaudio.generation import generate
from arcaudio.loading import load
from arcaudio.sampling import NoiseQueue, batch_randn

PROMPTS = ["a warm hum", "a bright hiss on the left"]


@pytest.fixture(scope="module")
def model():
    return fill_zero_weights(load("tiny", precision="fp32"), std=0.05)  # every layer seen


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("sampler,steps,cfg,draws", [("pingpong", 8, None, 8), ("euler", 3, 1.0, 1),
                                                     ("euler", 3, 3.0, 1)])
def test_the_captured_path_gives_generates_clips_bit_for_bit(model, sampler, steps, cfg, draws):
    gen = CapturedGenerator(model, batch=2, seconds=0.5, sampler=sampler, steps=steps, cfg_scale=cfg)
    assert not gen.graphs and gen.draws == draws  # the dry run counted the sampler's draws
    expected = generate(model, PROMPTS, seconds=0.5, sampler=sampler, steps=steps, cfg_scale=cfg, seed=7)
    assert _same(gen(PROMPTS, seed=7), expected)
    assert _same(gen(PROMPTS, seed=[7, 8]), expected)  # one seed each
    other = gen(PROMPTS, seed=9)  # the buffers are refilled per call: another seed, other clips
    assert _same(other, generate(model, PROMPTS, seconds=0.5, sampler=sampler, steps=steps, cfg_scale=cfg, seed=9))
    assert not torch.equal(other[0], expected[0])
    assert expected[0].shape == (model.config.autoencoder.io_channels, round(0.5 * model.config.sample_rate))


def test_device_noise_is_seeded_and_not_the_host_stream(model):
    gen = CapturedGenerator(model, batch=2, seconds=0.5, sampler="pingpong", steps=4, noise="device")
    a, b, c = gen(PROMPTS, seed=3), gen(PROMPTS, seed=3), gen(PROMPTS, seed=4)
    assert _same(a, b) and not torch.equal(a[0], c[0])
    host = generate(model, PROMPTS, seconds=0.5, sampler="pingpong", steps=4, seed=3)
    assert not torch.equal(a[0], host[0]) and not torch.equal(a[1], host[1])  # one stream for the whole batch
    assert all(torch.isfinite(clip).all() for clip in a)


def test_bad_settings_and_calls_are_refused_with_the_value(model):
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device; the model is on 'cpu'"):
        CapturedGenerator(model, capture=True)
    with pytest.raises(ValueError, match=r"noise must be one of \['host', 'device'\], got 'gpu'"):
        CapturedGenerator(model, noise="gpu")
    with pytest.raises(ValueError, match="batch must be a positive integer, got 0"):
        CapturedGenerator(model, batch=0)
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        CapturedGenerator(model, sampler="heun")
    gen = CapturedGenerator(model, batch=2, seconds=0.5, steps=2)
    with pytest.raises(ValueError, match=r"batches of 2 clip\(s\); got 1 prompts"):
        gen("one prompt")
    with pytest.raises(ValueError, match="got 3 seeds for 2 clips"):
        gen(PROMPTS, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="prompts must be non-empty strings"):
        gen(["", "x"])


def test_a_prompt_longer_than_the_encoder_takes_is_named(model):
    gen = CapturedGenerator(model, batch=2, seconds=0.5, steps=2)
    long = " ".join(["a very long prompt about a warm hum"] * 40)
    with pytest.warns(UserWarning, match="prompt 1 .* was truncated"):
        gen(["a warm hum", long])


def test_a_model_compiled_with_its_own_cuda_graphs_is_refused(model):
    model.compile_mode = "max-autotune"
    try:
        with pytest.raises(ValueError, match="compiled with mode 'max-autotune', which records CUDA graphs"):
            CapturedGenerator(model, capture=True)
    finally:
        del model.compile_mode


def test_the_captured_bench_times_each_stage(model):
    result = benchmark_captured(model, "tiny", batch=2, seconds=0.5, steps=2, repeats=2, warmup=1)
    stages = result.text_s + result.sampling_s + result.decoder_s
    assert min(result.text_s, result.sampling_s, result.decoder_s) > 0 and result.capture_s > 0
    assert stages <= result.total_s <= stages * 1.5 + 0.01  # the stages are consecutive slices of the total
    assert result.dit_step_s == pytest.approx(result.sampling_s / 2)
    assert "captured as CUDA graphs" in result.table() and result.as_dict()["noise"] == "host"


def test_the_cli_refuses_cuda_graphs_off_cuda():
    from arcaudio.cli import main

    with pytest.raises(SystemExit, match="--cuda-graph needs a CUDA device, got --device cpu"):
        main(["bench", "tiny", "--cuda-graph"])


def test_a_non_finite_clip_is_refused_naming_it(model):
    gen = CapturedGenerator(model, batch=2, seconds=0.5, steps=2)
    original = gen._decode

    def poisoned(latents):
        audio, finite = original(latents)
        return audio, torch.tensor([True, False])

    gen._decode = poisoned
    with pytest.raises(FloatingPointError, match=r"clip\(s\) \[1\] is not finite"):
        gen(PROMPTS)


def test_a_noise_queue_hands_out_its_draws_in_order_and_refuses_a_draw_past_its_end():
    buffer = torch.randn(2, 3, 4, 5)  # (N, B, C, T)
    queue = NoiseQueue(buffer)
    assert torch.equal(batch_randn((3, 4, 5), queue, "cpu"), buffer[0])
    assert torch.equal(batch_randn((3, 4, 5), queue, "cpu"), buffer[1])
    with pytest.raises(IndexError, match="drew noise 3 times; this queue holds 2 draws"):
        batch_randn((3, 4, 5), queue, "cpu")
    with pytest.raises(ValueError, match=r"queued noise is \(3, 4, 5\) torch.float32, the sampler asked for \(3, 4, "):
        NoiseQueue(buffer).draw((3, 4, 6), "cpu", torch.float32)
    counting = NoiseQueue(None)
    assert not batch_randn((3, 4, 5), counting, "cpu").any() and counting.drawn == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_graph_replays_generates_clips():
    model = fill_zero_weights(load("tiny", precision="fp32"), std=0.05).cuda()
    gen = CapturedGenerator(model, batch=2, seconds=0.5)
    assert set(gen.graphs) == {"text", "sampling", "decoder"} and gen.text_encoder_captured
    expected = generate(model, PROMPTS, seconds=0.5, seed=7)
    for _ in range(2):  # a second replay reads the refilled buffers
        got = gen(PROMPTS, seed=7)
        for a, b in zip(got, expected):
            assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-7
    assert not torch.equal(gen(PROMPTS, seed=8)[0], expected[0])
