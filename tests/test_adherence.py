"""Prompt-adherence evaluation: prompts, chance levels, and the report's arithmetic."""

import numpy as np
import pytest

from arcaudio.data.probes import score
from arcaudio.data.synth import allowed_values, make_clip
from arcaudio.eval.adherence import _report, adherence_prompts


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
