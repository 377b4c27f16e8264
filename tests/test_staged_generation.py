"""The staged generation API (condition -> sample -> decode -> bytes): `generate` is exactly their composition,
conditioning is reusable, a callback can cancel, and nothing non-finite or unreadable gets through."""

import io

import numpy as np
import pytest
import soundfile as sf
import torch

from arcaudio.data.audio import audio_bytes
from arcaudio.generation import GenerationCancelled, condition, decode, generate, sample
from arcaudio.loading import load


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load("tiny")


def test_generate_is_the_composition_of_the_stages(tiny):
    prompts = ["a hum", "a hiss"]
    whole = generate(tiny, prompts, seconds=0.5, steps=2, seed=5)
    staged = decode(tiny, sample(tiny, condition(tiny, prompts, 0.5), seeds=5, steps=2), 0.5)
    assert len(staged) == 2 and all(torch.equal(a, b) for a, b in zip(whole, staged))


def test_conditioning_is_computed_once_and_reused(tiny, monkeypatch):
    calls = []
    forward = type(tiny.conditioners["prompt"]).forward
    monkeypatch.setattr(type(tiny.conditioners["prompt"]), "forward",
                        lambda self, prompts: (calls.append(list(prompts)), forward(self, prompts))[1])
    conditioning = condition(tiny, "a hum", 0.5)
    variations = conditioning.repeat(3)  # three seeds of one prompt in one pass
    latents = sample(tiny, variations, seeds=[7, 8, 9], steps=2)
    again = sample(tiny, conditioning, seeds=8, steps=3, sampler="euler")  # other seed, steps, sampler
    assert calls == [["a hum"]] and latents.shape[0] == 3 and again.shape[0] == 1
    alone = sample(tiny, conditioning, seeds=[8], steps=2)
    assert torch.equal(latents[1:2], alone)  # a variation is its seed's clip, whatever shares its batch
    with pytest.raises(ValueError, match="got 2 seeds for 3 clips"):
        sample(tiny, variations, seeds=[1, 2], steps=2)


def test_a_callback_can_cancel_between_steps(tiny):
    seen = []

    def stop_after_two(i, x):
        seen.append(i)
        if len(seen) == 2:
            raise GenerationCancelled

    with pytest.raises(GenerationCancelled):
        sample(tiny, condition(tiny, "a hum", 0.5), steps=8, callback=stop_after_two)
    assert len(seen) == 2


def test_decode_refuses_audio_that_is_not_finite(tiny):
    latents = sample(tiny, condition(tiny, ["a", "b"], 0.5), steps=1)
    latents[1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"clip\(s\) \[1\] is not finite"):
        decode(tiny, latents, 0.5)


def test_audio_bytes_are_16_bit_files_and_refuse_nan():
    clip = torch.sin(torch.linspace(0, 200, 4410)).repeat(2, 1) * 0.5  # (2, L)
    for fmt in ("wav", "flac"):
        data, sr = sf.read(io.BytesIO(audio_bytes(clip, 44100, fmt)), dtype="float32", always_2d=True)
        assert sr == 44100 and data.shape == (4410, 2)
        assert np.abs(data.T - clip.numpy()).max() <= 1 / 2**15  # 16-bit rounding
    with pytest.raises(ValueError, match=r"cannot encode 'mp3'.*flac"):
        audio_bytes(clip, 44100, "mp3")
    with pytest.raises(ValueError, match="NaN or inf"):
        audio_bytes(clip * float("nan"), 44100)


def test_a_damaged_checkpoint_is_named_in_a_clear_error(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match=r"model.safetensors' is not a readable safetensors file"):
        load(bad)


def test_the_cli_refuses_nan_guidance_and_damaged_checkpoints_with_a_message(tmp_path, capsys):
    from arcaudio.cli import main

    assert main(["generate", "tiny", "a hum", "--cfg-scale", "nan", "--out", str(tmp_path)]) == 2
    assert "cfg_scale must be a finite number, got nan" in capsys.readouterr().err
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\xff" * 64)
    assert main(["generate", str(bad), "a hum", "--out", str(tmp_path)]) == 2
    assert "broken.safetensors' is not a readable safetensors file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.wav"))  # nothing written
