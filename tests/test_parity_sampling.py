"""Sampling parity with stable-audio-tools 0.0.19: `generate` against the reference's `generate_diffusion_cond`.

tests/golden/sat_tiny_sampling.* were made by scripts/make_sat_golden.py in the reference environment: for each case
(Euler, DPM++ and ping-pong; CFG with a negative prompt, a CFG interval and CFG rescale; audio-to-audio at strengths
0.3 and 0.7) the noise the reference drew, the state and time of every network call, the final latents and the
decoded audio of a small random-weight model with a small random-weight T5. Here arcaudio generates with the same
noise (replayed in its own draw order) and must walk the same trajectory.
"""

import json

import pytest
import torch
from conftest import GOLDEN, rel_err
from golden_weights import golden_weight

import arcaudio.generation
import arcaudio.sampling
from arcaudio import load
from arcaudio.generation import generate
from arcaudio.sampling import rf_schedule

TOL = 1e-5
SPEC = json.loads((GOLDEN / "sat_tiny_sampling.json").read_text())
CASES = SPEC["cases"]


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(GOLDEN / "sat_tiny_sampling.safetensors")


@pytest.fixture(scope="module")
def model(sat_dir, tmp_path_factory):
    """The golden model with the golden script's T5 (golden_weight draws under `t5.`) as a local T5 folder."""
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    t5_dir = tmp_path_factory.mktemp("golden_t5")
    t5 = T5EncoderModel(T5Config(**SPEC["t5"]))
    with torch.no_grad():
        for name, p in t5.named_parameters():
            p.copy_(golden_weight(f"t5.{name}", tuple(p.shape)))
    t5.save_pretrained(t5_dir)
    ByT5Tokenizer().save_pretrained(t5_dir)
    return load(sat_dir, t5=t5_dir)


def _replay(monkeypatch, queue: list[torch.Tensor]) -> None:
    """Every noise draw of arcaudio (start, posterior, per step) takes the next recorded tensor instead."""

    def replay(shape, generator, device, dtype=torch.float32):
        noise = queue.pop(0)
        if noise.shape[0] == 1 and shape[0] > 1:  # the reference draws the init audio's posterior at batch 1
            noise = noise.expand(shape[0], *noise.shape[1:])
        assert tuple(noise.shape) == tuple(shape), (tuple(noise.shape), tuple(shape))
        return noise.to(device=device, dtype=dtype)

    monkeypatch.setattr(arcaudio.generation, "batch_randn", replay)
    monkeypatch.setattr(arcaudio.sampling, "batch_randn", replay)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_generate_walks_the_reference_trajectory(model, golden, case, monkeypatch):
    name, strength = case["name"], case.get("strength", 1.0)
    queue = [golden[f"{name}.noise"]]
    if strength < 1:
        queue.append(golden[f"{name}.posterior_noise"])
    if f"{name}.step_noise" in golden:
        queue += list(golden[f"{name}.step_noise"])
    _replay(monkeypatch, queue)
    b = len(SPEC["prompts"])
    calls, states = [], []
    hook = model.register_forward_pre_hook(lambda m, args: calls.append((args[0][:b].clone(), args[1][:b].clone())))
    try:
        clips = generate(model, SPEC["prompts"], seconds=SPEC["seconds_total"], steps=case["steps"],
                         sampler=case["sampler"], cfg_scale=case["cfg_scale"], seed=case["seed"],
                         negative_prompt=case.get("negative"), cfg_interval=tuple(case.get("cfg_interval", (0, 1))),
                         cfg_rescale=case.get("scale_phi", 0.0),
                         init_audio=golden["init_audio"] if strength < 1 else None, strength=strength,
                         init_posterior="sample", callback=lambda i, x: states.append(x.clone()))
    finally:
        hook.remove()
    assert len(queue) <= 1  # every recorded draw used (the reference also draws a last, unused ping-pong noise)
    ts = torch.stack([t[0] for _, t in calls])
    assert ts.shape == golden[f"{name}.ts"].shape == (case["steps"],)
    assert torch.allclose(ts.double(), golden[f"{name}.ts"].double(), rtol=0, atol=1e-7), (ts, golden[f"{name}.ts"])
    for i, (x, _) in enumerate(calls):
        assert rel_err(x, golden[f"{name}.xs"][i]) < TOL, f"step {i}: {rel_err(x, golden[f'{name}.xs'][i]):.2e}"
    assert rel_err(states[-1], golden[f"{name}.latents"]) < TOL
    audio = torch.stack(clips)  # (B, 2, 256): the whole window, nothing cropped
    assert audio.shape == golden[f"{name}.audio"].shape
    assert rel_err(audio, golden[f"{name}.audio"]) < TOL


@pytest.mark.parametrize("strength, want", [  # the reference times at s = 0.5, 8 steps
    (0.5, [0.5, 0.438, 0.378, 0.321, 0.269, 0.223, 0.182, 0.148, 0.0]),
    (1.0, [1.0, 0.99331, 0.98201, 0.95257, 0.88080, 0.73106, 0.5, 0.26894, 0.0]),
])
def test_the_reference_time_grid(strength, want):
    assert torch.allclose(rf_schedule(8, strength), torch.tensor(want, dtype=torch.float64), atol=6e-4)


def test_every_sampler_and_both_strengths_have_a_golden_case():
    covered = {(c["sampler"], c.get("strength", 1.0)) for c in CASES}
    assert covered >= {(s, v) for s in arcaudio.sampling.SAMPLERS for v in (0.3, 0.7, 1.0)}
    assert {"negative", "cfg_interval", "scale_phi"} <= {k for c in CASES for k in c}
