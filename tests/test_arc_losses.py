"""ARC losses against their literal formulas (torch.log / torch.sigmoid, never softplus), both on random tensors and on
the scores the discriminator really gave in a generator and a discriminator step of a tiny stage; and one step of
each player lowers its own loss on the same batch, noise and times."""

import math

import pytest
import torch
from arc_helpers import arc_batch, small_arc_stage

from arcaudio.training.arc_losses import (
    conflicting_prompts,
    contrastive_loss,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)


def _nls(x: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(x), literally, in float64."""
    return -torch.log(torch.sigmoid(x.double()))


def _g_literal(real: torch.Tensor, fake: torch.Tensor) -> float:
    return float(_nls(fake - real).mean())  # G: fake should score above real


def _d_literal(real: torch.Tensor, fake: torch.Tensor) -> float:
    return float(_nls(real - fake).mean())  # D: real should score above fake


def _c_literal(matched: torch.Tensor, mismatched: torch.Tensor) -> float:
    return float(_nls(matched - mismatched).mean())  # D: real audio scores higher with its own prompt


# -- the functions on random tensors -------------------------------------------------------------------------------


def test_each_loss_function_equals_its_literal_formula_and_is_not_symmetric():
    g = torch.Generator().manual_seed(3)
    real = torch.randn(3, 1, 5, generator=g) + 0.7  # (B, 1, P), shifted apart: swapping arguments matters
    fake = 2.0 * torch.randn(3, 1, 5, generator=g) - 0.4
    cases = [(relativistic_generator_loss, _g_literal), (relativistic_discriminator_loss, _d_literal),
             (contrastive_loss, _c_literal)]
    for fn, literal in cases:
        got, want, swapped = float(fn(real, fake)), literal(real, fake), literal(fake, real)
        assert got == pytest.approx(want, rel=1e-5), fn.__name__
        assert abs(want - swapped) > 0.1, fn.__name__  # the inputs tell a swapped formula apart
    # G and D play opposite games on the same scores
    g_loss, d_loss = float(relativistic_generator_loss(real, fake)), float(relativistic_discriminator_loss(real, fake))
    assert abs(g_loss - d_loss) > 0.1


# -- on a real stage -----------------------------------------------------------------------------------------------


def _stage(*overrides: str):
    return small_arc_stage("optim.warmup_steps=0", *overrides)


_batch = arc_batch


class _Recorder:
    """The inputs and (detached) outputs of every call of the stage's generator and discriminator modules."""

    def __init__(self, stage):
        self.calls: dict[str, list] = {"generator": [], "discriminator": []}
        self.handles = [getattr(stage, name).register_forward_hook(self._hook(name), with_kwargs=True)
                        for name in self.calls]

    def _hook(self, name):
        def hook(module, args, kwargs, out):
            kept = tuple(o.detach().float().clone() for o in out) if isinstance(out, tuple) else \
                out.detach().float().clone()
            self.calls[name].append((tuple(a.detach().clone() if torch.is_tensor(a) else a for a in args), kwargs,
                                     kept))
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_generator_step_reports_the_literal_loss_of_the_scores_it_saw():
    stage = _stage("arc.generator_weight=1.0")
    record = _Recorder(stage)
    metrics = stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    outputs = [out for _, _, out in record.calls["discriminator"]]
    assert len(outputs) == 1
    real, fake = outputs[0].chunk(2)  # one batched call: real re-noised, then generated re-noised
    assert not torch.allclose(real, fake, atol=1e-3)  # the players differ, so a swap shows
    want, swapped = _g_literal(real, fake), _g_literal(fake, real)
    assert abs(want - swapped) > 1e-3
    assert metrics["loss"] == pytest.approx(want, rel=1e-5, abs=1e-7), (metrics["loss"], want, swapped)


def test_discriminator_step_reports_the_literal_relativistic_and_contrastive_losses():
    stage = _stage()
    record = _Recorder(stage)
    metrics = stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    outputs = [out for _, _, out in record.calls["discriminator"]]
    assert len(outputs) == 1 and metrics["d_contrastive_used"] == 1.0
    real, fake, mismatched = outputs[0].split(4)  # real, generated, real with permuted prompts
    assert metrics["d_relativistic"] == pytest.approx(_d_literal(real, fake), rel=1e-5, abs=1e-7)
    want, swapped = _c_literal(real, mismatched), _c_literal(mismatched, real)
    assert abs(want - swapped) > 1e-3, (want, swapped)
    assert metrics["d_contrastive"] == pytest.approx(want, rel=1e-5, abs=1e-7), (metrics["d_contrastive"], want,
                                                                                 swapped)
    assert metrics["d_loss"] == pytest.approx(_d_literal(real, fake) + want, rel=1e-5)
    assert metrics["d_real_minus_fake"] == pytest.approx(float((real - fake).mean()), rel=1e-5, abs=1e-7)


def test_a_separate_contrastive_head_scores_only_the_contrastive_term():
    stage = _stage("arc.contrastive_head='separate'")
    d = stage.discriminator
    assert d.contrastive_head is not None
    record = _Recorder(stage)
    before = {name: p.detach().clone() for name, p in d.named_parameters()}
    metrics = stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))  # G step: the main head alone
    ((_, kwargs, out),) = record.calls["discriminator"]
    assert torch.is_tensor(out) and not kwargs.get("both_heads")
    real, fake = out.chunk(2)
    assert metrics["loss"] == pytest.approx(_g_literal(real, fake), rel=1e-5, abs=1e-7)
    assert all(torch.equal(p, before[name]) for name, p in d.named_parameters())

    metrics = stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))  # D step: both heads, one trunk pass
    ((_, kwargs, (main, second)),) = record.calls["discriminator"][1:]
    assert kwargs["both_heads"] is True
    real, fake, _ = main.split(4)
    matched, _, mismatched = second.split(4)
    assert not torch.allclose(real, matched, atol=1e-3)  # two heads, two readings of the same features
    assert metrics["d_relativistic"] == pytest.approx(_d_literal(real, fake), rel=1e-5, abs=1e-7)
    want, swapped = _c_literal(matched, mismatched), _c_literal(real, main.split(4)[2])
    assert metrics["d_contrastive"] == pytest.approx(want, rel=1e-5, abs=1e-7) and abs(want - swapped) > 1e-3
    assert metrics["d_loss"] == pytest.approx(_d_literal(real, fake) + want, rel=1e-5)
    for part in ("head.", "contrastive_head.", "trunk.transformer.layers.0."):
        assert any(not torch.equal(p, before[name]) for name, p in d.named_parameters() if name.startswith(part))
    with pytest.raises(ValueError, match="contrastive_head=True"):
        _stage().discriminator(main[:1], torch.ones(1), None, both_heads=True)


