"""The generate API beyond text-to-audio: audio-to-audio, batching, truncation warnings, the context cache, the
fast autoencoder layout, and the CLI's FLAC / spectrogram / input-error paths."""

import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
import torch

from arcaudio import load
from arcaudio.cli import main
from arcaudio.data.spectrogram import encode_png, spectrogram_db
from arcaudio.generation import encode_init_audio, generate
from arcaudio.nn.layers import SnakeBeta


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load("tiny")


def _input_clip(model, seconds=1.0):
    sr = model.config.sample_rate
    t = torch.arange(int(seconds * sr)) / sr
    burst = torch.sin(2 * torch.pi * 330 * t) * (t % 0.25 < 0.05)  # four short bursts: a clear timing
    return torch.stack([burst, 0.5 * burst]) * 0.5  # (2, L)


def test_strength_one_ignores_the_input_bit_for_bit(tiny):
    init = _input_clip(tiny)
    plain = generate(tiny, ["hum"], seconds=1.0, steps=3, sampler="pingpong", seed=3)[0]
    a2a = generate(tiny, ["hum"], seconds=1.0, steps=3, sampler="pingpong", seed=3, init_audio=init, strength=1.0)[0]
    assert torch.equal(plain, a2a)


@pytest.mark.parametrize("sampler", ["pingpong", "euler", "dpmpp"])
def test_lower_strength_stays_closer_to_the_inputs_reconstruction(tiny, sampler):
    init = _input_clip(tiny)
    recon = tiny.autoencoder.decode(encode_init_audio(tiny, [init]))[0, :, :init.shape[-1]]  # (2, L)
    gaps = []
    for strength in (0.15, 0.4, 0.8, 1.0):  # 1.0: plain text-to-audio
        out = generate(tiny, ["hum"], seconds=1.0, steps=4, sampler=sampler, seed=3, init_audio=init,
                       strength=strength)[0]
        gaps.append(float((out - recon).norm() / recon.norm()))
    assert gaps == sorted(gaps) and gaps[0] < 0.5 * gaps[-1], gaps


def test_a_posterior_sample_differs_from_the_mean_and_is_reproducible(tiny):
    init = _input_clip(tiny)
    mean = generate(tiny, ["hum"], seconds=1.0, steps=2, seed=3, init_audio=init, strength=0.5)[0]
    sample = generate(tiny, ["hum"], seconds=1.0, steps=2, seed=3, init_audio=init, strength=0.5,
                      init_posterior="sample")[0]
    again = generate(tiny, ["hum"], seconds=1.0, steps=2, seed=3, init_audio=init, strength=0.5,
                     init_posterior="sample")[0]
    assert torch.equal(sample, again) and not torch.equal(sample, mean)


def test_guidance_options_change_the_output_and_are_checked(tiny):
    live = load("tiny")  # its zero-initialised branches (cross-attention out, ...) made random: the prompt matters
    with torch.no_grad():
        for p in live.dit.parameters():
            if not p.any():
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(p.numel()))
    base = dict(seconds=0.5, steps=3, sampler="euler", cfg_scale=3.0, seed=1)
    plain = generate(live, ["hum"], **base)[0]
    for extra in ({"negative_prompt": "buzz"}, {"cfg_interval": (0.0, 0.8)}, {"cfg_rescale": 0.7}):
        changed = generate(live, ["hum"], **base, **extra)[0]
        assert float((changed - plain).norm() / plain.norm()) > 1e-3, extra
    with pytest.raises(ValueError, match="got 2 negative prompts for 3 prompts"):
        generate(tiny, ["a", "b", "c"], **base, negative_prompt=["x", "y"])
    with pytest.raises(ValueError, match=r"cfg_interval must satisfy 0 <= lo <= hi <= 1, got \(0.8, 0.2\)"):
        generate(tiny, ["hum"], **base, cfg_interval=(0.8, 0.2))
    with pytest.raises(ValueError, match=r"cfg_rescale must be in \[0, 1\], got 1.5"):
        generate(tiny, ["hum"], **base, cfg_rescale=1.5)
    with pytest.raises(ValueError, match=r"init_posterior must be one of \['mean', 'sample'\], got 'mode'"):
        generate(tiny, ["hum"], **base, init_posterior="mode")
    with pytest.warns(UserWarning, match="negative_prompt has no effect without guidance"):
        generate(tiny, ["hum"], seconds=0.5, steps=1, cfg_scale=1.0, negative_prompt="buzz")


