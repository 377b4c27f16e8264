"""Prompt-adherence evaluation: prompts, chance levels, and the report's arithmetic."""

import numpy as np
import pytest

from arcaudio.cli import main
from arcaudio.eval.adherence import (
    AdherencePrompt,
    adherence_prompts,
    combine,
    evaluate_adherence,
    score_prompt,
    summarise,
)
from arcaudio.procedural.probes import probe_all, score
from arcaudio.procedural.synth import allowed_values, make_clip, probed_attributes, render


def test_prompts_are_deterministic_and_styled():
    a, b = adherence_prompts(20, seed=3), adherence_prompts(20, seed=3)
    assert [p.caption for p in a] == [p.caption for p in b]
    assert [p.caption for p in a] != [p.caption for p in adherence_prompts(20, seed=3, style="train")]
    assert {p.attributes["kind"] for p in adherence_prompts(60)} == {"tone", "chord", "noise", "drums", "sweep"}


def test_report_counts_chance_and_accuracy():
    clips = [make_clip(5, i) for i in range(12)]
    scored = [(attrs, probe_all(audio, 44100, probed_attributes(attrs))) for audio, attrs, _ in clips]  # all right
    report = summarise(scored, elapsed=1.2)
    assert all(acc == 1.0 for acc in report.accuracy.values())
    assert report.counts["kind"] == 12 and report.counts["loudness"] == 12
    assert report.chance["kind"] == pytest.approx(0.2) and report.chance["pan"] == pytest.approx(1 / 3)
    kinds = [attrs["kind"] for _, attrs, _ in clips if "pitch" in attrs]
    expected = np.mean([1 / len(allowed_values(k, "pitch")) for k in kinds])
    assert report.chance["pitch"] == pytest.approx(expected)
    assert report.seconds_per_clip == pytest.approx(0.1)
    silent = [(attrs, probe_all(np.zeros((2, 44100), np.float32), 44100, probed_attributes(attrs)))
              for _, attrs, _ in clips]
    assert summarise(silent, 1.0).mean_accuracy < 0.6
    assert "mean" in report.table().splitlines()[-1]


def test_confusion_counts_what_was_read_against_what_was_asked_and_combine_weights_by_clips():
    noise = {"kind": "noise", "colour": "pink", "pan": "left"}
    read = [{"kind": "noise", "colour": "white", "pan": "left"}, {"kind": "noise", "colour": "white", "pan": "left"},
            {"kind": "noise", "colour": "pink", "pan": "center"}]
    tone = {"kind": "tone", "pitch": "A4", "colour": "brown"}  # colour asked of a clip scored without it
    first = summarise([(noise, r) for r in read] + [(tone, {"kind": "noise", "pitch": "E3"})], elapsed=4.0)
    assert first.confusion["colour"] == {"pink": {"white": 2, "pink": 1}}
    assert first.confusion["kind"] == {"noise": {"noise": 3}, "tone": {"noise": 1}}
    assert first.confusion["pitch"] == {"A4": {"E3": 1}}
    assert first.accuracy == {"kind": 0.75, "colour": pytest.approx(1 / 3), "pan": pytest.approx(2 / 3),
                              "pitch": 0.0}
    table = first.confusion_table("colour").splitlines()
    assert table[0].split()[-2:] == ["white", "pink"] and table[1].split() == ["pink", "2", "1"]
    with pytest.raises(ValueError, match="no clips were scored on 'tempo'"):
        first.confusion_table("tempo")

    second = summarise([(noise, {"colour": "pink"})], elapsed=1.0)  # one clip, scored on colour only
    both = combine([first, second])
    assert both.counts == {"kind": 4, "colour": 4, "pan": 3, "pitch": 1}
    assert both.accuracy["colour"] == pytest.approx(2 / 4) and both.accuracy["kind"] == 0.75
    assert both.chance["colour"] == pytest.approx(1 / 3)
    assert both.confusion["colour"] == {"pink": {"white": 2, "pink": 2}}
    assert both.seconds_per_clip == pytest.approx(1.0) and len(both.per_clip) == 5
    with pytest.raises(ValueError, match="at least one"):
        combine([])


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
    assert sum(sum(row.values()) for row in result["confusion"]["kind"].values()) == result["counts"]["kind"]

    seeds = []
    monkeypatch.setattr(adherence, "generate", lambda model, captions, seconds, seed, **kw: seeds.append(seed) or
                        [torch.zeros(2, 44100) for _ in captions])
    assert main(["adherence", "tiny", "--n", "6", "--seed", "0", "1000", "--batch-size", "4",
                 "--confusion", "kind"]) == 0
    out = capsys.readouterr().out
    assert seeds == [0, 4, 1000, 1004]  # each seed draws every batch again
    assert "generation seed 0, 1000, batch size 4" in out and "kind: asked / read" in out
    kind_rows = out.split("kind: asked / read")[1].strip().splitlines()
    assert sum(int(x) for row in kind_rows for x in row.split()[1:]) == 12  # 6 prompts x 2 seeds
    with pytest.raises(SystemExit, match="--confusion mood: not an attribute; choose from kind"):
        main(["adherence", "tiny", "--confusion", "mood"])



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


def test_paired_adherence_script_pairs_reports_by_training_seed(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    def write(name, mean, colour, confusion):
        report = summarise([({"kind": "noise", "colour": "pink"}, {"kind": "noise", "colour": c}) for c in confusion],
                           1.0).to_dict()
        report.update(mean_accuracy=mean, accuracy={"kind": 1.0, "colour": colour})
        (tmp_path / name).write_text(json.dumps(report))
        return str(tmp_path / name)

    arm = [write("a0", 0.60, 0.5, ["white", "pink"]), write("a1", 0.62, 0.4, ["white", "white"])]
    base = [write("b0", 0.65, 0.9, ["pink", "pink"]), write("b1", 0.66, 0.8, ["pink", "white"])]
    script = Path(__file__).resolve().parents[1] / "scripts" / "paired_adherence.py"
    run = subprocess.run([sys.executable, str(script), "--arm", *arm, "--base", *base, "--confusion", "colour",
                          "--json"], capture_output=True, text=True, check=True)
    result = json.loads(run.stdout)
    assert result["differences"] == pytest.approx([-0.05, -0.04])
    assert result["difference"] == pytest.approx(-0.045) and result["standard_error"] == pytest.approx(0.005)
    assert result["per_attribute"] == pytest.approx({"kind": 0.0, "colour": -0.4})
    assert result["confusion"]["colour"]["arm"] == {"pink": {"white": 3, "pink": 1}}
    bad = subprocess.run([sys.executable, str(script), "--arm", *arm, "--base", base[0]], capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "--arm has 2 reports and --base 1" in bad.stderr
