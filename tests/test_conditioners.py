"""T5 prompt conditioner (local loading, padding, zeroed rows) and the seconds conditioner."""

import math

import pytest
import torch
from conftest import rel_err

from arcaudio import load
from arcaudio.config import NumberConditionerConfig, PromptConditionerConfig
from arcaudio.models.conditioners import NumberConditioner, T5Conditioner, load_pretrained_t5


def test_t5_from_local_folder_matches_direct_call(t5_dir):
    encoder, tokenizer = load_pretrained_t5(t5_dir)
    cond = T5Conditioner(PromptConditionerConfig(t5_model_name=str(t5_dir), max_length=16), cond_dim=768)
    cond.attach(encoder, tokenizer)
    prompts = ["a dog barking", "rain on a tin roof at night, distant thunder"]
    tokens, mask = cond(prompts)
    assert tokens.shape == (2, 16, 768) and mask.shape == (2, 16)
    ids = [list(s.encode()) for s in prompts]  # ByT5: byte + 3, then </s>
    lengths = [min(len(i) + 1, 16) for i in ids]
    assert mask.sum(1).tolist() == lengths
    batch = tokenizer(prompts, truncation=True, max_length=16, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        ref = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    ref = ref * batch["attention_mask"][..., None]
    assert rel_err(tokens, ref) < 1e-6
    assert tokens[0, lengths[0]:].abs().max() == 0  # padded rows are exactly zero
    assert cond.token_counts(["x" * 40]) == [41]  # untruncated length, so callers can report truncation


def test_load_sao_model_with_local_t5(sat_dir, t5_dir):
    model = load(sat_dir, t5=t5_dir)
    cond = model.condition(["a cat meowing", "footsteps"], [3.0, 300.0])
    assert cond.cross_attn_cond.shape == (2, 65, 768)  # 64 T5 tokens + 1 seconds token
    assert cond.global_cond.shape == (2, 768)
    assert torch.equal(cond.cross_attn_cond[:, 64], cond.global_cond)
    seconds, _ = model.conditioners["seconds_total"]([3.0, 256.0])
    assert torch.equal(cond.global_cond, seconds[:, 0])  # 300 is clamped to max_val 256


def test_missing_t5_says_what_to_download(tmp_path, sat_dir):
    with pytest.raises(FileNotFoundError) as info:
        load(sat_dir)  # config names t5-base; no local copy exists here
    msg = str(info.value)
    assert "'t5-base' was not found" in msg and "huggingface-cli download t5-base" in msg and "--t5" in msg
    with pytest.raises(FileNotFoundError, match="huggingface-cli download"):
        load_pretrained_t5(tmp_path / "nowhere" / "t5-base")


def test_attach_rejects_wrong_width(t5_dir):
    encoder, tokenizer = load_pretrained_t5(t5_dir)
    cond = T5Conditioner(PromptConditionerConfig(), cond_dim=512)
    with pytest.raises(ValueError, match="width 768 does not match the model's cond_dim 512"):
        cond.attach(encoder, tokenizer)


def test_frozen_t5_is_outside_state_dict_but_follows_the_module(t5_dir):
    encoder, tokenizer = load_pretrained_t5(t5_dir)
    cond = T5Conditioner(PromptConditionerConfig(), cond_dim=768)
    cond.attach(encoder, tokenizer)
    assert list(cond.state_dict()) == [] and list(cond.parameters()) == []
    cond.to(torch.float64)
    assert next(encoder.parameters()).dtype == torch.float64


def test_number_conditioner_clamps_and_normalises():
    cond = NumberConditioner(NumberConditionerConfig(min_val=0, max_val=256), cond_dim=8)
    tokens, mask = cond([0.0, 64.0, 1000.0, -5.0])
    expected = cond.embedder(torch.tensor([0.0, 0.25, 1.0, 0.0]))
    assert tokens.shape == (4, 1, 8) and mask.all()
    assert rel_err(tokens[:, 0], expected) < 1e-6
    with pytest.raises(ValueError, match="finite"):
        cond([math.nan])


def test_builtin_byte_t5_needs_no_files():
    model = load("tiny")
    cond = model.condition(["kick drum"], 1.0)
    assert cond.cross_attn_cond.shape == (1, 129, 128)
    assert cond.prompt_mask[0].sum() == len("kick drum") + 1
