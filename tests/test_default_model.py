"""The shipped default model (arcaudio/weights/default.safetensors): it loads strictly, generates with its own
settings, and its clips still carry the attributes their prompts ask for (read back by the analytic probes), on
captions phrased in ways it never saw in training."""

import hashlib
import json
import math

import pytest
import torch

from arcaudio import load
from arcaudio.cli import main
from arcaudio.eval.adherence import adherence_prompts, evaluate_adherence
from arcaudio.loading import BUILTIN_MODELS, DEFAULT_WEIGHTS

CARD = DEFAULT_WEIGHTS.parent / "model_card.json"
BASE_WEIGHTS = BUILTIN_MODELS["default-rf"]
MARGIN = 0.1  # an attribute may score this much below the card's figure (another CPU's float rounding) and no more,
FLIPS = 3  # or, for an attribute scored on few clips, this many clips
MEAN_MARGIN = 0.03


def binomial_p_above(successes: int, n: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(n, p), exactly."""
    return math.fsum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(successes, n + 1))


def card_rows(style: str) -> tuple[int, dict[str, dict], float]:
    """(prompts per style, per-attribute rows, mean accuracy) of the model card."""
    card = json.loads(CARD.read_text())
    rows = card["adherence"][style]
    return card["prompts_per_style"], rows["attributes"], rows["mean"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load("default")


def test_shipped_weights_match_the_model_card_and_stay_small(model):
    card = json.loads(CARD.read_text())
    assert hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest() == card["sha256"]
    assert DEFAULT_WEIGHTS.stat().st_size + BASE_WEIGHTS.stat().st_size < 50 * 2**20
    assert model.config.objective == "rf_denoiser" and model.config.autoencoder.type == "harmonic"
    assert model.config.conditioning.prompt.words is not None  # the word-level text encoder


def test_the_rectified_flow_base_shares_everything_but_its_dit(model):
    base = load("default-rf")
    assert base.config.objective == "rectified_flow"
    mine, theirs = model.state_dict(), base.state_dict()
    assert set(mine) == set(theirs)
    differs = {k for k in mine if not torch.equal(mine[k], theirs[k])}
    assert differs and all(k.startswith("dit.") for k in differs)


def test_binomial_tail_is_exact():
    assert binomial_p_above(0, 10, 0.3) == pytest.approx(1.0)
    assert binomial_p_above(10, 10, 0.5) == pytest.approx(2.0**-10)
    assert binomial_p_above(2, 3, 0.5) == pytest.approx(0.5)  # 3 + 1 of 8 outcomes
    assert binomial_p_above(136, 300, 1 / 3) == pytest.approx(1.054567e-05, rel=1e-5)


@pytest.mark.parametrize("style", ["short", "paraphrase"])
def test_default_model_still_scores_what_its_card_says(model, style):
    """The card's own prompts and seeds: every attribute within MARGIN (or FLIPS clips) of the card's figure, the
    mean within MEAN_MARGIN, and every attribute the card claims at p < 1e-3 still above chance at p < 1e-3."""
    n, rows, mean = card_rows(style)
    report = evaluate_adherence(model, adherence_prompts(n, style=style))
    assert report.counts == {name: row["clips"] for name, row in rows.items()}
    low = {name: (round(report.accuracy[name], 3), round(row["accuracy"], 3)) for name, row in rows.items()
           if report.accuracy[name] < row["accuracy"] - max(MARGIN, FLIPS / row["clips"])}
    assert not low, f"{style}: (measured, card) below the card by more than {MARGIN}: {low}\n{report.table()}"
    assert report.mean_accuracy > mean - MEAN_MARGIN, report.table()
    for name, row in rows.items():
        if row["p_value"] < 1e-3:
            hits = round(report.accuracy[name] * row["clips"])
            assert binomial_p_above(hits, row["clips"], row["chance"]) < 1e-3, (name, report.table())


def test_generate_without_a_model_uses_the_default_and_demo_writes_clips(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "a loud steady white noise hiss on the left", "--out", str(out), "--no-progress"]) == 0
    assert [p.name for p in out.iterdir()] == ["00_a_loud_steady_white_noise_hiss_on_the_left.wav"]
    assert "(default)" in capsys.readouterr().err
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo)]) == 0
    names = sorted(p.suffix for p in demo.iterdir())
    assert names.count(".wav") == names.count(".png") >= 3
