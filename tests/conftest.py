import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402
from golden_weights import golden_weight  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def sat_config_dict() -> dict:
    return json.loads((GOLDEN / "sat_tiny_model_config.json").read_text())


@pytest.fixture(scope="session")
def sat_io() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(GOLDEN / "sat_tiny_io.safetensors")


@pytest.fixture(scope="session")
def sat_state_dict(sat_config_dict) -> dict[str, torch.Tensor]:
    """The golden fixtures' weights in stable-audio-tools key names, checked against the stored sums."""
    from arcaudio.compat.sao import arcaudio_to_sao, model_config_from_sao
    from arcaudio.loading import build_model

    sums = json.loads((GOLDEN / "sat_tiny_weight_sums.json").read_text())
    model = build_model(model_config_from_sao(sat_config_dict))
    state = {}
    for key, value in arcaudio_to_sao(model.state_dict()).items():
        if key in sums:
            value = golden_weight(key, tuple(value.shape))
            assert abs(float(value.double().sum()) - sums[key]) <= 1e-6 * max(1.0, abs(sums[key])), (
                f"torch.randn no longer reproduces the golden weight {key}; regenerate tests/golden")
        state[key] = value
    return state


@pytest.fixture(scope="session")
def sat_dir(tmp_path_factory, sat_config_dict, sat_state_dict) -> Path:
    """A stable-audio-tools style model folder: model_config.json + model.safetensors."""
    from safetensors.torch import save_file

    out = tmp_path_factory.mktemp("sat_model")
    (out / "model_config.json").write_text(json.dumps(sat_config_dict))
    save_file({k: v.contiguous() for k, v in sat_state_dict.items()}, out / "model.safetensors")
    return out


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory) -> Path:
    """A small T5 encoder (d_model 768, random weights) and a byte-level tokenizer saved like a local t5-base."""
    from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

    out = tmp_path_factory.mktemp("t5-small-test")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    T5EncoderModel(T5Config(d_model=768, d_kv=16, d_ff=64, num_layers=2, num_heads=4, vocab_size=384)).save_pretrained(
        out)
    torch.random.set_rng_state(gen_state)
    ByT5Tokenizer().save_pretrained(out)
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))
