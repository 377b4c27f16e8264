"""The built-in word-level text encoder: hashed word ids, padding and truncation, the embedding lookup, loading."""

import zlib

import pytest
import torch

from arcaudio import load
from arcaudio.checkpoint import save_model
from arcaudio.config import ModelConfig, PromptConditionerConfig, WordEncoderConfig, preset
from arcaudio.models.conditioners import T5Conditioner
from arcaudio.models.text_to_audio import TextToAudioModel
from arcaudio.models.word_encoder import EOS_ID, PAD_ID, WordTokenizer, words


def test_words_are_lower_cased_runs_of_letters_and_digits():
    assert words("On the LEFT: a plucked A4 (440 Hz), right-panned 120bpm.") == [
        "on", "the", "left", "a", "plucked", "a4", "440", "hz", "right", "panned", "120bpm"]
    assert words("  ... ") == []


def test_word_ids_are_crc32_buckets_after_the_special_ids():
    tok = WordTokenizer(4096)
    assert tok.word_id("left") == 2 + zlib.crc32(b"left") % 4094 == 1616  # the same on every machine
    assert tok.encode("Left left LEFT") == [1616, 1616, 1616, EOS_ID]
    assert tok.encode("") == [EOS_ID]
    ids = {tok.word_id(w) for w in ["left", "right", "center", "sine", "square", "noise", "sweep"]}
    assert len(ids) == 7 and min(ids) >= 2 and max(ids) < 4096
    with pytest.raises(ValueError, match="vocab_size > 2, got 2"):
        WordTokenizer(2)


def test_padding_and_truncation_as_the_conditioner_asks():
    tok = WordTokenizer(64)
    out = tok(["a b c d e", "a"], truncation=True, max_length=4, padding="max_length", return_tensors="pt")
    assert out["input_ids"].shape == (2, 4)
    assert out["input_ids"][0].tolist() == [tok.word_id(w) for w in "abcd"]  # truncated: the end id is cut too
    assert out["input_ids"][1].tolist() == [tok.word_id("a"), EOS_ID, PAD_ID, PAD_ID]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert tok(["a b c d e"], truncation=False)["input_ids"] == [[*(tok.word_id(w) for w in "abcde"), EOS_ID]]
    with pytest.raises(ValueError, match="padded to max_length"):
        tok(["a"], return_tensors="pt")


def test_conditioner_rows_are_the_embeddings_of_their_words_and_pads_are_zero():
    torch.manual_seed(0)
    cond = T5Conditioner(PromptConditionerConfig(max_length=8, words=WordEncoderConfig(vocab_size=128)), cond_dim=16)
    assert cond.builtin and set(dict(cond.named_parameters())) == {"model.embedding.weight"}
    table = cond.model.embedding.weight
    assert abs(float(table.detach().std()) - 0.05) < 0.01  # small init: unseen words stay near zero
    tokens, mask = cond(["a sine note on the left", "noise"])
    ids = [cond.tokenizer.word_id(w) for w in ["a", "sine", "note", "on", "the", "left"]] + [EOS_ID]
    assert mask.sum(1).tolist() == [7, 2] and tokens.shape == (2, 8, 16)
    assert torch.equal(tokens[0, :7], table[ids])
    assert tokens[1, 2:].abs().max() == 0
    assert cond.token_counts(["one two three"]) == [4]


def test_config_rejects_two_encoders_and_bad_sizes():
    config = preset("small-partials")
    assert config.conditioning.prompt.words is not None and config.conditioning.prompt.arch is None
    config.conditioning.prompt.arch = preset("small-spectral").conditioning.prompt.arch
    with pytest.raises(ValueError, match="set arch .* or words .*, not both"):
        config.validate()
    config = preset("small-partials")
    config.conditioning.prompt.words.vocab_size = 2
    with pytest.raises(ValueError, match="vocab_size must be >= 3 and init_std > 0, got 2 and 0.05"):
        config.validate()


def test_a_word_model_saves_and_loads_with_its_encoder(tmp_path):
    torch.manual_seed(0)
    model = TextToAudioModel(preset("small-partials"))
    path = save_model(model, tmp_path / "m.safetensors")
    loaded = load(path)
    assert ModelConfig.from_json(loaded.config.to_json()).conditioning.prompt.words == WordEncoderConfig()
    prompts = ["a sine note on the left", "white noise"]
    assert torch.equal(model.condition(prompts, 2.97).cross_attn_cond, loaded.condition(prompts, 2.97).cross_attn_cond)
