"""Audio I/O and transforms, manifests, AudioDataset (bad files, determinism), latent encoding, `arcaudio encode`."""

import copy
import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import arcaudio
from arcaudio.checkpoint import save_model
from arcaudio.cli import main
from arcaudio.data.audio import AudioReadError, crop_or_pad, read_audio, resample, to_channels
from arcaudio.data.dataset import AudioDataset, collate
from arcaudio.data.latents import LatentDataset, autoencoder_fingerprint, encode_dataset
from arcaudio.data.manifest import ManifestError, read_manifest

SR = 44100


def sine(seconds, freq=440.0, sr=SR, channels=2, amp=0.5):
    t = np.arange(round(seconds * sr)) / sr
    wave = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([wave * (1 - 0.3 * c) for c in range(channels)], axis=1).astype(np.float32)  # (L, C)


def write(path, data, sr=SR, **kw):
    sf.write(str(path), data, sr, **kw)
    return str(path)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tiny autoencoder's convolutions are too small to gain from threads; on a busy machine idle-spinning
    intra-op threads made them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_ae():
    return arcaudio.load("tiny").autoencoder


@pytest.fixture
def clips(tmp_path):
    """3 valid files (mono, stereo, stereo FLAC at 22.05 kHz) and 3 bad ones (corrupt, 0 frames, NaN)."""
    d = tmp_path / "audio"
    d.mkdir()
    good = [write(d / "mono.wav", sine(0.5, channels=1)), write(d / "stereo.wav", sine(0.3, 880)),
            write(d / "low.flac", sine(0.4, 300, sr=22050), sr=22050)]
    (d / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    bad = [str(d / "corrupt.wav"), write(d / "empty.wav", np.zeros((0, 2), np.float32)),
           write(d / "nan.wav", np.full((4000, 2), np.nan, np.float32), subtype="FLOAT")]
    order = [bad[0], good[0], bad[1], good[1], good[2], bad[2]]  # a bad file last: the search wraps around
    lines = [json.dumps({"path": os.path.relpath(p, tmp_path), "caption": f"clip {i}", "attributes": {"k": i}})
             for i, p in enumerate(order)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, good, bad


# ---- audio I/O and transforms


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_read_audio_formats(tmp_path, suffix):
    if suffix == ".mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    data = sine(0.25, channels=2)
    path = write(tmp_path / f"a{suffix}", data, format=suffix[1:].upper())
    audio, sr = read_audio(path)
    assert sr == SR and audio.dtype == torch.float32 and audio.shape[0] == 2
    if suffix in (".wav", ".flac"):
        assert audio.shape[1] == data.shape[0]
        assert torch.allclose(audio, torch.from_numpy(data.T), atol=1 / 32767)
    else:  # lossy codecs: roughly the same length
        assert abs(audio.shape[1] - data.shape[0]) < 0.2 * data.shape[0]


def test_read_audio_errors(tmp_path, clips, monkeypatch):
    _, good, (corrupt, empty, nan) = clips
    for path, reason in [(corrupt, "unreadable"), (empty, "empty (0 samples"), (nan, "8000 non-finite"),
                         (tmp_path / "missing.wav", "no such file")]:
        with pytest.raises(AudioReadError, match="cannot use audio file") as err:
            read_audio(path)
        assert str(path) in str(err.value) and reason in str(err.value) and isinstance(err.value, ValueError)
    mp3 = write(tmp_path / "x.wav", sine(0.1))
    os.rename(mp3, tmp_path / "x.mp3")
    monkeypatch.setattr(sf, "available_formats", lambda: {"WAV": "WAV"})
    with pytest.raises(AudioReadError, match="cannot decode MP3"):
        read_audio(tmp_path / "x.mp3")


def test_resample_keeps_frequency_and_level():
    x = torch.from_numpy(sine(1.0, 1000.0, sr=48000, channels=2).T)
    y = resample(x, 48000, SR)
    assert y.shape == (2, SR) and y.dtype == torch.float32
    spectrum = np.abs(np.fft.rfft(y[0].numpy() * np.hanning(SR)))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins
    core = y[:, 1000:-1000]
    assert torch.allclose(core.pow(2).mean(1).sqrt(), x[:, 1000:-1000].pow(2).mean(1).sqrt(), rtol=1e-3)
    assert resample(x, SR, SR) is x
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, SR)


def test_to_channels():
    mono, stereo = torch.randn(1, 100), torch.randn(2, 100)
    six = torch.randn(6, 100)
    assert torch.equal(to_channels(mono, 2), mono.repeat(2, 1))
    assert torch.allclose(to_channels(stereo, 1), stereo.mean(0, keepdim=True))
    assert to_channels(stereo, 2) is stereo
    down = to_channels(six, 2)
    assert down.shape == (2, 100) and torch.allclose(down[0], six.mean(0)) and torch.equal(down[0], down[1])
    with pytest.raises(ValueError, match="channels must be >= 1, got 0"):
        to_channels(stereo, 0)


def test_crop_or_pad():
    audio = torch.randn(2, 1000)
    window, seconds = crop_or_pad(audio, 400, 100, 1000)
    assert torch.equal(window, audio[:, 100:500]) and seconds == 0.4
    window, seconds = crop_or_pad(audio, 400, 600, 1000)
    assert torch.equal(window, audio[:, 600:]) and seconds == 0.4
    window, seconds = crop_or_pad(audio, 1500, 0, 1000)
    assert window.shape == (2, 1500) and torch.equal(window[:, :1000], audio) and seconds == 1.0
    assert not window[:, 1000:].any()
    with pytest.raises(ValueError, match=r"offset must be in \[0, 600\]"):
        crop_or_pad(audio, 400, 601, 1000)
    with pytest.raises(ValueError, match=r"offset must be in \[0, 0\]"):
        crop_or_pad(audio, 1500, 10, 1000)


# ---- manifests


def test_manifest_csv_and_jsonl(tmp_path):
    (tmp_path / "sub").mkdir()
    csv_path = tmp_path / "sub" / "m.csv"
    csv_path.write_text('path,caption,seconds,genre\na.wav," a dog, barking ",1.5,pets\n\n/abs/b.flac,rain,,\n')
    rows = read_manifest(csv_path)
    assert rows == [{"path": str(tmp_path / "sub" / "a.wav"), "caption": "a dog, barking", "seconds": 1.5,
                     "genre": "pets"},
                    {"path": "/abs/b.flac", "caption": "rain", "genre": ""}]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"path": "x.wav", "caption": "hum", "attributes": {"bpm": 120}}\n\n'
                     '{"path": "y.wav", "caption": "buzz", "seconds": 3}\n')
    rows = read_manifest(jsonl)
    assert rows[0] == {"path": str(tmp_path / "x.wav"), "caption": "hum", "attributes": {"bpm": 120}}
    assert rows[1]["seconds"] == 3.0


