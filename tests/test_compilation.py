"""Compiled generation: the mode follows the device, bad modes are refused, and a compiled model generates what the
eager one does (to float rounding: inductor fuses and reorders the arithmetic)."""

import pytest
import torch

from arcaudio.cli.options import COMPILE_NAMES
from arcaudio.compilation import COMPILE_MODES, compile_model, default_compile_mode
from arcaudio.generation import generate
from arcaudio.loading import load


def test_the_mode_follows_the_device_and_bad_modes_are_refused():
    assert default_compile_mode(torch.device("cuda")) == "max-autotune"  # kernels tuned, CUDA graphs
    assert default_compile_mode(torch.device("cpu")) == "default"
    assert set(COMPILE_NAMES) == {"auto", *COMPILE_MODES}
    with pytest.raises(ValueError, match=r"compile mode must be one of .*got 'fastest'"):
        compile_model(load("tiny"), "fastest")


@pytest.mark.slow
def test_a_compiled_model_generates_what_the_eager_one_does():
    torch.manual_seed(0)
    model = load("tiny", precision="fp32")
    eager = generate(model, ["a hum", "a hiss"], seconds=0.5, steps=2, seed=1)
    compile_model(model)
    assert model.compile_mode == "default"
    compiled = generate(model, ["a hum", "a hiss"], seconds=0.5, steps=2, seed=1)
    for a, b in zip(eager, compiled):
        assert (a - b).abs().max() <= 1e-4 * a.abs().max() + 1e-6