def test_a_separate_contrastive_head_without_wrong_prompts_takes_a_zero_gradient():
    """A batch of one caption has no wrong prompt: D's loss is the relativistic term alone, and the second head still
    joins the graph with a zero gradient (DDP expects one for every parameter)."""
    stage = _stage("arc.contrastive_head='separate'")
    batch = _batch()
    batch["caption"] = ["same"] * 4
    grads: dict[str, torch.Tensor] = {}
    for name, p in stage.discriminator.contrastive_head.named_parameters():
        p.register_hook(lambda g, name=name: grads.setdefault(name, g.detach().clone()))
    record = _Recorder(stage)
    metrics = stage.train_step(batch, 1, torch.Generator().manual_seed(0))
    ((_, kwargs, (main, second)),) = record.calls["discriminator"]
    assert kwargs["both_heads"] is True and main.shape[0] == second.shape[0] == 8  # [real, generated], no wrong rows
    assert metrics["d_contrastive_used"] == 0.0 and math.isnan(metrics["d_contrastive"])
    assert metrics["d_loss"] == pytest.approx(_d_literal(*main.split(4)), rel=1e-5, abs=1e-7)
    assert grads.keys() == dict(stage.discriminator.contrastive_head.named_parameters()).keys()
    assert all(float(g.abs().max()) == 0.0 for g in grads.values())


