"""The training loop: exact resume after a kill, DDP over 2 gloo processes, bad files, losses and updates."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from arcaudio.cli import main
from arcaudio.training.config import OptimConfig, TrainConfig, apply_overrides
from arcaudio.training.ema import EMA
from arcaudio.training.optim import lr_factor

SMALL_MODEL = ["--model-set", "dit.depth=2", "--model-set", "dit.embed_dim=64", "--model-set",
               "autoencoder.channels=4", "--model-set", "conditioning.prompt.arch.num_layers=1"]


@pytest.fixture(scope="module")
def audio_manifest(tmp_path_factory) -> Path:
    """12 short stereo clips (three tones) with captions."""
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(12):
        n = int(44100 * rng.uniform(0.5, 1.5))
        x = 0.3 * np.sin(2 * np.pi * [220, 440, 880][i % 3] * np.arange(n) / 44100)
        sf.write(root / f"{i}.wav", np.stack([x, 0.5 * x], 1), 44100)
        lines.append(json.dumps({"path": f"{i}.wav", "caption": ["low tone", "mid tone", "high tone"][i % 3]}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def _train_args(manifest: Path, out: Path, steps: int = 6, stage: str = "flow") -> list[str]:
    return ["train", "--stage", stage, "--model", "tiny", "--data", str(manifest), "--out", str(out),
            "--steps", str(steps), "--batch-size", "2", "--set", "checkpoint_every=2", "--set", "log_every=1",
            *SMALL_MODEL, "--no-progress"] + (
        ["--set", "autoencoder.crop_samples=8192"] if stage == "autoencoder" else [])


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "model.safetensors")


KILL_AFTER_CHECKPOINT = str(Path(__file__).with_name("kill_after_checkpoint.py"))


@pytest.mark.parametrize("stage", ["flow", "autoencoder", "arc"])
def test_killed_run_resumes_to_identical_weights(tmp_path, audio_manifest, stage):
    straight = tmp_path / "straight"
    assert main(_train_args(audio_manifest, straight, 8, stage)) == 0

    killed = tmp_path / "killed"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, KILL_AFTER_CHECKPOINT, "4",
                           *_train_args(audio_manifest, killed, 8, stage)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["step"] == 4
    assert not (killed / "summary.json").exists()
    assert main(_train_args(audio_manifest, killed, 8, stage)) == 0
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["resumed_from"] == 4
    a, b = _weights(straight), _weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    logged = [int(line.split(",")[0]) for line in (killed / "log.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, 9))  # no lost or repeated step


# autoencoder: its data-dependent init is broadcast; arc: two DDP modules, alternating steps
@pytest.mark.parametrize("stage", ["flow", "autoencoder", "arc"])
def test_ddp_two_gloo_processes_stay_in_sync(tmp_path, audio_manifest, stage):
    out = tmp_path / "ddp"
    args = _train_args(audio_manifest, out, 3, stage)
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",  # a free port
           "-m", "arcaudio", *args, "--device", "cpu"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    digests = summary["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    single = tmp_path / "single"
    assert main(_train_args(audio_manifest, single, 3, stage)) == 0
    assert json.loads((single / "summary.json").read_text())["rank_weight_digests"][0] != digests[0]


def test_bad_files_are_skipped_and_counted(tmp_path, audio_manifest, capsys):
    root = tmp_path / "data"
    root.mkdir()
    lines = audio_manifest.read_text().splitlines()
    for line in lines:
        name = json.loads(line)["path"]
        (root / name).write_bytes((audio_manifest.parent / name).read_bytes())
    (root / "corrupt.wav").write_bytes(os.urandom(2000))
    sf.write(root / "empty.wav", np.zeros((0, 2)), 44100)
    sf.write(root / "nan.wav", np.full((44100, 2), np.nan), 44100, subtype="FLOAT")
    for bad in ("corrupt.wav", "empty.wav", "nan.wav"):
        lines.append(json.dumps({"path": bad, "caption": "broken"}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(_train_args(root / "manifest.jsonl", out, 8)) == 0  # 8 steps x 2 > 15 items: every file is seen
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(Path(p).name for p in summary["skipped_files"]) == ["corrupt.wav", "empty.wav", "nan.wav"]
    assert "skipped files: 3" in capsys.readouterr().err
    assert all(math.isfinite(float(line.split(",")[1])) for line in (out / "log.csv").read_text().splitlines()[1:])


def test_training_changes_weights_and_exports_ema(tmp_path, audio_manifest):
    out = tmp_path / "run"
    assert main(_train_args(audio_manifest, out, 4)) == 0
    from arcaudio import load

    trained = load(out / "model.safetensors")
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    raw = state["model"]
    ema = state["stage"]["ema"]["shadow"]
    key = "dit.transformer.layers.0.self_attn.to_qkv.weight"
    assert torch.equal(trained.state_dict()[key], ema[key])  # the exported model holds the EMA weights
    assert not torch.equal(raw[key], ema[key])
    from arcaudio.training.runner import build_training_model

    fresh = build_training_model(TrainConfig(model="tiny", data="x"), SMALL_MODEL[1::2]).state_dict()
    assert not torch.equal(fresh[key], raw[key])  # training moved the weights
    assert torch.equal(fresh["autoencoder.encoder.layers.0.weight_v"], raw["autoencoder.encoder.layers.0.weight_v"])


def test_ema_warmup_formula():
    module = torch.nn.Linear(2, 1)
    ema = EMA(module, decay=0.99, power=0.75)
    shadow = module.weight.detach().clone()
    for k in range(5):
        with torch.no_grad():
            module.weight.add_(1.0)
        decay = min(0.99, 1 - (k + 1) ** -0.75)
        shadow = decay * shadow + (1 - decay) * module.weight.detach()
        ema.update(module)
    assert torch.allclose(ema.shadow["weight"], shadow)


def test_lr_schedule():
    cfg = OptimConfig(lr=1.0, warmup_steps=4, schedule="cosine")
    assert lr_factor(0, 14, cfg) == 0.25 and lr_factor(3, 14, cfg) == 1.0
    assert abs(lr_factor(9, 14, cfg) - 0.5) < 1e-9 and lr_factor(14, 14, cfg) < 1e-9


def test_overrides_and_dry_run(capsys, audio_manifest):
    with pytest.raises(ValueError, match=r"no 'lrr' at optim; valid: \['betas', 'eps'"):
        apply_overrides(TrainConfig().to_dict(), ["optim.lrr=1"])
    both = apply_overrides(TrainConfig().to_dict(), ["arc.contrastive=false", "arc.r1_weight=1e-2",
                                                     "arc.exit_layer=null", "stage=arc"])
    assert both["arc"]["contrastive"] is False and both["arc"]["r1_weight"] == 0.01 and both["stage"] == "arc"
    assert both["arc"]["exit_layer"] is None
    assert main(["train", "--model", "tiny", "--data", str(audio_manifest), "--set", "optim.lr=0.003",
                 "--model-set", "dit.depth=2", "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train"]["optim"]["lr"] == 0.003 and resolved["model"]["dit"]["depth"] == 2


def test_autoencoder_adversarial_step_updates_both_players(audio_manifest):
    from arcaudio.data.dataset import collate
    from arcaudio.training.distributed import DistInfo
    from arcaudio.training.runner import build_dataset, build_stage, build_training_model

    config = TrainConfig.from_dict({"stage": "autoencoder", "data": str(audio_manifest), "batch_size": 2,
                                    "autoencoder": {"crop_samples": 4096, "adversarial_weight": 0.1}})
    model = build_training_model(config, SMALL_MODEL[1::2])
    dataset, _ = build_dataset(config, model.config)
    stage = build_stage(model, config, DistInfo())
    disc_before = {k: v.clone() for k, v in stage.discriminator.state_dict().items()}
    ae_before = {k: v.clone() for k, v in model.autoencoder.state_dict().items()}
    dit_before = {k: v.clone() for k, v in model.dit.state_dict().items()}
    metrics = stage.train_step(collate([dataset[0], dataset[1]]), 0, torch.Generator().manual_seed(0))
    assert {"dis_loss", "gen_adv", "feature_matching", "stft", "l1", "kl"} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(v, stage.discriminator.state_dict()[k]) for k, v in disc_before.items())
    assert any(not torch.equal(v, model.autoencoder.state_dict()[k]) for k, v in ae_before.items())
    assert all(torch.equal(v, model.dit.state_dict()[k]) for k, v in dit_before.items())  # frozen in this stage


def test_arc_command_exports_a_few_step_generator(tmp_path, audio_manifest):
    from arcaudio.generation import generate, sampling_settings
    from arcaudio.loading import load

    out = tmp_path / "arc"
    args = ["arc", "tiny", "--data", str(audio_manifest), "--out", str(out), "--steps", "2", "--batch-size", "2",
            *SMALL_MODEL, "--no-progress"]
    assert main(args) == 0
    model = load(out / "model.safetensors")
    assert model.config.objective == "rf_denoiser"
    settings = sampling_settings(model.config.objective)  # what generate() uses when asked for nothing
    assert (settings.sampler, settings.steps, settings.cfg_scale) == ("pingpong", 8, 1.0)
    steps = []
    default = generate(model, ["low tone"], seconds=0.5, seed=1, callback=lambda i, x: steps.append(i))[0]
    assert len(steps) == 8
    explicit = generate(model, ["low tone"], seconds=0.5, seed=1, sampler="pingpong", steps=8, cfg_scale=1.0)[0]
    assert torch.equal(default, explicit)
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "d_loss", "d_relativistic", "d_contrastive", "g_grad_norm", "d_grad_norm"} <= set(header)
    assert not (out / "sao").exists()  # a built-in byte T5 has no stable-audio-tools form


def test_spectral_autoencoder_learns_level_and_stereo_balance(tmp_path, audio_manifest):
    """The `tiny-spectral` autoencoder, trained briefly from nothing, gives back each channel's level: the tones'
    right channel sits 6 dB under the left (what the waveform autoencoder could not learn in CPU minutes)."""
    out = tmp_path / "ae"
    args = ["train", "--stage", "autoencoder", "--model", "tiny-spectral", "--data", str(audio_manifest),
            "--out", str(out), "--steps", "150", "--batch-size", "4", "--no-progress",
            "--model-set", "autoencoder.channels=48", "--set", "autoencoder.crop_samples=16384",
            "--set", "autoencoder.envelope_weight=1.0", "--set", "optim.lr=2e-3", "--set", "optim.warmup_steps=10",
            "--set", "log_every=50", "--set", "checkpoint_every=1000"]
    assert main(args) == 0
    from arcaudio import load

    model = load(out / "model.safetensors")
    assert model.config.autoencoder.type == "spectral" and model.config.autoencoder.latent_scale != 1.0
    t = np.arange(32768) / 44100
    for hz in (220, 440, 880):
        x = torch.tensor(0.3 * np.sin(2 * np.pi * hz * t), dtype=torch.float32)
        audio = torch.stack([x, 0.5 * x])[None]  # (1, 2, n) as in training
        with torch.no_grad():
            y = model.autoencoder.decode(model.autoencoder.encode(audio, sample=False))[0, :, 4096:-4096]
        level_db = 10 * torch.log10(y.pow(2).mean(-1))  # (2,)
        want_db = 10 * math.log10(0.3**2 / 2) + torch.tensor([0.0, 20 * math.log10(0.5)])
        assert torch.allclose(level_db, want_db, atol=2.0), f"{hz} Hz: levels {level_db} dB, want {want_db}"


def test_recaption_draws_fresh_captions_from_attributes_reproducibly():
    from arcaudio.procedural.synth import make_clip
    from arcaudio.training.flow_stage import recaptioned

    items = [make_clip(0, i, max_seconds=1.5)[1] for i in range(6)]
    batch = {"attributes": items, "caption": ["stored"] * 6}
    a = recaptioned(batch, torch.Generator().manual_seed(1))
    assert a == recaptioned(batch, torch.Generator().manual_seed(1))
    assert a != recaptioned(batch, torch.Generator().manual_seed(2))
    assert all(isinstance(c, str) and c and c != "stored" for c in a)
    with pytest.raises(ValueError, match="flow.recaption needs procedural-set items"):
        recaptioned({"caption": ["x"]}, torch.Generator())


def test_recaption_mixes_in_short_captions_at_the_configured_share():
    from arcaudio.procedural.synth import make_clip, nameable_attributes, synonyms
    from arcaudio.training.flow_stage import recaptioned

    items = [make_clip(0, i, max_seconds=1.5)[1] for i in range(40)]
    table = synonyms("train")

    def named(caption, attributes):
        return sum(any(p.lower() in caption.lower() for p in table[n][attributes[n]])
                   for n in nameable_attributes(attributes))

    full = recaptioned({"attributes": items}, torch.Generator().manual_seed(1))
    assert full == recaptioned({"attributes": items}, torch.Generator().manual_seed(1), 0.0)
    short = recaptioned({"attributes": items}, torch.Generator().manual_seed(1), 1.0)
    assert short == recaptioned({"attributes": items}, torch.Generator().manual_seed(1), 1.0)
    assert all(named(c, a) == len(nameable_attributes(a)) for c, a in zip(full, items))
    assert sum(named(c, a) < len(nameable_attributes(a)) for c, a in zip(short, items)) > 25


def test_the_flow_step_recaptions_with_the_configured_share(monkeypatch):
    import arcaudio.training.flow_stage as flow_stage
    from arcaudio.config import ModelConfig, preset
    from arcaudio.loading import build_model
    from arcaudio.procedural.synth import make_clip
    from arcaudio.training.distributed import DistInfo

    model = build_model(ModelConfig.from_dict(apply_overrides(preset("tiny").to_dict(), [
        "dit.depth=1", "dit.embed_dim=64", "autoencoder.channels=4", "conditioning.prompt.arch.num_layers=1"])))
    config = TrainConfig.from_dict(apply_overrides(TrainConfig().to_dict(), [
        "data='x'", "ema_decay=0.0", "flow.recaption=true", "flow.short_caption_share=0.4"]))
    shares, real = [], flow_stage.recaptioned

    def spy(batch, generator, short_share=0.0):
        shares.append(short_share)
        return real(batch, generator, short_share)

    monkeypatch.setattr(flow_stage, "recaptioned", spy)
    batch = {"latents": torch.randn(2, 32, 16), "caption": ["stored"] * 2, "seconds_total": torch.full((2,), 1.5),
             "attributes": [make_clip(0, i, max_seconds=1.5)[1] for i in range(2)]}
    flow_stage.FlowStage(model, config, DistInfo()).train_step(batch, 0, torch.Generator().manual_seed(0))
    assert shares == [0.4]


def test_short_caption_share_is_validated():
    base = {"data": "x.jsonl", "flow": {"recaption": True}}
    assert TrainConfig.from_dict(base | {"flow": {"recaption": True, "short_caption_share": 0.3}}).flow.\
        short_caption_share == 0.3
    assert TrainConfig.from_dict(base).flow.short_caption_share == 0.0
    with pytest.raises(ValueError, match=r"flow.short_caption_share must be in \[0, 1\], got 1.5"):
        TrainConfig.from_dict(base | {"flow": {"recaption": True, "short_caption_share": 1.5}})
    with pytest.raises(ValueError, match=r"flow.short_caption_share must be in \[0, 1\], got -0.1"):
        TrainConfig.from_dict(base | {"flow": {"recaption": True, "short_caption_share": -0.1}})
    with pytest.raises(ValueError, match=r"short_caption_share \(0.5\) acts only on recaptioned batches; set "
                                         "flow.recaption=true"):
        TrainConfig.from_dict(base | {"flow": {"short_caption_share": 0.5}})


def test_a_run_saved_before_a_config_field_existed_still_resumes(tmp_path, audio_manifest, capsys):
    run = tmp_path / "run"
    assert main(_train_args(audio_manifest, run, 2)) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    configs = json.loads(state["configs"])
    del configs["train"]["flow"]["recaption"]  # as written by a version without the field
    state["configs"] = json.dumps(configs)
    torch.save(state, run / "checkpoint.pt")
    assert main(_train_args(audio_manifest, run, 4)) == 0
    assert json.loads((run / "summary.json").read_text())["resumed_from"] == 2
    capsys.readouterr()
    assert main(_train_args(audio_manifest, run, 6) + ["--set", "flow.cfg_dropout=0.5"]) == 2  # a real change
    assert "flow.cfg_dropout: 0.1 in the run, 0.5 now" in capsys.readouterr().err  # the refusal names it


def test_peak_locked_autoencoder_trains_on_magnitudes(tmp_path, audio_manifest):
    """The `small-spectral` autoencoder (smaller here), trained briefly in the magnitude domain: it runs end to end,
    its spectral loss falls and it decodes finite audio (its phase follows from the decoded magnitudes). Levels,
    balance and pitch are not asserted: 400 steps of this learned decoder do not settle them (see the README)."""
    import csv

    out = tmp_path / "ae"
    args = ["train", "--stage", "autoencoder", "--model", "small-spectral", "--data", str(audio_manifest),
            "--out", str(out), "--steps", "400", "--batch-size", "4", "--no-progress",
            "--model-set", "autoencoder.channels=48", "--set", "autoencoder.crop_samples=16384",
            "--set", "autoencoder.domain=magnitude", "--set", "autoencoder.envelope_weight=1.0",
            "--set", "optim.lr=2e-3", "--set", "optim.warmup_steps=10",
            "--set", "log_every=50", "--set", "checkpoint_every=1000"]
    assert main(args) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert float(rows[-1]["stft"]) < 0.8 * float(rows[0]["stft"]), rows
    from arcaudio import load

    model = load(out / "model.safetensors")
    t = np.arange(44100) / 44100
    for hz in (220, 440, 880):
        x = torch.tensor(0.3 * np.sin(2 * np.pi * hz * t), dtype=torch.float32)
        audio = torch.stack([x, 0.5 * x])[None, :, :43008]  # (1, 2, n) as in training; n a multiple of 2048
        with torch.no_grad():
            y = model.autoencoder.decode(model.autoencoder.encode(audio, sample=False))[0]
        assert bool(torch.isfinite(y).all())


def test_magnitude_domain_needs_a_peak_locked_spectral_autoencoder(audio_manifest):
    from arcaudio.loading import build_model
    from arcaudio.training.autoencoder_stage import AutoencoderStage
    from arcaudio.training.distributed import DistInfo

    config = TrainConfig.from_dict({"stage": "autoencoder", "data": str(audio_manifest), "batch_size": 2,
                                    "autoencoder": {"crop_samples": 4096, "domain": "magnitude"}})
    info = DistInfo()
    from arcaudio.config import preset

    for name, match in (("tiny", "type 'oobleck'"), ("tiny-spectral", "phase 'learned'")):
        with pytest.raises(ValueError, match=match):
            AutoencoderStage(build_model(preset(name)), config, info)


@pytest.mark.parametrize("stage", ["flow", "arc"])
def test_gradient_accumulation_gives_the_one_batch_update(tmp_path, audio_manifest, stage):
    def run(out, *extra):
        args = ["train", "--stage", stage, "--model", "tiny", "--data", str(audio_manifest), "--out", str(out),
                "--steps", "4", "--batch-size", "4", "--set", "log_every=1", "--set", "ema_decay=0.0",
                "--set", "arc.contrastive_shuffle='roll'", *SMALL_MODEL, "--no-progress", *extra]
        assert main(args) == 0
        return _weights(out), [line.split(",")[1] for line in (out / "log.csv").read_text().splitlines()[1:]]

    whole, whole_loss = run(tmp_path / "whole")
    parts, parts_loss = run(tmp_path / "parts", "--set", "grad_accum=3")  # micro-batches of 1, 2 and 1 items
    assert any(not torch.equal(whole[k], parts[k]) for k in whole)  # computed otherwise: rounding differs ...
    for k in whole:  # ... and nothing else
        torch.testing.assert_close(parts[k], whole[k], rtol=1e-4, atol=1e-5)
    assert [float(v) for v in parts_loss] == pytest.approx([float(v) for v in whole_loss], rel=1e-4)
    with pytest.raises(ValueError, match=r"grad_accum must be in \[1, batch_size = 4\], got 5"):
        TrainConfig(data="x", batch_size=4, grad_accum=5).validate()


def test_the_log_reports_throughput_and_counted_model_flops(tmp_path, audio_manifest, capsys, monkeypatch):
    from arcaudio.training.throughput import counted_flops, peak_flops

    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert counted_flops(lambda: a @ b)[1] == 2 * 8 * 16 * 4  # the counter, against the literal count
    assert peak_flops(torch.device("cpu"), "bf16") is None
    monkeypatch.setenv("ARCAUDIO_PEAK_TFLOPS", "0.5")  # as if the device's peak were known: MFU is reported
    out = tmp_path / "run"
    assert main(_train_args(audio_manifest, out, 3)) == 0
    rows = (out / "log.csv").read_text().splitlines()
    header, last = rows[0].split(","), dict(zip(rows[0].split(","), rows[-1].split(",")))
    assert {"samples_per_s", "tflops", "mfu"} <= set(header)
    assert float(last["samples_per_s"]) == pytest.approx(2 * float(last["steps_per_s"]), rel=1e-4)  # batch 2
    assert float(last["mfu"]) == pytest.approx(float(last["tflops"]) / 0.5, rel=1e-4)
    # the flow step's FLOPs, counted part by part: the audio encoded (forward only), the text encoder and the DiT
    # forward and backward (a backward pass costs up to twice the forward: gradients of inputs and of weights)
    from arcaudio.loading import build_model
    from arcaudio.training.runner import resolve_model_config

    config = resolve_model_config("tiny", [s for s in SMALL_MODEL if s != "--model-set"])
    model = build_model(config)
    audio = torch.randn(2, config.audio_channels, config.sample_size)
    encode = counted_flops(lambda: model.autoencoder.encode(audio))[1]
    cond, text = counted_flops(lambda: model.condition(["low tone", "mid tone"], [1.0, 1.0]))
    x = torch.randn(2, config.dit.io_channels, config.latent_length)
    dit = counted_flops(lambda: model.dit(x, torch.rand(2), cond.cross_attn_cond, cond.global_cond))[1]
    step_flops = float(last["tflops"]) * 1e12 / float(last["steps_per_s"])
    assert encode + 2.5 * (text + dit) <= step_flops <= encode + 3.01 * (text + dit)
    assert "throughput: " in capsys.readouterr().err


def _step_tflop(run: Path) -> list[float]:
    """The model TFLOPs of a step, from each row of a run's log (tflops / steps_per_s)."""
    rows = list(csv.DictReader((run / "log.csv").open()))
    return [float(r["tflops"]) / float(r["steps_per_s"]) for r in rows]