@pytest.mark.parametrize("name, text, message", [
    ("a.csv", "path,text\na.wav,x\n", r"line 1: the header lacks column\(s\) \['caption'\]"),
    ("a.csv", "path,caption\na.wav,x\nb.wav,y,extra\n", "line 3: expected 2 fields"),
    ("a.csv", "path,caption\na.wav,x\nb.wav,  \n", "line 3: empty caption for 'b.wav'"),
    ("a.csv", "path,caption,seconds\na.wav,x,long\n", "line 2: 'seconds' must be a number, got 'long'"),
    ("a.csv", "path,caption\n", "holds no entries"),
    ("a.jsonl", '{"path": "a.wav", "caption": "x"}\n{"path": "b.wav"\n', "line 2: invalid JSON"),
    ("a.jsonl", '{"path": "a.wav", "caption": "x"}\n\n{"path": "b.wav"}\n',
     r"line 3: missing field\(s\) \['caption'\]"),
    ("a.jsonl", '["a.wav", "x"]\n', "line 1: expected a JSON object, got list"),
    ("a.jsonl", '{"path": "", "caption": "x"}\n', "line 1: empty path"),
    ("a.jsonl", '{"path": "a.wav", "caption": 3}\n', "line 1: 'caption' must be a string, got int"),
    ("a.txt", "a.wav x\n", "unknown format '.txt'"),
])
def test_manifest_errors(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / name)


# ---- AudioDataset


def test_dataset_crops_depend_only_on_seed_epoch_index(tmp_path):
    long = write(tmp_path / "long.wav", np.random.default_rng(1).uniform(-1, 1, (20000, 2)).astype(np.float32),
                 subtype="FLOAT")
    entries = [{"path": long, "caption": "noise"}] * 3
    a = AudioDataset(entries, SR, 4096, 2, seed=7)
    b = AudioDataset(entries, SR, 4096, 2, seed=7)
    full, _ = read_audio(long)
    for epoch in (0, 1):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for i in (2, 0, 1):
            item = a[i]
            offset = int(np.random.default_rng([7, epoch, i]).integers(0, 20000 - 4096 + 1))
            assert torch.equal(item["audio"], full[:, offset:offset + 4096])
            assert torch.equal(item["audio"], b[i]["audio"])
            assert item["seconds_total"] == 4096 / SR and item["skipped"] == []
    a.set_epoch(0)
    assert not torch.equal(a[0]["audio"], a[1]["audio"])  # different crops per index
    fixed = AudioDataset(entries, SR, 4096, 2, random_crop=False)
    assert torch.equal(fixed[1]["audio"], full[:, :4096])
    with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
        a.set_epoch(-1)