def test_one_generator_step_lowers_the_generator_loss_on_the_same_draws():
    stage = _stage()
    record = _Recorder(stage)
    d_before = {k: v.clone() for k, v in stage.discriminator.state_dict().items()}
    reported = stage.train_step(_batch(), 0, torch.Generator().manual_seed(7))["loss"]
    record.remove()
    assert all(torch.equal(v, stage.discriminator.state_dict()[k]) for k, v in d_before.items())  # D frozen
    ((g_args, g_kwargs, x0_hat),) = record.calls["generator"]  # G(x_t, t, prompt, global) -> x0_hat (B, C, T)
    ((d_args, d_kwargs, scores),) = record.calls["discriminator"]  # D([real_s; fake_s], [s; s], cond)
    before = _g_literal(*scores.chunk(2))
    # the updated G on the same x_t and t; its x0_hat re-noised with the same noise to the same level s:
    # fake_s = (1 - s) x0_hat + s eps, so the new one is fake_s + (1 - s) (x0_hat' - x0_hat)
    x, levels, cond = d_args
    b = x.shape[0] // 2
    real_s, fake_s = x[:b], x[b:]
    s = levels[:b, None, None]
    with torch.no_grad():
        x0_hat_after = stage.generator(*g_args, **g_kwargs)
        fake_after = fake_s + (1 - s) * (x0_hat_after - x0_hat)
        after = _g_literal(*stage.discriminator(torch.cat([real_s, fake_after]), levels, cond, **d_kwargs).chunk(2))
    assert after < before - 1e-3, (before, after)
    assert reported == pytest.approx(before, rel=1e-5)


def test_one_discriminator_step_lowers_the_discriminator_loss_on_the_same_draws():
    stage = _stage()
    record = _Recorder(stage)
    g_before = {k: v.clone() for k, v in stage.model.dit.state_dict().items()}
    reported = stage.train_step(_batch(), 1, torch.Generator().manual_seed(7))["d_loss"]
    record.remove()
    assert all(torch.equal(v, stage.model.dit.state_dict()[k]) for k, v in g_before.items())  # G frozen
    ((d_args, d_kwargs, scores),) = record.calls["discriminator"]  # real, generated, real with wrong prompts

    def loss(scores: torch.Tensor) -> float:
        real, fake, mismatched = scores.split(scores.shape[0] // 3)
        return _d_literal(real, fake) + _c_literal(real, mismatched)

    before = loss(scores)
    with torch.no_grad():
        after = loss(stage.discriminator(*d_args, **d_kwargs).float())  # the updated D on the same inputs
    assert math.isfinite(after) and after < before - 1e-3, (before, after)
    assert reported == pytest.approx(before, rel=1e-5)


# -- what mutation testing found untested ---------------------------------------------------------------------------


def test_discriminator_loss_with_both_penalties_is_the_literal_sum():
    stage = _stage("arc.r1_weight=0.3", "arc.r2_weight=0.7", "arc.contrastive_weight=0.5")
    record = _Recorder(stage)
    metrics = stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    ((d_args, _, scores),) = record.calls["discriminator"]
    real, fake, mismatched, real_probe, fake_probe = scores.split(4)  # (B, 1, P) each, in this order
    x = d_args[0]
    sigma = stage.config.arc.penalty_sigma
    for probed, base in ((x[12:16], x[0:4]), (x[16:20], x[4:8])):  # the probes: x + sigma n, n ~ N(0, I)
        n = (probed - base) / sigma
        assert abs(float(n.mean())) < 0.1 and abs(float(n.std()) - 1) < 0.1
    r1 = float(((real_probe - real) / sigma).double().pow(2).mean())
    r2 = float(((fake_probe - fake) / sigma).double().pow(2).mean())
    assert metrics["r1"] == pytest.approx(r1, rel=1e-4) and metrics["r2"] == pytest.approx(r2, rel=1e-4)
    want = _d_literal(real, fake) + 0.5 * _c_literal(real, mismatched) + 0.3 * r1 + 0.7 * r2
    assert metrics["d_loss"] == pytest.approx(want, rel=1e-4)
    assert math.isfinite(metrics["d_grad_norm"]) and metrics["d_grad_norm"] > 0


def test_no_contrastive_term_when_it_is_off():
    stage = _stage("arc.contrastive=false")
    record = _Recorder(stage)
    metrics = stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    ((_, _, scores),) = record.calls["discriminator"]
    assert scores.shape[0] == 8 and metrics["d_contrastive_used"] == 0.0 and math.isnan(metrics["d_contrastive"])
    assert metrics["d_loss"] == pytest.approx(_d_literal(*scores.split(4)), rel=1e-5)


def test_each_player_leaves_the_other_without_gradients():
    """A generator step must not leave gradients on D (they would leak into D's next step) and a discriminator
    step none on G."""
    stage = _stage()
    stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in stage.discriminator.parameters())
    stage.train_step(_batch(), 1, torch.Generator().manual_seed(1))
    assert all(p.grad is None for p in stage.model.parameters())