# arc: two sharded players with their own optimizers; D is frozen during G's steps
@pytest.mark.parametrize("stage", ["flow", "arc"])
def test_fsdp_shards_the_weights_matches_ddp_and_resumes_exactly(tmp_path, audio_manifest, stage):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

    def run(out, *head, strategy="fsdp"):
        head, extra = (head[:-2], head[-2:]) if "--set" in head else (head, ())
        args = [*_train_args(audio_manifest, out, 6, stage), "--device", "cpu", "--strategy", strategy, *extra]
        return subprocess.run([*torchrun, *head, *args], env=env, capture_output=True, text=True, timeout=300)

    fsdp = run(tmp_path / "fsdp", "-m", "arcaudio")
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    shares = [float(line.split("(")[-1].split(" %")[0]) for line in fsdp.stderr.splitlines() if "fsdp: process" in line]
    players = 2 if stage == "arc" else 1
    assert len(shares) == 2 * players and all(45 < s < 55 for s in shares)  # each process holds about half
    ddp = run(tmp_path / "ddp", "-m", "arcaudio", strategy="ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = _weights(tmp_path / "fsdp"), _weights(tmp_path / "ddp")
    assert a.keys() == b.keys()
    for k in a:  # the same training; gradients averaged by reduce-scatter, norms clipped from the shards' norms
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    # the counted model FLOPs of a step are the same whichever strategy (the backward passes are counted)
    assert _step_tflop(tmp_path / "fsdp") == pytest.approx(_step_tflop(tmp_path / "ddp"), rel=1e-3)
    if stage == "flow":
        accumulated = run(tmp_path / "accumulated", "-m", "arcaudio", "--set", "grad_accum=2")  # reduce-scatter once
        assert accumulated.returncode == 0, accumulated.stderr[-3000:]
        d = _weights(tmp_path / "accumulated")
        for k in a:
            torch.testing.assert_close(d[k], a[k], rtol=1e-4, atol=1e-5)
    killed = run(tmp_path / "killed", KILL_AFTER_CHECKPOINT, "4")
    assert killed.returncode != 0 and torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["step"] == 4
    resumed = run(tmp_path / "killed", "-m", "arcaudio")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "killed" / "summary.json").read_text())["resumed_from"] == 4
    c = _weights(tmp_path / "killed")
    assert all(torch.equal(a[k], c[k]) for k in a)
    if stage == "arc":  # the discriminator too: its shards, gathered whole into the checkpoint
        straight, again = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["stage"]
                           for run in ("fsdp", "killed"))
        assert all(torch.equal(v, again["discriminator"][k]) for k, v in straight["discriminator"].items())
        assert straight["d_optimizer"]["state"].keys() == again["d_optimizer"]["state"].keys()
    with pytest.raises(ValueError, match="strategy 'fsdp' is built for the flow and ARC stages"):
        TrainConfig(data="x", stage="autoencoder", strategy="fsdp").validate()
    with pytest.raises(ValueError, match="LoRA runs with 'ddp'"):
        TrainConfig(data="x", stage="flow", strategy="fsdp", lora="rank=4").validate()
