"""Compiled generation: the mode follows the device, bad modes are refused, and a compiled model generates what the
eager one does (to float rounding: inductor fuses and reorders the arithmetic)."""

import pytest
import torch

from arcaudio.cli.options import COMPILE_NAMES
from arcaudio.compilation import COMPILE_MODES, COMPILE_PARTS, compile_model, default_compile_mode
from arcaudio.generation import generate
from arcaudio.loading import load


def test_the_mode_follows_the_device_and_bad_modes_are_refused():
    assert default_compile_mode(torch.device("cuda")) == "max-autotune"  # kernels tuned, CUDA graphs
    assert default_compile_mode(torch.device("cpu")) == "default"
    assert set(COMPILE_NAMES) == {"auto", *COMPILE_MODES}
    with pytest.raises(ValueError, match=r"compile mode must be one of .*got 'fastest'"):
        compile_model(load("tiny"), "fastest")
    with pytest.raises(ValueError, match=r"parts must be .* of \['text_encoder', 'dit', 'decoder'\], got \['vae'\]"):
        compile_model(load("tiny"), parts=("vae",))
    assert COMPILE_PARTS == ("text_encoder", "dit", "decoder")


def test_a_compiled_text_encoder_encodes_what_the_eager_one_does_and_the_rest_stays_eager():
    torch.manual_seed(0)
    model = load("tiny", precision="fp32")
    conditioner = model.conditioners["prompt"]
    ids, mask = conditioner.tokenize(["a hum", "a long hiss of rain on a roof"])
    with torch.no_grad():
        eager, _ = conditioner.encode(ids, mask)  # (B, L, D)
        compile_model(model, parts=("text_encoder",))
        compiled, _ = conditioner.encode(ids, mask)
    assert "forward" in vars(conditioner.encoder) and "forward" not in vars(model.dit)
    assert (compiled - eager).abs().max() <= 1e-5 * eager.abs().max()


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