@pytest.mark.parametrize("step", [0, 1])
def test_steps_draw_only_from_the_step_generator(step):
    """The same step generator gives the same update whatever torch's global generator holds (times, noise, prompt
    shuffle and penalty probes all come from it)."""
    results = []
    for global_seed in (1, 2):
        stage = _stage("arc.r1_weight=0.1", "arc.r2_weight=0.1")
        torch.manual_seed(global_seed)
        results.append(stage.train_step(_batch(), step, torch.Generator().manual_seed(5)))
    key = "loss" if step == 0 else "d_loss"
    assert results[0][key] == results[1][key]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_autocast_follows_the_precision(precision):
    stage = _stage(f"precision='{precision}'")
    dtypes = []
    stage.discriminator.head.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    stage.train_step(_batch(), 1, torch.Generator().manual_seed(1))
    want = torch.float32 if precision == "fp32" else torch.bfloat16
    assert dtypes == [want, want]


def test_the_generator_is_x_t_minus_t_v():
    stage = _stage()
    x_t, t = torch.randn(2, 32, 64), torch.tensor([0.3, 0.8])
    cond = stage.model.condition(["low", "high"], 2.0)
    with torch.no_grad():
        v = stage.model.dit(x_t, t, cond.cross_attn_cond, cond.global_cond)
        x0_hat = stage.generator(x_t, t, cond.cross_attn_cond, cond.global_cond)
    assert torch.allclose(x0_hat, x_t - t[:, None, None] * v, atol=1e-6)
    assert not torch.allclose(x0_hat, x_t + t[:, None, None] * v, atol=1e-3)


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_prompt_dropout_acts_on_generator_steps_only(dropout):
    stage = _stage(f"arc.cfg_dropout={dropout}")
    record = _Recorder(stage)
    stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))  # G step: G sees dropped prompts
    stage.train_step(_batch(), 1, torch.Generator().manual_seed(1))  # D step: G runs without dropout
    (g_step, d_step) = [args[2] for args, _, _ in record.calls["generator"]]  # cross-attention tokens (B, L, D)
    assert bool(g_step.eq(0).all()) == (dropout == 1.0)
    assert not bool(d_step.eq(0).all())


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
@pytest.mark.parametrize("clip", [0.0, 1e-4])
def test_gradients_are_clipped_before_each_players_update(clip, monkeypatch):
    stage = _stage(f"optim.grad_clip={clip}", f"arc.discriminator_grad_clip={clip}")
    norms = []
    for optimizer, params in ((stage.optimizer, stage.g_params), (stage.d_optimizer, stage.d_params)):
        real_step = optimizer.step

        def step(*args, params=params, real_step=real_step, **kwargs):
            norms.append(float(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))))
            return real_step(*args, **kwargs)

        monkeypatch.setattr(optimizer, "step", step)
    reported = [stage.train_step(_batch(), s, torch.Generator().manual_seed(s))[k]
                for s, k in ((0, "g_grad_norm"), (1, "d_grad_norm"))]
    for seen, before in zip(norms, reported, strict=True):
        assert before > 1e-3  # the reported norm is the norm before clipping
        assert seen == pytest.approx(before, rel=1e-4) if clip == 0 else seen <= clip * (1 + 1e-4)


