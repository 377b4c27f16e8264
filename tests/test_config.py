"""Strict configs: presets, JSON round trips, unknown keys, wrong types, inconsistent values, the SAO reader."""

import copy
import json

import pytest

from arcaudio.compat.sao import model_config_from_sao, model_config_to_sao
from arcaudio.config import PRESETS, ModelConfig, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    config = preset(name)
    assert ModelConfig.from_json(config.to_json()) == config


def test_sao_small_preset_shape():
    config = preset("sao-small")
    assert config.latent_length == 256 and config.autoencoder.downsampling_ratio == 2048
    assert config.dit.head_dim == 128 and config.objective == "rf_denoiser"
    assert abs(config.max_seconds - 11.889) < 1e-3


def test_unknown_key_lists_valid_ones():
    data = preset("tiny").to_dict()
    data["dit"]["dept"] = 3
    with pytest.raises(ValueError) as info:
        ModelConfig.from_dict(data)
    assert "dit: unknown key(s) ['dept']" in str(info.value) and "'depth'" in str(info.value)


@pytest.mark.parametrize("path, value, message", [
    (("dit", "depth"), "4", "dit.depth: expected an integer, got '4'"),
    (("dit", "qk_norm"), "rms", "dit.qk_norm: 'rms' is not one of ['ln', 'none']"),
    (("autoencoder", "strides"), 8, "autoencoder.strides: expected a list"),
    (("autoencoder", "use_snake"), 1, "autoencoder.use_snake: expected true or false"),
    (("dit", "num_heads"), 3, "dit.embed_dim 128 is not divisible by dit.num_heads 3"),
    (("dit", "io_channels"), 8, "dit.io_channels 8 must equal autoencoder.latent_dim 32"),
    (("sample_size",), 1000, "sample_size 1000 is not a multiple of the autoencoder's downsampling ratio 2048"),
    (("conditioning", "seconds_total", "max_val"), -1.0, "max_val -1.0 must exceed min_val 0.0"),
])
def test_bad_values_are_named(path, value, message):
    data = preset("tiny").to_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError) as info:
        ModelConfig.from_dict(data)
    assert message in str(info.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'big'; presets: \['sao-small', 'small-harmonic', "
                                         r"'small-partials', 'small-spectral', 'tiny', 'tiny-spectral'\]"):
        preset("big")


def test_sao_config_reader_round_trip(sat_config_dict):
    config = model_config_from_sao(sat_config_dict)
    assert config.dit.depth == 3 and config.autoencoder.strides == [2, 4] and config.objective == "rf_denoiser"
    assert model_config_from_sao(model_config_to_sao(config)) == config
    sao_small = model_config_from_sao(model_config_to_sao(preset("sao-small")))
    assert sao_small == preset("sao-small")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.__setitem__("model_type", "diffusion_uncond"), "model_type is 'diffusion_uncond'"),
    (lambda d: d["model"]["diffusion"].__setitem__("diffusion_objective", "v"), "not the 'v' objective"),
    (lambda d: d["model"]["conditioning"]["configs"][0].__setitem__("type", "clap_text"),
     "conditioning 'prompt' type is 'clap_text'"),
    (lambda d: d["model"]["diffusion"]["config"].__setitem__("global_cond_type", "adaLN"),
     "diffusion.config.global_cond_type is 'adaLN'"),
    (lambda d: d["model"]["diffusion"]["config"].__setitem__("use_flash", True), "unknown key(s) ['use_flash']"),
    (lambda d: d["model"]["conditioning"]["configs"].append({"id": "seconds_start", "type": "number"}),
     "conditioners ['prompt', 'seconds_start', 'seconds_total']"),
])
def test_sao_config_reader_refuses_unsupported(sat_config_dict, edit, message):
    data = copy.deepcopy(sat_config_dict)
    edit(data)
    with pytest.raises(ValueError) as info:
        model_config_from_sao(data)
    assert message in str(info.value)


def test_released_sao_small_config_reads():
    """The SAO-small model_config.json as published (reference §1.1), training and demo blocks included."""
    released = model_config_to_sao(preset("sao-small"))
    released["model"]["pretransform"]["model_half"] = True
    released["training"] = {"use_ema": True, "demo": {"demo_steps": 8}}
    config = model_config_from_sao(json.loads(json.dumps(released)))
    assert config == preset("sao-small")
