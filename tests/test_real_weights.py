"""The released Stable Audio Open Small, when a user has it locally. Skipped unless both variables are set:

    ARCAUDIO_SAO_DIR=~/models/stable-audio-open-small ARCAUDIO_T5_DIR=~/models/t5-base make test-all
"""

import os

import pytest
import torch

pytestmark = pytest.mark.slow

SAO_DIR, T5_DIR = os.environ.get("ARCAUDIO_SAO_DIR"), os.environ.get("ARCAUDIO_T5_DIR")


@pytest.mark.skipif(not (SAO_DIR and T5_DIR), reason="set ARCAUDIO_SAO_DIR and ARCAUDIO_T5_DIR to run")
def test_released_checkpoint_loads_strictly_and_generates():
    from arcaudio import load
    from arcaudio.generation import generate

    model = load(SAO_DIR, t5=T5_DIR)
    counts = model.parameter_counts()
    assert abs(counts["dit"] / 1e6 - 340.9) < 0.1 and abs(counts["autoencoder"] / 1e6 - 156.1) < 0.1
    (clip,) = generate(model, ["128 BPM tech house drum loop"], seconds=4, steps=8, seed=0)
    assert clip.shape == (2, 4 * 44100) and torch.isfinite(clip).all() and clip.abs().max() > 1e-3