def test_stage_options_reach_its_modules():
    stage = _stage("grad_checkpointing=true", "arc.soft_clip_scale=0.05", "arc.depth_fraction=0.5",
                   "ema_decay=0.9", "ema_warmup_power=0.5")
    assert stage.model.dit.grad_checkpointing is True and stage.discriminator.trunk.grad_checkpointing is True
    assert stage.exit_layer == 0  # half of 2 blocks
    assert stage.ema.decay == 0.9 and stage.ema.power == 0.5
    record = _Recorder(stage)
    stage.train_step(_batch(), 1, torch.Generator().manual_seed(0))
    ((_, _, scores),) = record.calls["discriminator"]
    assert float(scores.abs().max()) <= 0.05 + 1e-6


def test_metrics_keep_their_names_from_the_first_step():
    stage = _stage("arc.r1_weight=0.1")
    metrics = stage.train_step(_batch(), 0, torch.Generator().manual_seed(0))
    assert list(metrics) == ["loss", "g_grad_norm", "lr", "d_loss", "d_relativistic", "d_real_minus_fake",
                             "d_contrastive", "d_contrastive_used", "d_grad_norm", "r1"]
    assert all(math.isnan(metrics[k]) for k in list(metrics)[3:])  # D has not stepped yet
    assert list(stage.train_step(_batch(), 1, torch.Generator().manual_seed(1))) == list(metrics)


def test_conflicting_prompts_contradict_the_clip_and_never_merely_name_less():
    left_sine = {"kind": "tone", "waveform": "sine", "pitch": "A4", "pan": "left", "loudness": "loud"}
    right_sine = {**left_sine, "pan": "right"}
    noise = {"kind": "noise", "colour": "pink", "pan": "left", "loudness": "loud"}
    attributes = [left_sine, right_sine, noise, left_sine]
    named = [{"kind": "tone", "waveform": "sine"},  # "a sine note": true of clips 0, 1 and 3
             {"pan": "right"},  # true of clip 1 only
             {"colour": "pink"},  # true of the noise only
             {"pitch": "A4", "pan": "left"}]  # true of clips 0 and 3
    allowed = {0: {1, 2}, 1: {2, 3}, 2: {0, 1, 3}, 3: {1, 2}}  # the prompts that contradict each clip, by hand
    seen = {i: set() for i in allowed}
    for seed in range(60):
        wrong = conflicting_prompts(attributes, named, torch.Generator().manual_seed(seed)).tolist()
        for i, j in enumerate(wrong):
            assert j in allowed[i]
            seen[i].add(j)
    assert seen == allowed  # drawn among all of them
    same = [left_sine, left_sine]
    assert conflicting_prompts(same, [{"pan": "left"}] * 2).tolist() == [0, 1]  # nothing contradicts: itself


def test_within_kind_conflicting_prompts_never_contradict_by_kind_alone():
    left_sine = {"kind": "tone", "waveform": "sine", "pitch": "A4", "pan": "left", "loudness": "loud"}
    left_square = {**left_sine, "waveform": "square"}
    brown = {"kind": "noise", "colour": "brown", "pan": "right", "loudness": "loud"}
    pink = {**brown, "colour": "pink"}
    attributes = [left_sine, left_square, brown, pink]
    named = [{"kind": "tone", "waveform": "sine"},  # "a sine note"
             {"waveform": "square", "pitch": "A4"},  # "a square wave at A4" (no kind named; a noise has no pitch)
             {"pan": "right"},  # "on the right"
             {"kind": "noise", "colour": "pink"}]  # "pink noise"
    # by hand: the prompts contradicting each clip inside its kind (conflicting ones in brackets where they differ)
    allowed = {0: {1, 2}, 1: {0, 2}, 2: {3}, 3: set()}  # conflicting: 0 {1, 2, 3}, 1 {0, 2, 3}, 2 {0, 1, 3}, 3 {0, 1}
    seen = {i: set() for i in allowed}
    for seed in range(60):
        wrong = conflicting_prompts(attributes, named, torch.Generator().manual_seed(seed), within_kind=True).tolist()
        for i, j in enumerate(wrong):
            assert j in allowed[i] or (not allowed[i] and j == i)  # none inside the kind: its own (no gradient)
            seen[i].add(j)
    assert seen == {0: {1, 2}, 1: {0, 2}, 2: {3}, 3: {3}}


