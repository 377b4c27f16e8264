"""`arcaudio generate` writes exactly what `generate()` returns: every clip, channel by channel, to 16-bit WAV
quantisation, in prompt order."""

import numpy as np
import soundfile as sf
import torch

from arcaudio import load
from arcaudio.checkpoint import save_model
from arcaudio.cli import main
from arcaudio.config import preset
from arcaudio.generation import generate
from arcaudio.loading import build_model

STEP = 1 / 32768  # one 16-bit quantisation step


def test_generate_command_writes_each_channel_of_each_clip(tmp_path, capsys):
    torch.manual_seed(0)
    weights = save_model(build_model(preset("tiny")), tmp_path / "tiny.safetensors")  # same weights for both runs
    prompts = ["a dog barking", "soft rain"]
    settings = {"seconds": 0.5, "steps": 2, "sampler": "pingpong", "cfg_scale": 1.0, "seed": 3}
    out = tmp_path / "out"
    assert main(["generate", str(weights), *prompts, "--seconds", "0.5", "--steps", "2", "--sampler", "pingpong",
                 "--cfg-scale", "1", "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    files = sorted(out.glob("*.wav"))
    assert [f.name for f in files] == ["00_a_dog_barking.wav", "01_soft_rain.wav"]
    clips = generate(load(weights, precision="auto"), prompts, **settings)  # (2, L) each, as the CLI loads it

    for path, clip in zip(files, clips):
        info = sf.info(path)
        assert (info.subtype, info.channels, info.samplerate) == ("PCM_16", 2, 44100)
        wav, _ = sf.read(path, dtype="float64", always_2d=True)  # (L, 2)
        want = clip.clamp(-1, 1).double().numpy()  # (2, L)
        assert wav.shape == (want.shape[1], 2)
        left, right = wav[:, 0], wav[:, 1]
        assert np.sqrt(np.mean(left**2)) > 100 * STEP and np.sqrt(np.mean(right**2)) > 100 * STEP  # not silent
        # the channels differ far beyond quantisation, so a swap or a mono mix-down would show
        assert np.abs(want[0] - want[1]).max() > 50 * STEP
        assert np.abs(left - want[0]).max() <= 2 * STEP, "left channel differs from generate()'s"
        assert np.abs(right - want[1]).max() <= 2 * STEP, "right channel differs from generate()'s"
    assert not torch.allclose(clips[0], clips[1], atol=50 * STEP)  # the files are not interchangeable either