def test_dataset_skips_bad_files(clips, caplog):
    manifest, good, bad = clips
    ds = AudioDataset(manifest, SR, 32768, 2)
    with caplog.at_level(logging.WARNING, logger="arcaudio.data.dataset"):
        for _ in range(2):
            items = [ds[i] for i in range(len(ds))]
            assert all(item["path"] in good for item in items)
            assert all(item["audio"].shape == (2, 32768) and torch.isfinite(item["audio"]).all() for item in items)
            assert set(collate(items)["skipped"]) == set(bad)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(any(p in w for w in warnings) for p in bad)  # once per path
    assert items[5]["path"] == good[0] and items[5]["skipped"] == [bad[2], bad[0]]  # wrapped around
    assert items[0]["skipped"] == [bad[0]] and items[0]["caption"] == "clip 1" and items[0]["attributes"] == {"k": 1}
    # mono duplicated, 22.05 kHz resampled to 44.1 kHz; seconds_total counts real audio only
    mono = items[1]
    assert torch.equal(mono["audio"][0], mono["audio"][1]) and mono["seconds_total"] == pytest.approx(0.5)
    low = items[4]
    assert low["seconds_total"] == pytest.approx(0.4) and not low["audio"][:, 17640:].any()
    batch = collate(items[:3])
    assert batch["audio"].shape == (3, 2, 32768) and batch["seconds_total"].dtype == torch.float32
    assert batch["caption"] == ["clip 1", "clip 1", "clip 3"] and batch["attributes"][2] == {"k": 3}
    assert batch["skipped"] == [bad[0], bad[1]]


def test_dataset_too_short_and_all_bad(tmp_path, clips):
    _, _, bad = clips
    short = write(tmp_path / "short.wav", sine(0.01))  # 441 samples < 1024
    ok = write(tmp_path / "ok.wav", sine(0.1))
    ds = AudioDataset([{"path": short, "caption": "a"}, {"path": ok, "caption": "b"}], SR, 2048, 2)
    assert ds[0]["skipped"] == [short] and ds[0]["path"] == ok
    ds = AudioDataset([{"path": ok, "caption": "b"}], SR, 2048, 2, min_seconds=0.2)
    with pytest.raises(ValueError, match="none of the 1 files of the dataset is usable.*too short"):
        ds[0]
    ds = AudioDataset([{"path": p, "caption": "x"} for p in bad], SR, 2048, 2)
    with pytest.raises(ValueError, match="none of the 3 files"):
        ds[1]
    with pytest.raises(IndexError):
        ds[3]


# ---- latents


def test_encode_dataset_matches_encoder_and_resumes(tmp_path, clips, tiny_ae):
    manifest, good, bad = clips
    ds = AudioDataset(manifest, SR, 8192, 2, random_crop=False)
    out = tmp_path / "latents"
    seen = []
    assert encode_dataset(tiny_ae, ds, out, shard_size=2, batch_size=2, progress=seen.append, model_id="tiny") == out
    assert sum(seen) == len(ds)
    index = json.loads((out / "index.json").read_text())
    assert index["num_items"] == 3 and index["num_shards"] == 3 and index["latent_shape"] == [32, 4]
    assert index["skipped_count"] == 3 and sorted(index["skipped"]) == sorted(bad)
    assert index["manifest"] == str(manifest.resolve()) and index["model_id"] == "tiny"
    assert [s["count"] for s in index["shards"]] == [1, 1, 1]

    lat = LatentDataset(out)
    assert len(lat) == 3 and lat.skipped == index["skipped"]
    with torch.no_grad():
        direct = tiny_ae.encode(torch.stack([ds[i]["audio"] for i in (1, 3, 4)]), sample=False)
    torch.testing.assert_close(torch.stack([lat[i]["latents"] for i in range(3)]), direct)
    item = lat[0]
    assert item["path"] == good[0] and item["caption"] == "clip 1" and item["attributes"] == {"k": 1}
    assert item["skipped"] == [] and item["seconds_total"] == pytest.approx(8192 / SR)
    assert collate([lat[0], lat[1]])["latents"].shape == (2, 32, 4)

    # resume: delete the last shard; only it is rewritten, byte for byte
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "shard-00002.safetensors").unlink()
    calls = []
    encode = tiny_ae.encode
    tiny_ae.encode = lambda *a, **k: calls.append(1) or encode(*a, **k)
    try:
        encode_dataset(tiny_ae, ds, out, shard_size=2, batch_size=2, model_id="tiny")
    finally:
        del tiny_ae.encode
    assert len(calls) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in mtimes.items() if n.startswith("shard-0000")
               and not n.startswith("shard-00002"))

    other = copy.deepcopy(tiny_ae)
    with torch.no_grad():
        other.encoder.layers[0].bias.add_(1e-3)
    assert autoencoder_fingerprint(other) != autoencoder_fingerprint(tiny_ae)
    with pytest.raises(ValueError, match="different settings.*fingerprint"):
        encode_dataset(other, ds, out, shard_size=2, batch_size=2)
    with pytest.raises(ValueError, match="different settings.*shard_size"):
        encode_dataset(tiny_ae, ds, out, shard_size=3, batch_size=2)