@pytest.mark.parametrize("shuffle", ["conflicting", "edited", "within_kind"])
def test_arc_trains_with_prompts_that_contradict_the_clip(shuffle, monkeypatch):
    from arcaudio.procedural import captions
    from arcaudio.training.config import ARCTrainConfig, TrainConfig

    with pytest.raises(ValueError, match="set arc.recaption=true"):
        TrainConfig(data="x", stage="arc", arc=ARCTrainConfig(contrastive_shuffle=shuffle)).validate()
    stage = small_arc_stage("arc.recaption=True", f"arc.contrastive_shuffle='{shuffle}'")
    batch = arc_batch()
    batch["attributes"] = [{"kind": "tone", "waveform": "sine", "pitch": "A4", "loudness": "loud", "pan": p,
                            "envelope": "steady"} for p in ("left", "right", "center", "left")]
    edits = []
    original = captions.contradicting_caption
    monkeypatch.setattr(captions, "contradicting_caption", lambda *a: edits.append(original(*a)) or edits[-1])
    encoded = []
    condition = stage.model.condition
    monkeypatch.setattr(stage.model, "condition",
                        lambda prompts, seconds: encoded.append(list(prompts)) or condition(prompts, seconds))
    metrics = [stage.train_step(batch, step, torch.Generator().manual_seed(step)) for step in range(2)][-1]
    assert metrics["d_contrastive_used"] == 1.0 and math.isfinite(metrics["d_contrastive"])
    if shuffle == "edited":  # D's step encodes one contradicting caption per clip as its wrong prompts
        assert len(edits) == 4 and encoded[-1] == [caption for caption, _ in edits]
        for attributes, (_, wrong) in zip(batch["attributes"], edits):
            assert any(attributes.get(name) != value for name, value in wrong.items())
    else:
        assert not edits


def test_discriminator_reading_scores_minimal_pairs_per_moved_attribute():
    """A discriminator that scores a clip +1 with its own caption and -1 with any other reads every attribute
    (accuracy 1); one that ignores the prompt reads none (0: ties are not a right order); every pair's caption
    differs from its clip's in exactly the attribute it is filed under."""
    import numpy as np

    from arcaudio.eval.discriminator_reading import discriminator_reading, minimal_pairs
    from arcaudio.models.text_to_audio import Conditioning
    from arcaudio.procedural.synth import sample_attributes

    rng = np.random.default_rng(0)
    clips = [sample_attributes(rng) for _ in range(40)]
    pairs = minimal_pairs(clips, rng)
    assert len(pairs) == 120 and {p[3] for p in pairs} >= {"kind", "pan", "loudness"}
    for i, right, wrong, moved in pairs:
        assert right != wrong and moved in clips[i]
    latents = torch.randn(40, 3, 8)
    truth = {p[1] for p in pairs}

    def condition(captions, seconds):  # the caption's identity as a one-number "embedding"
        flags = torch.tensor([[1.0 if c in truth else -1.0] for c in captions])  # (M, 1)
        return Conditioning(flags[:, None, :], flags, torch.ones(len(captions), 1, dtype=torch.bool))

    def oracle(x, s, cond):
        return cond.global_cond[:, None, :].expand(-1, 1, 5)  # (B, 1, P): +1 for the clip's own caption

    def deaf(x, s, cond):
        return x.mean((1, 2))[:, None, None].expand(-1, 1, 5)

    read = discriminator_reading(oracle, condition, latents, [2.0] * 40, pairs, levels=(0.5,), batch_size=7)
    assert read[0.5]["all"] == (1.0, 120) and all(acc == 1.0 for acc, _ in read[0.5].values())
    assert sum(n for name, (_, n) in read[0.5].items() if name != "all") == 120
    assert discriminator_reading(deaf, condition, latents, [2.0] * 40, pairs, levels=(0.5,))[0.5]["all"] == (0.0, 120)