def test_audio_to_audio_errors(tiny):
    init = _input_clip(tiny)
    with pytest.raises(ValueError, match=r"strength must be in \(0, 1\], got 0"):
        generate(tiny, ["hum"], steps=2, init_audio=init, strength=0)
    with pytest.raises(ValueError, match="got 2 init audio clips for 1 prompts"):
        generate(tiny, ["hum"], steps=2, init_audio=[init, init])
    with pytest.raises(ValueError, match=r"init audio 0 must be \(2, samples\)"):
        generate(tiny, ["hum"], steps=2, init_audio=init[:1])


def test_batch_size_does_not_change_the_clips(tiny):
    prompts = ["hum", "buzz", "hiss"]
    whole = generate(tiny, prompts, seconds=0.5, steps=2, sampler="pingpong", seed=9)
    split = generate(tiny, prompts, seconds=0.5, steps=2, sampler="pingpong", seed=9, batch_size=2)
    for a, b in zip(whole, split):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_a_too_long_prompt_warns_that_it_was_truncated(tiny):
    limit = tiny.config.conditioning.prompt.max_length
    with pytest.warns(UserWarning, match=rf"prompt 1 .* has {limit + 41} tokens; the text encoder takes {limit}"):
        generate(tiny, ["short", "x" * (limit + 40)], seconds=0.5, steps=1, sampler="pingpong")


def test_context_cache_gives_the_same_velocity_and_is_dropped_by_derived_conditionings(tiny):
    cond = tiny.condition(["a", "bb"], 1.0)
    cached = tiny.with_context_cache(cond)
    x, t = torch.randn(2, tiny.config.dit.io_channels, tiny.config.latent_length), torch.tensor([0.3, 0.8])
    torch.testing.assert_close(tiny(x, t, cached), tiny(x, t, cond), atol=0, rtol=0)
    assert cached.null().context_kv is None and type(cached).cat([cached, cached]).context_kv is None
    with pytest.raises(ValueError, match="context_kv has 1 entries"):
        tiny.dit(x, t, cond.cross_attn_cond, cond.global_cond, context_kv=cached.context_kv[:1])


def test_channels_last_autoencoder_matches_the_plain_conv1d_layout(tiny):
    ae = tiny.autoencoder
    z = torch.randn(1, ae.config.latent_dim, 8)
    plain = ae.decoder.layers(z * ae.config.latent_scale)  # the same modules on (B, C, T): conv1d throughout
    torch.testing.assert_close(ae.decode(z), plain, atol=1e-5, rtol=1e-4)
    audio = torch.randn(1, 2, 8 * ae.downsampling_ratio) * 0.1
    torch.testing.assert_close(ae.encoder(audio), ae.encoder.layers(audio), atol=1e-5, rtol=1e-4)


