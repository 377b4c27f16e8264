"""Prompt-adherence evaluation: prompts, chance levels, and the report's arithmetic."""

import numpy as np
import pytest

from arcaudio.cli import main
from arcaudio.eval.adherence import AdherencePrompt, _report, adherence_prompts, evaluate_adherence, score_prompt
from arcaudio.procedural.probes import score
from arcaudio.procedural.synth import allowed_values, make_clip, probed_attributes, render


def test_prompts_are_deterministic_and_styled():
    a, b = adherence_prompts(20, seed=3), adherence_prompts(20, seed=3)
    assert [p.caption for p in a] == [p.caption for p in b]
    assert [p.caption for p in a] != [p.caption for p in adherence_prompts(20, seed=3, style="train")]
    assert {p.attributes["kind"] for p in adherence_prompts(60)} == {"tone", "chord", "noise", "drums", "sweep"}


def test_report_counts_chance_and_accuracy():
    clips = [make_clip(5, i) for i in range(12)]
    scored = [(attrs, score(audio, 44100, attrs)) for audio, attrs, _ in clips]  # clean audio: all correct
    report = _report(scored, elapsed=1.2)
    assert all(acc == 1.0 for acc in report.accuracy.values())
    assert report.counts["kind"] == 12 and report.counts["loudness"] == 12
    assert report.chance["kind"] == pytest.approx(0.2) and report.chance["pan"] == pytest.approx(1 / 3)
    kinds = [attrs["kind"] for _, attrs, _ in clips if "pitch" in attrs]
    expected = np.mean([1 / len(allowed_values(k, "pitch")) for k in kinds])
    assert report.chance["pitch"] == pytest.approx(expected)
    assert report.seconds_per_clip == pytest.approx(0.1)
    silent = [(attrs, score(np.zeros((2, 44100), np.float32), 44100, attrs)) for _, attrs, _ in clips]
    assert _report(silent, 1.0).mean_accuracy < 0.6
    assert "mean" in report.table().splitlines()[-1]


def test_quality_report_on_a_tiny_random_model():
    import torch

    from arcaudio.config import ModelConfig, preset
    from arcaudio.eval.report import evaluate_quality, reference_embeddings
    from arcaudio.loading import build_model
    from arcaudio.training.config import apply_overrides

    config = ModelConfig.from_dict(apply_overrides(preset("tiny").to_dict(), [
        "dit.depth=1", "dit.embed_dim=64", "autoencoder.channels=4", "conditioning.prompt.arch.num_layers=1"]))
    torch.manual_seed(0)
    model = build_model(config).eval()
    ref = reference_embeddings(6, config.sample_rate, config.sample_size)
    assert ref.shape == (6, 139) and np.isfinite(ref).all()
    report = evaluate_quality(model, "random", n_prompts=2, per_prompt=3, sampler="pingpong", steps=2,
                              cfg_scale=1.0, reference=ref)
    row = report.row()
    assert row["clips"] == 6 and row["steps"] == 2 and row["sampler"] == "pingpong"
    assert np.isfinite(report.frechet) and report.frechet > 0 and 0 <= report.diversity <= 2
    assert report.adherence.counts["kind"] == 6
    with pytest.raises(ValueError, match="per_prompt"):
        evaluate_quality(model, n_prompts=1, per_prompt=1, reference=ref)


def test_short_prompts_name_one_to_three_probed_attributes_and_depend_on_seed_and_index():
    prompts = adherence_prompts(40, seed=5, style="short")
    assert [(p.caption, p.names) for p in prompts[:10]] == [(p.caption, p.names) for p in
                                                            adherence_prompts(10, seed=5, style="short")]
    assert [p.caption for p in prompts] != [p.caption for p in adherence_prompts(40, seed=6, style="short")]
    assert [p.attributes for p in prompts] == [p.attributes for p in adherence_prompts(40, seed=5)]  # same clips
    assert {len(p.names) for p in prompts} == {1, 2, 3}
    assert all(set(p.names) <= set(probed_attributes(p.attributes)) for p in prompts)
    assert all(p.names == probed_attributes(p.attributes) for p in adherence_prompts(10, style="paraphrase"))
    with pytest.raises(ValueError, match="style must be one of .*'short'.*got 'tiny'"):
        adherence_prompts(1, style="tiny")
    with pytest.raises(ValueError, match="names must be a non-empty subset of the probed attributes"):
        AdherencePrompt("a sine chord", {"kind": "chord", "quality": "major", "pitch": "A3", "waveform": "sine",
                                         "loudness": "loud", "pan": "left", "envelope": "steady"}, 2.0, ["waveform"])


def _clip_for(prompt: AdherencePrompt, seconds: float) -> np.ndarray:
    """Clean audio that agrees with the prompt on every attribute it names and disagrees on its unnamed loudness
    and pan."""
    other = {"loudness": {"quiet": "loud", "loud": "quiet"}, "pan": {"left": "right", "center": "left",
                                                                     "right": "center"}}
    attributes = {k: other[k][v] if k in other and k not in prompt.names else v for k, v in prompt.attributes.items()}
    return render(attributes, seconds, np.random.default_rng(0))