def test_encode_dataset_sampling_is_reproducible(tmp_path, clips, tiny_ae):
    manifest, _, _ = clips
    ds = AudioDataset(manifest, SR, 4096, 2, random_crop=False)
    a = LatentDataset(encode_dataset(tiny_ae, ds, tmp_path / "a", shard_size=4, sample=True, seed=3)).latents
    b = LatentDataset(encode_dataset(tiny_ae, ds, tmp_path / "b", shard_size=4, sample=True, seed=3)).latents
    mean = LatentDataset(encode_dataset(tiny_ae, ds, tmp_path / "c", shard_size=4)).latents
    assert torch.equal(a, b) and not torch.equal(a, mean) and a.shape == mean.shape == (3, 32, 2)


def test_latent_dataset_needs_an_index(tmp_path):
    with pytest.raises(FileNotFoundError, match="encode the dataset first"):
        LatentDataset(tmp_path)


def test_cli_encode(tmp_path, clips, capsys):
    manifest, _, bad = clips
    out = tmp_path / "cli_out"
    model = save_model(arcaudio.load("tiny"), tmp_path / "tiny.safetensors")
    argv = ["encode", str(model), str(manifest), str(out), "--shard-size", "4", "--batch-size", "2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "encoded 3 clip(s) from 6 manifest entries" in text and "2 shard(s), 2 written, 0 reused" in text
    assert "skipped 3 file(s):" in text and all(p in text for p in bad)
    assert LatentDataset(out).latents.shape == (3, 32, 64)  # the tiny preset's window: 131072 samples
    assert main(argv) == 0
    assert "0 written, 2 reused" in capsys.readouterr().out
    # the preset's weights are random on every load: its fingerprint never matches
    assert main(["encode", "tiny", str(manifest), str(out), "--shard-size", "4", "--batch-size", "2"]) == 2
    assert "different settings (fingerprint" in capsys.readouterr().err
    assert main(["encode", str(model), str(tmp_path / "nope.csv"), str(out)]) == 2
    assert "manifest" in capsys.readouterr().err


def test_a_crop_decodes_only_its_window_and_equals_the_whole_file_crop(tmp_path):
    import time

    from arcaudio.data.audio import crop_or_pad, read_audio, resample, to_channels
    from arcaudio.data.dataset import AudioDataset

    rng = np.random.default_rng(0)
    for rate in (44100, 48000):  # the dataset's own rate (exact), and one it resamples (close)
        long = 0.3 * rng.standard_normal((rate * 600, 2)).astype(np.float32)  # 10 minutes
        short = long[: rate * 10]  # 10 seconds
        sf.write(tmp_path / f"long{rate}.wav", long, rate)
        sf.write(tmp_path / f"short{rate}.wav", short, rate)
        entries = [{"path": str(tmp_path / f"{n}{rate}.wav"), "caption": n} for n in ("long", "short")]
        data = AudioDataset(entries, sample_rate=44100, sample_size=44100 * 3, channels=2, seed=5)
        for i in range(2):
            item = data[i]
            whole, file_rate = read_audio(entries[i]["path"])
            whole = to_channels(resample(whole, file_rate, 44100), 2)
            want, seconds = crop_or_pad(whole, 44100 * 3, data.crop_offset(i, whole.shape[-1]), 44100)
            assert item["seconds_total"] == pytest.approx(seconds)
            error = (item["audio"] - want).abs().max()
            assert error == 0 if rate == 44100 else error < 1e-3, (rate, i, float(error))
        times = []
        for i in range(2):  # the cost follows the window, not the file
            t0 = time.perf_counter()
            for _ in range(5):
                data[i]
            times.append(time.perf_counter() - t0)
        assert times[0] < 5 * times[1] + 0.05, times  # whole-file decoding of 10 min would be ~60x


# ---- long files: every window, torchrun, a killed encode


def test_a_long_file_encodes_to_all_its_windows(tmp_path, tiny_ae):
    rate, size = 8000, 8192  # 2 minutes at 8 kHz: 117.2 windows of 8192 samples
    data = np.random.default_rng(3).uniform(-0.5, 0.5, (120 * rate, 2)).astype(np.float32)
    path = write(tmp_path / "long.wav", data, sr=rate, subtype="FLOAT")
    ds = AudioDataset([{"path": path, "caption": "two minutes"}], rate, size, 2)
    offsets = list(range(0, 120 * rate, size))
    assert ds.window_offsets(0) == offsets and len(offsets) == 118
    assert ds.window_offsets(0, per_file=3) == [0, offsets[58], offsets[-1]] and ds.window_offsets(0, 1) == [0]
    assert ds.window_offsets(0, hop=size * 2) == offsets[::2]
    with pytest.raises(ValueError, match="per_file must be a positive integer or None"):
        ds.window_offsets(0, per_file=0)
    lat = LatentDataset(encode_dataset(tiny_ae, ds, tmp_path / "all", shard_size=1, batch_size=16, windows=None))
    assert len(lat) == 118 and lat.metadata[5]["seconds_start"] == 5 * size / rate
    tail = 120 * rate - offsets[-1]
    assert lat.seconds_total.tolist() == pytest.approx([size / rate] * 117 + [tail / rate])  # float32
    audio = torch.from_numpy(data.T.copy())
    windows = torch.stack([torch.nn.functional.pad(audio[:, o:o + size], (0, size - audio[:, o:o + size].shape[1]))
                           for o in offsets])  # the literal windows of the whole decoded file
    with torch.no_grad():
        direct = torch.cat([tiny_ae.encode(w, sample=False) for w in windows.split(16)])
    torch.testing.assert_close(lat.latents, direct, rtol=0, atol=0)
    first = LatentDataset(encode_dataset(tiny_ae, ds, tmp_path / "one", shard_size=1, windows=1))
    assert len(first) == 1  # batch of 1 against a batch of 16: equal up to the convolutions' rounding
    torch.testing.assert_close(first.latents[0], lat.latents[0])


def _long_manifest(tmp_path, n=5):
    rng = np.random.default_rng(4)
    lines = []
    for i in range(n):
        data = rng.uniform(-0.5, 0.5, (round((1 + i) * 0.37 * 8000), 2)).astype(np.float32)
        lines.append(json.dumps({"path": write(tmp_path / f"f{i}.wav", data, sr=8000), "caption": f"file {i}"}))
    manifest = tmp_path / "long.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_torchrun_encode_equals_one_process_byte_for_byte(tmp_path):
    manifest = _long_manifest(tmp_path)
    model = save_model(arcaudio.load("tiny"), tmp_path / "tiny.safetensors")
    args = ["-m", "arcaudio", "encode", str(model), str(manifest), "--shard-size", "2", "--batch-size", "3",
            "--hop-seconds", "0.5"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    import subprocess
    import sys

    one = subprocess.run([sys.executable, *args, str(tmp_path / "one")], env=env, capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          *args, str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    assert "by 2 processes: 3 shard(s), 3 written" in two.stdout
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and len(files) == 7
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert len(LatentDataset(tmp_path / "one")) > 5  # the longer files gave several windows each


def test_a_killed_encode_resumes_without_redoing_finished_shards(tmp_path, tiny_ae):
    manifest = _long_manifest(tmp_path)
    ds = AudioDataset(manifest, 8000, 4096, 2, random_crop=False)
    whole = encode_dataset(tiny_ae, ds, tmp_path / "whole", shard_size=2, windows=None)
    out = tmp_path / "killed"
    seen = []

    def kill_after_three_files(n):
        seen.append(n)
        if sum(seen) == 3:  # shard 0 (files 0, 1) written, shard 1 half done
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_dataset(tiny_ae, ds, out, shard_size=2, windows=None, progress=kill_after_three_files)
    assert sorted(p.name for p in out.iterdir()) == ["shard-00000.json", "shard-00000.safetensors"]
    calls = []
    encode = tiny_ae.encode
    tiny_ae.encode = lambda audio, **k: calls.append(audio.shape[0]) or encode(audio, **k)
    try:
        encode_dataset(tiny_ae, ds, out, shard_size=2, windows=None)
    finally:
        del tiny_ae.encode
    assert sum(calls) == len(LatentDataset(whole)) - len(json.loads((out / "shard-00000.json").read_text())["paths"])
    for p in whole.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