def test_snake_inference_path_equals_the_autograd_formula():
    snake = SnakeBeta(3)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([0.1, -0.5, 1.0]))
        snake.beta.copy_(torch.tensor([0.0, 0.7, -1.2]))
    x = torch.randn(2, 3, 50)
    ref = x + 1 / (snake.beta.exp()[None, :, None] + 1e-9) * torch.sin(snake.alpha.exp()[None, :, None] * x) ** 2
    with torch.no_grad():
        torch.testing.assert_close(snake(x), ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(snake(x), ref, atol=1e-6, rtol=1e-6)


def test_spectrogram_puts_a_tone_in_its_band_and_png_round_trips():
    sr, f = 44100, 1000.0
    t = torch.arange(sr) / sr
    db = spectrogram_db(torch.sin(2 * torch.pi * f * t)[None], sr, height=128)  # (128, frames)
    edges = np.geomspace(20.0, sr / 2, 129)
    expected_row = 127 - int(np.searchsorted(edges, f) - 1)  # row 0 is the top band
    assert abs(int(db[:, db.shape[1] // 2].argmax()) - expected_row) <= 1
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    png = encode_png(rgb)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = np.frombuffer(zlib.decompress(png[41:41 + idat_len]), np.uint8).reshape(h, 1 + 3 * w)
    assert (w, h) == (7, 5) and np.array_equal(raw[:, 1:].reshape(h, w, 3), rgb)


def test_cli_flac_spectrogram_audio_to_audio_and_input_errors(tmp_path, tiny, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _input_clip(tiny, 0.4).T.numpy(), 22050)  # 0.8 s at another rate: resampled on the way in
    out = tmp_path / "out"
    assert main(["generate", "tiny", "a hum", "--init-audio", str(src), "--strength", "0.5", "--steps", "2",
                 "--sampler", "pingpong", "--format", "flac", "--spectrogram", "--out", str(out),
                 "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00_a_hum.flac", "00_a_hum.png"]
    data, rate = sf.read(out / "00_a_hum.flac")
    assert rate == 44100 and data.shape == (35280, 2)  # the input's length by default
    assert (out / "00_a_hum.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["generate", "tiny", "a hum", "--init-audio", str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    assert "nope.wav" in capsys.readouterr().err
    assert main(["generate", "tiny", "a hum", "--strength", "0.5", "--out", str(out)]) == 2
    assert "--strength applies to audio-to-audio" in capsys.readouterr().err
    assert main(["generate", "tiny", "--prompt-file", str(tmp_path / "none.txt"), "--out", str(out)]) == 2
    assert "prompt file" in capsys.readouterr().err


def test_chunked_decoding_equals_the_whole_decode():
    from arcaudio.config import preset
    from arcaudio.models.autoencoder import AudioAutoencoder

    torch.manual_seed(0)
    ae = AudioAutoencoder(preset("sao-small").autoencoder).eval()  # the real strides: a ~10-frame receptive field
    z = torch.randn(1, 64, 28)
    with torch.no_grad():
        whole = ae.decode(z)
        chunked = ae.decode(z, chunk_frames=10, overlap_frames=16)
        torch.testing.assert_close(chunked, whole, atol=1e-5 * float(whole.abs().max()), rtol=1e-4)
        short = ae.decode(z, chunk_frames=10, overlap_frames=2)  # too little context: visibly different
        assert float((short - whole).abs().max()) > 1e-3 * float(whole.abs().max())
    with pytest.raises(ValueError, match="chunk_frames must be >= 1"):
        ae.decode(z, chunk_frames=0)


def test_cli_passes_the_sampler_and_guidance_options(tmp_path):
    argv = ["generate", "tiny", "hum", "--seconds", "0.5", "--steps", "3", "--sampler", "dpmpp", "--cfg-scale", "3",
            "--negative-prompt", "buzz", "--cfg-interval", "0.2", "0.9", "--cfg-rescale", "0.5", "--seed", "4",
            "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    written, _ = sf.read(next(tmp_path.glob("*.wav")), dtype="float32", always_2d=True)  # (L, 2)
    torch.manual_seed(0)
    want = generate(load("tiny", precision="auto"), ["hum"], seconds=0.5, steps=3, sampler="dpmpp", cfg_scale=3.0,
                    seed=4, negative_prompt="buzz", cfg_interval=(0.2, 0.9), cfg_rescale=0.5)[0]  # (2, L)
    assert np.abs(written.T - want.clamp(-1, 1).numpy()).max() < 2 / 2**15  # 16-bit WAV
