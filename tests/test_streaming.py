"""Tar shards: addresses, the WebDataset layout, `arcaudio pack`, StreamingDataset's order (no repeats across
processes and workers, exact resume), and flow / ARC training streamed from shards, killed and resumed."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from arcaudio.cli import main
from arcaudio.data.dataset import AudioDataset, collate
from arcaudio.data.streaming import CURSOR_FIELD, StreamingDataset, looks_like_shards
from arcaudio.data.tar_shards import pack_manifest, read_tar_samples, write_tar_shard
from arcaudio.data.urls import expand_braces, open_url, shard_urls

KILL_AFTER_CHECKPOINT = str(Path(__file__).with_name("kill_after_checkpoint.py"))
SMALL_MODEL = ["--model-set", "dit.depth=2", "--model-set", "dit.embed_dim=64", "--model-set",
               "autoencoder.channels=4", "--model-set", "conditioning.prompt.arch.num_layers=1"]


def latent_shards(folder: Path, shards: int = 4, per_shard: int = 6, frames: int = 64) -> Path:
    """Shards of random (32, frames) latents, sample j of shard k captioned 'k-j'."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(shards):
        samples = []
        for j in range(per_shard):
            buf = io.BytesIO()
            np.save(buf, rng.standard_normal((32, frames)).astype(np.float32))
            meta = {"caption": f"{k}-{j}", "seconds_total": 2.5, "attributes": {"k": k}}
            samples.append((f"{k:03d}{j:03d}", {"latents.npy": buf.getvalue(), "json": json.dumps(meta).encode()}))
        write_tar_shard(folder / f"shard-{k:06d}.tar", samples)
    return folder


def _items(ds: StreamingDataset, epochs: int = 1) -> list[dict]:
    out = []
    for item in ds:
        if item[CURSOR_FIELD][1] >= epochs:
            return out
        out.append(item)


def test_addresses():
    assert expand_braces("s-{08..11}.tar") == ["s-08.tar", "s-09.tar", "s-10.tar", "s-11.tar"]
    assert expand_braces("{a,b}/x{1..2}") == ["a/x1", "a/x2", "b/x1", "b/x2"]
    with pytest.raises(ValueError, match=r"bad range \{5..2\}"):
        expand_braces("s-{5..2}.tar")
    assert shard_urls("a-{0..1}.tar::pipe:cat b.tar") == ["a-0.tar", "a-1.tar", "pipe:cat b.tar"]
    assert looks_like_shards("pipe:curl -s http://h/s.tar") and looks_like_shards("s3://b/s-{0..9}.tar")
    assert not looks_like_shards("manifest.jsonl")
    with pytest.raises(FileNotFoundError, match="shard 'nope.tar' does not exist"):
        with open_url("nope.tar"):
            pass
    with pytest.raises(OSError, match="exited with status 3"):
        with open_url("pipe:echo oops >&2; exit 3") as f:
            f.read()


def test_tar_layout_round_trips_and_is_reproducible(tmp_path):
    samples = [("a/001", {"flac": b"x" * 700, "json": b"{}"}), ("a/002", {"latents.npy": b"y", "json": b"[]"})]
    assert write_tar_shard(tmp_path / "1.tar", samples) == 2
    write_tar_shard(tmp_path / "2.tar", samples)
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    with open(tmp_path / "1.tar", "rb") as f:
        assert list(read_tar_samples(f)) == samples
    with open_url(f"pipe:cat {tmp_path / '1.tar'}") as f:  # a stream that cannot seek
        assert [key for key, _ in read_tar_samples(f)] == ["a/001", "a/002"]


def test_consumers_share_an_epoch_without_repeats(tmp_path):
    source = str(latent_shards(tmp_path / "s", shards=5))
    seen = []
    for rank in range(2):
        for worker_rank in range(2):  # 2 processes x 2 "workers", as 4 consumers
            ds = StreamingDataset(source, seed=3, shuffle_buffer=4).configure(rank * 2 + worker_rank, 4)
            seen += [item["caption"] for item in _items(ds)]
    assert sorted(seen) == sorted(f"{k}-{j}" for k in range(5) for j in range(6))  # every sample once
    ds = StreamingDataset(source, seed=3, shuffle_buffer=4)
    one, two = [i["caption"] for i in _items(ds, 2)][:30], [i["caption"] for i in _items(ds, 2)][30:]
    assert sorted(one) == sorted(two) and one != two  # epochs differ in order, not in content
    with pytest.raises(ValueError, match="5 shard.*for 6 consumers"):
        ds.configure(0, 3, num_workers=2)


def test_a_resumed_loader_continues_the_stream_exactly(tmp_path):
    source = str(latent_shards(tmp_path / "s", shards=4, per_shard=5))

    def loader(step=0, cursors=None):
        ds = StreamingDataset(source, seed=1, shuffle_buffer=3).configure(0, 1, 2, step, cursors)
        return iter(DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=2))

    straight = [next(it) for it in [loader()] for _ in range(9)]
    cursors = {}
    for batch in straight[:5]:
        for consumer, *cursor in batch[CURSOR_FIELD]:
            cursors[consumer] = cursor
    resumed = loader(5, cursors)
    for want in straight[5:]:
        got = next(resumed)
        assert got["caption"] == want["caption"] and torch.equal(got["latents"], want["latents"])
    assert {c for b in straight for c, *_ in b[CURSOR_FIELD]} == {0, 1}


