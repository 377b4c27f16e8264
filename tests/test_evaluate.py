"""`arcaudio evaluate`: each metric against an independent computation and cases with known answers, the embedder
registry and a random CLAP from local files, prompt lists, and a run killed half-way and resumed."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

from arcaudio.eval.distribution import (
    clap_score,
    conditional_diversity,
    frechet_distance,
    kl_divergence,
    recall_coverage,
)
from arcaudio.eval.embedders import get_embedder
from arcaudio.eval.evaluate import ModelSpec, generate_clips, read_prompts


def test_frechet_distance_matches_scipy_sqrtm_and_is_zero_on_identical_sets():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 6)), rng.normal(0.3, 1.5, size=(150, 6)) @ rng.normal(size=(6, 6))
    mu_x, mu_y, s_x, s_y = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    literal = ((mu_x - mu_y) ** 2).sum() + np.trace(s_x + s_y - 2 * scipy.linalg.sqrtm(s_x @ s_y).real)
    assert frechet_distance(x, y) == pytest.approx(literal, rel=1e-6)
    assert abs(frechet_distance(x, x)) < 1e-8


def test_ccds_kl_clap_score_are_their_literal_formulas():
    same = [np.ones((4, 3)), np.tile([1.0, 2.0, 0.0], (3, 1))]
    assert conditional_diversity(same) == pytest.approx(0.0, abs=1e-12)  # identical generations: 0
    assert conditional_diversity([np.array([[1.0, 0.0], [0.0, 1.0]])]) == pytest.approx(1.0)  # orthogonal: 1
    three = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # pairwise distances 1, 2, 1
    assert conditional_diversity([three]) == pytest.approx(4 / 3)
    p, q = np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([[0.9, 0.1], [0.2, 0.8]])
    literal = (0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1) + 0.0) / 2
    assert kl_divergence(p, q) == pytest.approx(literal, rel=1e-6) and kl_divergence(p, p) == pytest.approx(0.0)
    a, t = np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[4.0, 3.0], [0.0, 2.0]])
    assert clap_score(a, t) == pytest.approx((24 / 25 + 0.0) / 2)


def test_recall_and_coverage_match_a_brute_force_count():
    rng = np.random.default_rng(1)
    real, fake, k = rng.normal(size=(30, 3)), rng.normal(0.5, 1.0, size=(25, 3)), 3

    def radius(points, i):
        d = sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)
        return d[k - 1]

    recall = np.mean([any(np.linalg.norm(r - fake[j]) <= radius(fake, j) for j in range(len(fake))) for r in real])
    coverage = np.mean([any(np.linalg.norm(real[i] - f) < radius(real, i) for f in fake) for i in range(len(real))])
    assert recall_coverage(real, fake, k) == {"recall": pytest.approx(recall), "coverage": pytest.approx(coverage)}
    assert recall_coverage(real, real, k) == {"recall": 1.0, "coverage": 1.0}
    with pytest.raises(ValueError, match="k must be in"):
        recall_coverage(real, fake, 40)


@pytest.fixture(scope="module")
def clap_folder(tmp_path_factory):
    pytest.importorskip("tokenizers")
    from arcaudio.eval.embedders.clap import save_random_clap

    return save_random_clap(tmp_path_factory.mktemp("clap") / "clap")


def test_the_registry_and_a_random_clap_from_local_files(clap_folder, tmp_path):
    clap = get_embedder(f"clap={clap_folder}")
    clips = [np.random.default_rng(i).normal(size=(2, 22050)).astype(np.float32) * 0.1 for i in range(3)]
    audio = clap.embed(clips, 22050)
    text = clap.embed_text(["a dog barking", "white noise " * 80])  # a caption longer than it takes: truncated
    assert audio.shape == (3, 16) and text.shape == (2, 16)
    assert np.allclose(np.linalg.norm(audio, axis=1), 1.0) and np.allclose(np.linalg.norm(text, axis=1), 1.0)
    state = np.random.get_state()[1].copy()
    assert np.allclose(clap.embed(clips[1:2], 22050), audio[1:2], atol=1e-5)  # whatever shares its batch
    assert np.array_equal(np.random.get_state()[1], state)  # numpy's global generator left as it was
    assert get_embedder("stats").embed(clips, 22050).shape[0] == 3
    with pytest.raises(ValueError, match=r"unknown embedder 'openl3'; available: \['clap', 'stats'\]"):
        get_embedder("openl3")
    with pytest.raises(FileNotFoundError, match="huggingface-cli download laion/clap-htsat-fused"):
        get_embedder(f"clap={tmp_path / 'nothing'}")
    with pytest.raises(FileNotFoundError, match="needs the folder of a local CLAP model"):
        get_embedder("clap")


def test_prompt_lists(tmp_path):
    csv = tmp_path / "caps.csv"
    csv.write_text("audiocap_id,caption,file\n1,a dog barking,wav/1.wav\n2,rain on a roof,\n")
    prompts = read_prompts(str(csv))
    assert [p.caption for p in prompts] == ["a dog barking", "rain on a roof"]
    assert prompts[0].reference == tmp_path / "wav/1.wav" and prompts[1].reference is None
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    assert [p.caption for p in read_prompts(str(tmp_path / "p.txt"))] == ["one", "two"]
    procedural = read_prompts("procedural:3:short")
    assert len(procedural) == 3 and all(p.attributes and p.names for p in procedural)
    (tmp_path / "bad.csv").write_text("id,text\n1,x\n")
    with pytest.raises(ValueError, match="needs a 'caption' or 'prompt' column"):
        read_prompts(str(tmp_path / "bad.csv"))
    assert ModelSpec.parse("default-rf@euler,50,4") == ModelSpec("default-rf", "euler", 50, 4.0)
    assert ModelSpec.parse("runs/arc/model.safetensors@pingpong,4,1").slug == "arc_model_pingpong4_cfg1"
    with pytest.raises(ValueError, match="SAMPLER,STEPS,CFG"):
        ModelSpec.parse("x@euler,50")


def test_a_killed_run_resumes_without_regenerating_and_gives_the_same_table(tmp_path, clap_folder):
    from arcaudio.checkpoint import save_model
    from arcaudio.cli import main
    from arcaudio.config import preset
    from arcaudio.loading import build_model, load

    torch.manual_seed(0)
    weights = save_model(build_model(preset("tiny")), tmp_path / "tiny.safetensors")  # one model for every run
    model = load(weights, precision="auto", encoder=False)  # as the command loads it
    args = [str(weights), "--prompts", "procedural:4", "--per-prompt", "2", "--steps", "2", "--reference-count", "24",
            "--embedders", f"stats,clap={clap_folder}"]
    # killed half-way: the first 2 prompts' clips are written, then the run stops
    folder = tmp_path / "a" / ModelSpec(str(weights)).slug  # where the command writes this model's clips
    assert generate_clips(model, ModelSpec(str(weights), steps=2), read_prompts("procedural:4"), folder, 2,
                          stop_after=2) == 4
    first = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.wav")}
    assert main(["evaluate", *args, "--out", str(tmp_path / "a")]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.wav")}
    assert len(after) == 8 and all(after[name] == first[name] for name in first)  # nothing regenerated
    assert main(["evaluate", *args, "--out", str(tmp_path / "b")]) == 0  # one uninterrupted run
    resumed, whole = (json.loads((tmp_path / d / "results.json").read_text())["results"][0] for d in "ab")
    assert resumed["metrics"] == pytest.approx(whole["metrics"])
    assert set(resumed["metrics"]) >= {"fd_stats", "fd_clap", "ccds_clap", "clap_score_clap", "recall_stats",
                                       "coverage_clap", "adherence"}
    assert "tiny.safetensors | euler | 2 |" in (tmp_path / "a" / "results.md").read_text()


def test_torchrun_shards_the_prompts_across_processes(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "arcaudio",
                           "evaluate", "tiny", "--prompts", "procedural:3", "--per-prompt", "2", "--steps", "1",
                           "--reference-count", "12", "--out", str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    timings = [json.loads((tmp_path / "tiny" / f"timing_rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(timings[0]) == ["0", "2"] and sorted(timings[1]) == ["1"]  # prompt i on rank i % 2
    assert len(list((tmp_path / "tiny").glob("*.wav"))) == 6 and (tmp_path / "results.json").is_file()


def test_paired_differences_use_the_shared_resamples():
    """Two models scored on the same prompts: the difference's noise is the spread of (b - a) over the shared
    bootstrap resamples, far below either figure's own noise when the prompts' difficulty dominates both."""
    from arcaudio.eval.evaluate import EvalResult, differences_table, paired_differences

    rng = np.random.default_rng(0)
    hardness = rng.normal(0.7, 0.05, 200)  # what the resamples of the prompts share
    a = EvalResult("a", "euler", 8, 1.0, 16, 0.1, {"adherence": 0.70}, {"adherence": 0.05},
                   {"adherence": list(hardness)})
    b = EvalResult("b", "pingpong", 8, 1.0, 16, 0.1, {"adherence": 0.73, "fd_stats": 3.0}, {"adherence": 0.05},
                   {"adherence": list(hardness + 0.03 + rng.normal(0, 0.005, 200)), "fd_stats": [3.0] * 200})
    (row,) = paired_differences([a, b])
    assert set(row) == {"adherence"}  # only metrics both have
    diff, noise = row["adherence"]
    assert diff == pytest.approx(0.03)
    expected = np.std(np.asarray(b.resampled["adherence"]) - hardness)
    assert noise == pytest.approx(expected) and noise < 0.01 < a.noise["adherence"]
    b.resampled["adherence"][0] = float("nan")  # an undefined resample is left out of both
    assert paired_differences([a, b])[0]["adherence"][1] == pytest.approx(
        np.std(np.asarray(b.resampled["adherence"][1:]) - hardness[1:]))
    assert "| b | pingpong | 8 | 1 | +0.030 +- 0.00" in differences_table([a, b])


def test_recall_coverage_on_a_resample_equals_it_from_the_precomputed_distances():
    """What `arcaudio evaluate` does for each bootstrap resample (index distances computed once) gives recall_coverage
    on the resampled rows, duplicates included."""
    from arcaudio.eval.distribution import kth_neighbour_radius, pairwise_distances, recall_coverage_from

    rng = np.random.default_rng(2)
    real, fake, k = rng.normal(size=(40, 6)), rng.normal(0.3, 1.0, size=(50, 6)), 3
    assert np.array_equal(pairwise_distances(real, fake, chunk_values=7),  # row chunks: the same values
                          np.linalg.norm(real[:, None] - fake[None], axis=-1))
    cross, fake_fake = pairwise_distances(real, fake), pairwise_distances(fake, fake)
    radius = kth_neighbour_radius(pairwise_distances(real, real), k)
    for _ in range(5):
        rows = rng.integers(0, 50, 50)  # with repeats, as a bootstrap draws them
        direct = recall_coverage(real, fake[rows], k)
        assert recall_coverage_from(cross[:, rows], fake_fake[np.ix_(rows, rows)], radius, k) == direct