def test_a_prompt_is_scored_on_the_attributes_it_names_only(monkeypatch):
    import torch

    import arcaudio.eval.adherence as adherence

    prompts = adherence_prompts(16, seed=2, style="short", seconds=2.0)
    clips = {p.caption: _clip_for(p, 2.0) for p in prompts}
    monkeypatch.setattr(adherence, "generate",
                        lambda model, captions, **kw: [torch.from_numpy(clips[c]) for c in captions])
    model = type("Stub", (), {"config": type("Config", (), {"sample_rate": 44100})})()
    report = evaluate_adherence(model, prompts, batch_size=5)
    assert report.accuracy == {name: 1.0 for name in report.accuracy}
    assert report.counts == {name: sum(name in p.names for p in prompts) for name in report.counts}
    assert sum(report.counts.values()) == sum(len(p.names) for p in prompts)
    assert [set(r) for r in report.per_clip] == [set(p.names) for p in prompts]
    misread = [p for p in prompts if not all(score(clips[p.caption], 44100, p.attributes).values())]
    assert misread  # scored on every attribute, the unnamed loudness and pan would count against them
    full = AdherencePrompt("x", prompts[0].attributes, 2.0)
    assert score_prompt(clips[prompts[0].caption], 44100, full) == score(clips[prompts[0].caption], 44100,
                                                                          prompts[0].attributes)


def test_cli_adherence_short_style(monkeypatch, capsys):
    import json

    import torch

    import arcaudio.eval.adherence as adherence
    import arcaudio.loading

    model = type("Stub", (), {"config": type("Config", (), {"sample_rate": 44100})})()
    monkeypatch.setattr(arcaudio.loading, "load", lambda name, **kw: model)
    monkeypatch.setattr(adherence, "generate",
                        lambda model, captions, seconds, **kw: [torch.zeros(2, 44100) for _ in captions])
    assert main(["adherence", "tiny", "--style", "short", "--n", "6", "--prompt-seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["what"].startswith("6 short prompts")
    names = [name for p in adherence_prompts(6, seed=3, style="short") for name in p.names]
    assert result["counts"] == {name: names.count(name) for name in result["counts"]} and sum(
        result["counts"].values()) == len(names)



def test_prompts_written_anywhere_are_scored_on_what_they_list(tmp_path, monkeypatch, capsys):
    import json

    import torch

    import arcaudio.eval.adherence as adherence
    import arcaudio.loading
    from arcaudio.eval.adherence import prompts_from_file

    lines = [{"prompt": "white noise on the left", "attributes": {"kind": "noise", "colour": "white", "pan": "left"}},
             {"prompt": "something quiet on the right", "attributes": {"loudness": "quiet", "pan": "right"}}]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    prompts = prompts_from_file(path)
    assert [(p.caption, p.names) for p in prompts] == [(lines[0]["prompt"], ["kind", "colour", "pan"]),
                                                       (lines[1]["prompt"], ["loudness", "pan"])]
    # a quiet right-panned white noise: right on colour, kind and loudness; wrong on the first prompt's pan
    attributes = {"kind": "noise", "colour": "white", "loudness": "quiet", "pan": "right", "envelope": "steady"}
    clip = render(attributes, 2.0, np.random.default_rng(0))
    model = type("Stub", (), {"config": type("Config", (), {"sample_rate": 44100})})()
    monkeypatch.setattr(arcaudio.loading, "load", lambda name, **kw: model)
    monkeypatch.setattr(adherence, "generate",
                        lambda model, captions, seconds, **kw: [torch.from_numpy(clip) for _ in captions])
    assert main(["adherence", "tiny", "--prompts-file", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["what"].startswith(f"2 prompts of {path}")
    assert result["accuracy"] == {"kind": 1.0, "colour": 1.0, "loudness": 1.0, "pan": 0.5}
    assert result["chance"] == {"kind": 0.2, "colour": 1 / 3, "loudness": 0.5, "pan": 1 / 3}

    for bad, message in [({"prompt": "x", "attributes": {"pan": "up"}}, r":1: pan 'up' is not one of \['left'"),
                         ({"prompt": "x", "attributes": {"mood": "sad"}}, r":1: unknown attribute 'mood'"),
                         ({"prompt": "x", "attributes": {"kind": "chord", "pitch": "E5"}},
                          r":1: pitch 'E5' is not one of \['A2', 'E3', 'A3', 'E4', 'A4'\]"),
                         ({"prompt": "", "attributes": {"pan": "left"}}, ":1: needs a non-empty prompt"),
                         ({"caption": "x"}, r":1: expected \{\"prompt\"")]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            prompts_from_file(path)