def test_audio_shards_packed_from_a_manifest(tmp_path, caplog):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(5):
        sf.write(tmp_path / f"{i}.flac", rng.uniform(-0.5, 0.5, (8000 + 1000 * i, 2)), 8000)
        lines.append(json.dumps({"path": f"{i}.flac", "caption": f"clip {i}", "attributes": {"i": i}}))
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    lines.append(json.dumps({"path": "bad.wav", "caption": "broken"}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["pack", str(tmp_path / "m.jsonl"), str(tmp_path / "p"), "--shard-size", "2"]) == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "p").iterdir()}
    (tmp_path / "p" / "shard-000001.tar").unlink()  # a killed pack: the missing shard is written again, the same
    pack_manifest(tmp_path / "m.jsonl", tmp_path / "p", shard_size=2)
    assert {p.name: p.read_bytes() for p in (tmp_path / "p").iterdir()} == first
    with pytest.raises(ValueError, match="other settings"):
        pack_manifest(tmp_path / "m.jsonl", tmp_path / "p", shard_size=3)

    ds = StreamingDataset(str(tmp_path / "p"), sample_rate=8000, sample_size=6000, channels=2, seed=4)
    items = _items(ds)
    assert sorted(i["caption"] for i in items) == [f"clip {i}" for i in range(5)]
    assert any("bad.wav" not in s and "#000000005" in s for i in items for s in i["skipped"])
    reference = AudioDataset(tmp_path / "m.jsonl", 8000, 12000, 2, random_crop=False)
    for item in items:
        i = item["attributes"]["i"]
        whole = reference[i]["audio"][:, :8000 + 1000 * i]  # the whole file
        shard, k = item[CURSOR_FIELD][2], item[CURSOR_FIELD][3] - 1
        shard = ds.shards_of(0, 0)[shard]
        offset = int(np.random.default_rng([4, 0, shard, k]).integers(0, whole.shape[1] - 6000 + 1))
        assert torch.equal(item["audio"], whole[:, offset:offset + 6000]) and item["seconds_total"] == 0.75


def _run(stage: str, data: Path, out: Path, steps: int = 8) -> list[str]:
    workers = ["--set", "num_workers=1"] if stage == "flow" else []  # the flow run reads through a loader worker
    return ["train", "--stage", stage, "--model", "tiny", "--data", str(data), "--out", str(out), "--steps",
            str(steps), "--batch-size", "2", "--set", "checkpoint_every=4", "--set", "log_every=1", "--set",
            "shuffle_buffer=4", *workers, *SMALL_MODEL, "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize("stage", ["flow", "arc"])
def test_torchrun_training_from_shards_killed_and_resumed_ends_with_the_same_weights(tmp_path, stage):
    data = latent_shards(tmp_path / "shards", shards=4, per_shard=5)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

    def run(*argv):
        return subprocess.run([*torchrun, *argv], env=env, capture_output=True, text=True, timeout=300)

    done = run("-m", "arcaudio", *_run(stage, data, tmp_path / "straight"))
    assert done.returncode == 0, done.stderr[-3000:]
    killed = run(KILL_AFTER_CHECKPOINT, "4", *_run(stage, data, tmp_path / "killed"))
    assert killed.returncode != 0 and not (tmp_path / "killed" / "summary.json").exists()
    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
    stream = json.loads(state["stream"])
    assert stream["consumers"] == 2 and sorted(stream["cursors"]) == ["0", "1"]  # 2 processes x 1 worker
    resumed = run("-m", "arcaudio", *_run(stage, data, tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["resumed_from"] == 4 and summary["rank_weight_digests"][0] == summary["rank_weight_digests"][1]
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "killed" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # resuming with another split of the stream is refused, naming it
    again = subprocess.run([sys.executable, "-m", "arcaudio", *_run(stage, data, tmp_path / "killed", 12)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "resumes only with the same split" in again.stderr


def test_flow_training_streams_audio_shards(tmp_path):
    rng = np.random.default_rng(5)
    lines = []
    for i in range(6):
        sf.write(tmp_path / f"{i}.wav", 0.3 * rng.standard_normal((30000, 2)), 44100)
        lines.append(json.dumps({"path": f"{i}.wav", "caption": ["low", "high"][i % 2]}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    pack_manifest(tmp_path / "m.jsonl", tmp_path / "p", shard_size=2)
    out = tmp_path / "run"
    shards = f"pipe:cat {tmp_path}/p/shard-{{000000..000002}}.tar"  # a stream that cannot seek, as from a URL
    args = ["train", "--stage", "flow", "--model", "tiny", "--data", shards, "--out", str(out), "--steps", "3",
            "--batch-size", "2", "--set", "checkpoint_every=3", *SMALL_MODEL, "--no-progress"]
    assert main(args) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    assert json.loads(torch.load(out / "checkpoint.pt", weights_only=True)["stream"])["consumers"] == 1

