"""Numerical parity with stable-audio-tools 0.0.19 on a small config with random weights in every branch.

The reference outputs in tests/golden were made by scripts/make_sat_golden.py in the reference environment."""

import pytest
import torch
from conftest import rel_err

from arcaudio import load

TOL = 1e-5


@pytest.fixture(scope="module")
def model(sat_dir):
    return load(sat_dir, t5=False)


def test_dit_velocity_matches_reference(model, sat_io):
    v = model.dit(sat_io["x"], sat_io["t"], sat_io["cross_attn_cond"], sat_io["global_cond"])
    assert v.shape == sat_io["v"].shape == (2, 8, 32)
    assert rel_err(v, sat_io["v"]) < TOL


def test_dit_exit_layer_matches_reference(model, sat_io):
    h = model.dit(sat_io["x"], sat_io["t"], sat_io["cross_attn_cond"], sat_io["global_cond"], exit_layer=1)
    assert h.shape == sat_io["hidden_after_block1"].shape == (2, 33, 128)  # prepended token included
    assert rel_err(h, sat_io["hidden_after_block1"]) < TOL


def test_encoder_matches_reference(model, sat_io):
    out = model.autoencoder.encoder(sat_io["audio"])
    assert out.shape == sat_io["encoder_out"].shape
    assert rel_err(out, sat_io["encoder_out"]) < TOL


def test_decoder_matches_reference(model, sat_io):
    out = model.autoencoder.decoder(sat_io["x"])
    assert out.shape == sat_io["decoded"].shape == (2, 2, 256)
    assert rel_err(out, sat_io["decoded"]) < TOL


def test_seconds_conditioner_matches_reference(model, sat_io):
    tokens, mask = model.conditioners["seconds_total"](sat_io["seconds"])  # includes values outside [0, 256]
    assert tokens.shape == sat_io["seconds_tokens"].shape == (4, 1, 768)
    assert rel_err(tokens, sat_io["seconds_tokens"]) < TOL
    assert mask.all()


def test_full_model_velocity_from_conditioning(model, sat_io):
    """The assembled model routes Conditioning into the DiT exactly as the reference wrapper does."""
    from arcaudio.models.text_to_audio import Conditioning

    cond = Conditioning(sat_io["cross_attn_cond"], sat_io["global_cond"], torch.ones(2, 64, dtype=torch.bool))
    assert rel_err(model(sat_io["x"], sat_io["t"], cond), sat_io["v"]) < TOL
