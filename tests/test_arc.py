"""ARC post-training: literal loss formulas, the prompt derangement, the discriminator's shape, and which player's
weights each step moves."""

import io
import math

import pytest
import torch
from arc_helpers import arc_batch, small_arc_stage

from arcaudio.models.arc_discriminator import ConvHead, default_exit_layer, head_patches, resolve_exit_layer
from arcaudio.models.text_to_audio import Conditioning
from arcaudio.training.arc_losses import (
    contrastive_loss,
    finite_difference_penalty,
    prompt_derangement,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from arcaudio.training.config import TrainConfig, apply_overrides
from arcaudio.training.distributed import DistInfo


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_losses_equal_their_formulas():
    real = torch.tensor([[[0.5, -1.0, 2.0]], [[0.0, 0.3, -0.2]]])  # (B=2, 1, P=3)
    fake = torch.tensor([[[1.5, 0.0, -2.0]], [[0.1, 0.1, 0.1]]])
    pairs = [(r, f) for r, f in zip(real.flatten().tolist(), fake.flatten().tolist())]
    g = sum(_softplus(r - f) for r, f in pairs) / 6  # G: -log sigmoid(D(fake) - D(real))
    d = sum(_softplus(f - r) for r, f in pairs) / 6  # D: -log sigmoid(D(real) - D(fake))
    assert float(relativistic_generator_loss(real, fake)) == pytest.approx(g, rel=1e-6)
    assert float(relativistic_discriminator_loss(real, fake)) == pytest.approx(d, rel=1e-6)
    assert float(contrastive_loss(real, fake)) == pytest.approx(d, rel=1e-6)  # matched plays "real"
    assert float(relativistic_generator_loss(real, real)) == pytest.approx(math.log(2))
    perturbed = real + 0.1
    assert float(finite_difference_penalty(perturbed, real, 0.05)) == pytest.approx(4.0, rel=1e-5)  # (0.1/0.05)^2


@pytest.mark.parametrize("captions", [
    ["a", "b", "c", "d", "e", "f", "g", "h"],
    ["kick", "kick", "snare", "snare", "hat", "hat", "pad", "pad"],
    ["x", "x", "x", "x", "y", "z", "w", "v"],  # one caption on exactly half: needs the fallback often
    ["p", "q"],
])
def test_derangement_never_pairs_a_caption_with_itself(captions):
    before = list(captions)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        perm = prompt_derangement(captions, g)
        assert sorted(perm.tolist()) == list(range(len(captions)))
        assert all(perm[i] != i for i in range(len(captions)))
        assert all(captions[perm[i]] != captions[i] for i in range(len(captions)))
    assert captions == before


@pytest.mark.parametrize("captions", [["a"], ["a", "a", "a"], ["a", "a", "a", "b"]])
def test_derangement_refuses_impossible_batches(captions):
    with pytest.raises(ValueError, match="at most half"):
        prompt_derangement(captions)


def test_derangement_is_drawn_at_random_from_the_generator():
    """Uniform over the 44 derangements of 5 distinct captions: many appear, each near 1/44 of the draws; the same
    generator seed gives the same draws, another seed others."""
    captions = ["a", "b", "c", "d", "e"]
    draws = [tuple(prompt_derangement(captions, g).tolist()) for g in [torch.Generator().manual_seed(0)] * 2200]
    counts = {}
    for d in draws:
        counts[d] = counts.get(d, 0) + 1
    assert len(counts) == 44 and max(counts.values()) < 2.0 * 2200 / 44
    again = [tuple(prompt_derangement(captions, g).tolist()) for g in [torch.Generator().manual_seed(0)] * 50]
    other = [tuple(prompt_derangement(captions, g).tolist()) for g in [torch.Generator().manual_seed(1)] * 50]
    assert again == draws[:50] and other != again


def test_permuted_conditioning_moves_prompts_only():
    b, n, d = 4, 3, 2
    cross = torch.arange(b * (n + 1) * d, dtype=torch.float32).reshape(b, n + 1, d)
    cond = Conditioning(cross.clone(), torch.randn(b, d), torch.rand(b, n) > 0.5)
    perm = torch.tensor([2, 0, 3, 1])
    out = cond.with_prompts_permuted(perm)
    assert torch.equal(out.cross_attn_cond[:, :n], cross[perm, :n])
    assert torch.equal(out.cross_attn_cond[:, n:], cross[:, n:])  # each item keeps its seconds token
    assert torch.equal(out.global_cond, cond.global_cond) and torch.equal(out.prompt_mask, cond.prompt_mask[perm])
    assert torch.equal(cond.cross_attn_cond, cross)  # the input is untouched


def test_discriminator_geometry():
    assert default_exit_layer(16) == 11  # SAO-small: 12 of 16 blocks
    assert default_exit_layer(4) == 2
    assert resolve_exit_layer(16, None) == 11 and resolve_exit_layer(16, 5) == 5
    assert resolve_exit_layer(16, None, 0.5) == 7
    assert head_patches(257) == 13 and head_patches(65) == 1
    head = ConvHead(64)
    assert head(torch.randn(2, 64, 257)).shape == (2, 1, 13)
    clipped = ConvHead(64, soft_clip_scale=0.5)
    with torch.no_grad():
        assert float(clipped(100 * torch.randn(2, 64, 257)).abs().max()) <= 0.5


def _stage(extra: tuple[str, ...] = (), **arc):
    return small_arc_stage(*extra, *[f"arc.{k}={v!r}" for k, v in arc.items()])


_batch = arc_batch


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_generator_step_moves_only_the_generator():
    stage = _stage()
    g0, d0, c0 = _snapshot(stage.model.dit), _snapshot(stage.discriminator), _snapshot(stage.model.conditioners)
    metrics = stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    assert math.isfinite(metrics["loss"]) and math.isnan(metrics["d_loss"])
    assert _changed(g0, stage.model.dit)
    assert not _changed(d0, stage.discriminator)
    assert not _changed(c0, stage.model.conditioners)


def test_discriminator_step_moves_only_the_discriminator():
    stage = _stage(r1_weight=1.0, r2_weight=1.0, exit_layer=0)
    g0, d0 = _snapshot(stage.model.dit), _snapshot(stage.discriminator)
    metrics = stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    assert not _changed(g0, stage.model.dit)
    changed = _changed(d0, stage.discriminator)
    assert any(k.startswith("head.") for k in changed)
    assert any(k.startswith("trunk.transformer.layers.0") for k in changed)
    assert not any(k.startswith("trunk.transformer.layers.1.") for k in changed)  # above the exit layer: unused
    assert metrics["d_contrastive_used"] == 1.0
    for key in ("d_relativistic", "d_contrastive", "r1", "r2"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0


def test_contrastive_term_is_skipped_for_a_batch_of_one_caption():
    stage = _stage()
    batch = _batch()
    batch["caption"] = ["same"] * 4
    metrics = stage.train_step(batch, 1, torch.Generator().manual_seed(0))
    assert metrics["d_contrastive_used"] == 0.0 and math.isfinite(metrics["d_loss"])


def test_discriminator_starts_from_the_generator_weights():
    stage = _stage()
    trunk = stage.discriminator.trunk.state_dict()
    assert all(torch.equal(v, trunk[k]) for k, v in stage.model.dit.state_dict().items())
    assert stage.exit_layer == default_exit_layer(2) == 1  # round(0.75 * 2) = 2 blocks: exit after block 1


def test_each_players_schedule_spans_the_run():
    """Warm-up 4 and cosine over a 20-step run: G steps at even run steps, D at odd; each player's learning rate
    at its step is the run's schedule at that run step, so both warm up in 4 run steps and end near 0."""
    from arcaudio.training.optim import lr_factor

    stage = _stage(("steps=20", "optim.warmup_steps=4", "optim.schedule='cosine'"), generator_lr=2e-3,
                   discriminator_lr=1e-3)
    seen = {}
    for run_step in range(20):
        sched, opt = (stage.scheduler, stage.optimizer) if run_step % 2 == 0 else (stage.d_scheduler,
                                                                                    stage.d_optimizer)
        seen[run_step] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    for run_step, lr in seen.items():
        base = 2e-3 if run_step % 2 == 0 else 1e-3
        assert lr == pytest.approx(base * lr_factor(run_step, 20, stage.config.optim), rel=1e-9), run_step
    assert seen[0] == pytest.approx(2e-3 / 4) and seen[3] == pytest.approx(1e-3)  # warm-up: 4 run steps
    assert seen[18] < 0.04 * 2e-3 and seen[19] < 0.01 * 1e-3  # both end near 0, not at 0.5-0.8x


def test_the_stage_builds_its_schedules_per_player():
    stage = _stage(generator_lr=2e-3, discriminator_lr=1e-3)
    assert [stage.generator_run_step(k) for k in range(4)] == [0, 2, 4, 6]
    assert [stage.discriminator_run_step(k) for k in range(4)] == [1, 3, 5, 7]
    assert stage.optimizer.param_groups[0]["lr"] == 2e-3 and stage.d_optimizer.param_groups[0]["lr"] == 1e-3


def test_discriminator_warmup_trains_d_alone_then_the_players_alternate():
    """arc.discriminator_warmup=3: run steps 0-2 step D only (G's weights and EMA untouched), then G at 3, 5, ...
    and D at 4, 6, ...; each schedule follows its player's run steps (warm-up 4, cosine over 12 run steps)."""
    from arcaudio.training.optim import lr_factor

    stage = _stage(("steps=12", "optim.warmup_steps=4", "optim.schedule='cosine'", "ema_decay=0.999"),
                   discriminator_warmup=3,
                   generator_lr=2e-3, discriminator_lr=1e-3)
    assert [stage.generator_turn(k) for k in range(8)] == [False, False, False, True, False, True, False, True]
    assert [stage.discriminator_run_step(k) for k in range(5)] == [0, 1, 2, 4, 6]
    assert [stage.generator_run_step(k) for k in range(3)] == [3, 5, 7]
    g0 = _snapshot(stage.model.dit)
    d_lrs, g_lrs = [], []
    for step in range(3):
        d_lrs.append(stage.d_optimizer.param_groups[0]["lr"])
        metrics = stage.train_step(_batch(), step, torch.Generator().manual_seed(step))
        assert math.isfinite(metrics["d_loss"]) and math.isnan(metrics["loss"])  # D stepped, G not yet
    assert not _changed(g0, stage.model.dit) and stage.ema.updates == 0
    for step in range(3, 7):
        (g_lrs if stage.generator_turn(step) else d_lrs).append(
            (stage.optimizer if stage.generator_turn(step) else stage.d_optimizer).param_groups[0]["lr"])
        stage.train_step(_batch(), step, torch.Generator().manual_seed(step))
    assert _changed(g0, stage.model.dit)
    optim = stage.config.optim
    assert d_lrs == pytest.approx([1e-3 * lr_factor(k, 12, optim) for k in (0, 1, 2, 4, 6)], rel=1e-9)
    assert g_lrs == pytest.approx([2e-3 * lr_factor(k, 12, optim) for k in (3, 5)], rel=1e-9)
    data = apply_overrides(TrainConfig().to_dict(), ["stage='arc'", "data='x'", "steps=10",
                                                     "arc.discriminator_warmup=10"])
    with pytest.raises(ValueError, match=r"arc.discriminator_warmup must be in \[0, steps\) = \[0, 10\).*got 10"):
        TrainConfig.from_dict(data).validate()


def test_the_discriminator_head_takes_its_own_rate_and_one_step_moves_it_by_it():
    """arc.discriminator_head_lr: the head's weights at that rate, every trunk weight at discriminator_lr. One
    AdamW step moves a weight by about its rate (the first step's update is ~lr * sign(grad)), so the head's
    largest move is ~100x the trunk's."""
    stage = _stage(discriminator_lr=1e-5, discriminator_head_lr=1e-3)
    head = {id(p) for p in stage.discriminator.head.parameters()}
    rates = {id(p): group["lr"] for group in stage.d_optimizer.param_groups for p in group["params"]}
    assert set(rates) == {id(p) for p in stage.d_params}
    assert {rates[k] for k in head} == {1e-3} and {v for k, v in rates.items() if k not in head} == {1e-5}
    before = _snapshot(stage.discriminator)
    stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    moved = {k: float((v - before[k]).abs().max()) for k, v in stage.discriminator.state_dict().items()}
    head_move = max(v for k, v in moved.items() if k.startswith("head."))
    trunk_move = max(v for k, v in moved.items() if k.startswith("trunk."))
    assert 0.5e-3 < head_move < 2e-3 and 0.5e-5 < trunk_move < 2e-5
    two = _stage(discriminator_lr=1e-5, discriminator_head_lr=1e-3, contrastive_head="separate")
    rates = {id(p): group["lr"] for group in two.d_optimizer.param_groups for p in group["params"]}
    assert {rates[id(p)] for p in two.discriminator.contrastive_head.parameters()} == {1e-3}
    data = apply_overrides(TrainConfig().to_dict(), ["stage='arc'", "data='x'", "arc.contrastive=false",
                                                     "arc.contrastive_head='separate'"])
    with pytest.raises(ValueError, match=r"arc.contrastive_head='separate' .* set arc.contrastive=true"):
        TrainConfig.from_dict(data).validate()
    default = _stage(discriminator_lr=2e-4).d_optimizer.param_groups  # no head rate: one rate, the two decay groups
    assert [g["lr"] for g in default] == [2e-4, 2e-4] and [g["weight_decay"] for g in default][1] == 0.0
    data = apply_overrides(TrainConfig().to_dict(), ["stage='arc'", "data='x'", "arc.discriminator_head_lr=0.0"])
    with pytest.raises(ValueError, match=r"arc.discriminator_head_lr must be > 0, got 0.0"):
        TrainConfig.from_dict(data).validate()


def test_arc_refuses_optim_lr_and_names_the_players_rates():
    data = apply_overrides(TrainConfig().to_dict(), ["stage='arc'", "data='x'", "optim.lr=1e-5"])
    with pytest.raises(ValueError, match=r"arc.generator_lr \(3e-05\), not optim.lr \(1e-05\)"):
        TrainConfig.from_dict(data).validate()
    assert TrainConfig().arc.generator_lr == TrainConfig().arc.discriminator_lr == 3e-5


def test_contrastive_shuffle_roll_is_the_references_roll_and_derangement_avoids_duplicates():
    captions = ["low", "low", "high", "noise"]
    rolled = _stage(contrastive_shuffle="roll")._wrong_prompts({"caption": captions}, torch.Generator().manual_seed(0))
    assert rolled.tolist() == [1, 2, 3, 0]  # item i scored with item i + 1's prompt (item 0 with a duplicate)
    stage = _stage()
    for seed in range(20):
        perm = stage._wrong_prompts({"caption": captions}, torch.Generator().manual_seed(seed))
        assert all(captions[int(j)] != c for c, j in zip(captions, perm))


def _adam_state(optimizer) -> list[torch.Tensor]:
    return [t for s in optimizer.state_dict()["state"].values() for t in s.values() if torch.is_tensor(t)]


def test_a_restored_stage_continues_exactly_as_the_original():
    """state_dict -> load_state_dict carries both optimizers, both schedules, the discriminator and the EMA:
    the restored stage's next steps give the original's weights bit for bit."""
    extra = ("ema_decay=0.9", "steps=10", "optim.warmup_steps=3", "optim.schedule='cosine'")
    a = _stage(extra)
    for step in range(3):
        a.train_step(_batch(), step, torch.Generator().manual_seed(step))
    buffer = io.BytesIO()  # through bytes, as a checkpoint file: no tensor shared with the original
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert set(state) == {"optimizer", "scheduler", "discriminator", "d_optimizer", "d_scheduler", "ema"}
    b = _stage(extra)
    b.model.dit.load_state_dict(a.model.dit.state_dict())  # the loop restores the model's weights itself
    b.load_state_dict(state)
    assert b.scheduler.last_epoch == a.scheduler.last_epoch == 2 and b.d_scheduler.last_epoch == 1
    assert all(torch.equal(x, y) for x, y in zip(_adam_state(a.optimizer), _adam_state(b.optimizer), strict=True))
    assert all(torch.equal(x, y) for x, y in zip(_adam_state(a.d_optimizer), _adam_state(b.d_optimizer),
                                                 strict=True))
    for step in (3, 4):
        for stage in (a, b):
            stage.train_step(_batch(), step, torch.Generator().manual_seed(step))
    for module in ("model", "discriminator"):
        wa, wb = getattr(a, module).state_dict(), getattr(b, module).state_dict()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), module
    ea, eb = a.ema.state_dict(), b.ema.state_dict()
    assert ea["updates"] == eb["updates"] == 3  # EMA updates on generator steps only: 0, 2, 4
    assert ea["shadow"].keys() == eb["shadow"].keys()
    assert all(torch.equal(ea["shadow"][k], eb["shadow"][k]) for k in ea["shadow"])


def test_export_writes_the_ema_generator_as_a_post_trained_model(tmp_path):
    from arcaudio import load

    stage = _stage(("ema_decay=0.5",))
    for step in range(4):
        stage.train_step(_batch(), step, torch.Generator().manual_seed(step))
    objective = stage.model.config.objective
    path = stage.export(tmp_path / "model.safetensors")
    assert stage.model.config.objective == objective  # restored after export
    exported = load(path)
    assert exported.config.objective == "rf_denoiser"
    live, ema = stage.model.state_dict(), exported.state_dict()
    key = "dit.transformer.layers.0.self_attn.to_qkv.weight"
    assert not torch.equal(live[key], ema[key])  # the EMA, not the live weights
    from arcaudio.training.ema import swapped_in

    with swapped_in(stage.ema, stage.model):
        assert all(torch.equal(stage.model.state_dict()[k].cpu(), ema[k]) for k in ema)
    assert not (tmp_path / "sao").exists()  # a built-in T5: no stable-audio-tools copy


def test_generator_metrics_name_the_loss_grad_norm_and_rate():
    stage = _stage(("optim.warmup_steps=4",))
    metrics = stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    assert math.isfinite(metrics["loss"]) and metrics["g_grad_norm"] > 0
    assert metrics["lr"] == pytest.approx(1e-3 * 3 / 4)  # after its first step: the factor of run step 2, (2 + 1) / 4


def test_roll_needs_two_items_and_a_stage_without_ema_saves_and_restores():
    stage = _stage(contrastive_shuffle="roll")
    assert stage._wrong_prompts({"caption": ["a"]}, torch.Generator()) is None
    assert stage._wrong_prompts({"caption": ["a", "b"]}, torch.Generator()).tolist() == [1, 0]
    state = stage.state_dict()
    assert stage.ema is None and state["ema"] == {}
    stage.load_state_dict(state)


def test_export_of_a_model_with_an_external_t5_also_writes_stable_audio_tools_files(tmp_path, sat_dir, t5_dir):
    from arcaudio import load
    from arcaudio.training.arc_stage import ARCStage

    model = load(sat_dir, t5=t5_dir)
    config = TrainConfig.from_dict(apply_overrides(TrainConfig().to_dict(), [
        "stage='arc'", "data='x'", "batch_size=2", "ema_decay=0.5"]))
    stage = ARCStage(model, config, DistInfo())
    batch = {"latents": torch.randn(2, 8, 64), "caption": ["a dog", "rain"], "seconds_total": torch.full((2,), 1.0)}
    for step in range(2):
        stage.train_step(batch, step, torch.Generator().manual_seed(step))
    path = stage.export(tmp_path / "arc" / "model.safetensors")
    ours, sao = load(path, t5=t5_dir), load(tmp_path / "arc" / "sao", t5=t5_dir)
    assert sao.config.objective == ours.config.objective == "rf_denoiser"
    a, b = ours.state_dict(), sao.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_step_flops_are_the_mean_of_both_players_steps_counted_part_by_part():
    """ARCStage.step_flops against a sum of separately counted forwards: a G step runs G, D on [real, generated]
    and back through D to G's weights (D's input gradients only) and through G; a D step runs G (no gradient) and D
    on [real, generated, wrong prompts] and back through D (its weights' gradients: about twice its forward)."""
    from arcaudio.training.throughput import counted_flops

    stage = small_arc_stage()
    batch = arc_batch()
    b = len(batch["caption"])
    model, d = stage.model, stage.discriminator
    x = batch["latents"]
    cond = counted_flops(lambda: model.condition(batch["caption"], batch["seconds_total"].tolist()))
    conditioning, f_cond = cond
    t = torch.rand(b)
    with torch.no_grad():
        f_g = counted_flops(lambda: model.dit(x, t, conditioning.cross_attn_cond, conditioning.global_cond))[1]

        def f_d(n: int) -> int:
            c = Conditioning.cat([conditioning] * n)
            return counted_flops(lambda: d(x.repeat(n, 1, 1), t.repeat(n), c))[1]

        f_d2, f_d3 = f_d(2), f_d(3)
    generator_step = f_cond + f_g + f_d2 + f_d2 + 2 * f_g
    discriminator_step = f_cond + f_g + f_d3 + 2 * f_d3
    expected = (generator_step + discriminator_step) / 2
    counted = stage.step_flops(batch)
    assert 0.9 * expected <= counted <= 1.1 * expected
    assert all(p.grad is None for p in [*stage.g_params, *stage.d_params])  # the side computation left nothing
    assert all(p.requires_grad for p in stage.d_params)
