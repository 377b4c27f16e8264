"""Samplers against literal references and analytic velocity fields."""

import math

import pytest
import torch

from arcaudio.flow import add_noise, velocity_target, x0_from_velocity
from arcaudio.sampling import linear_schedule, pingpong_schedule, sample_euler, sample_pingpong

REFERENCE_SCHEDULES = {  # reference §4: sigmoid(-linspace(-6, 2, n + 1)), ends forced to 1 and 0
    1: [1.0, 0.0],
    2: [1.0, 0.88080, 0.0],
    4: [1.0, 0.98201, 0.88080, 0.5, 0.0],
    8: [1.0, 0.99331, 0.98201, 0.95257, 0.88080, 0.73106, 0.5, 0.26894, 0.0],
}


@pytest.mark.parametrize("steps", sorted(REFERENCE_SCHEDULES))
def test_pingpong_schedule_matches_reference(steps):
    assert torch.allclose(pingpong_schedule(steps), torch.tensor(REFERENCE_SCHEDULES[steps], dtype=torch.float64),
                          atol=1e-5)


def test_flow_identities():
    x0, noise, t = torch.randn(3, 4, 5), torch.randn(3, 4, 5), torch.tensor([0.0, 0.3, 1.0])
    xt = add_noise(x0, noise, t)
    assert torch.allclose(xt[0], x0[0]) and torch.allclose(xt[2], noise[2])
    assert torch.allclose(x0_from_velocity(xt, t, velocity_target(x0, noise)), x0, atol=1e-6)


def test_pingpong_with_a_perfect_denoiser_returns_x0_in_one_step():
    x0 = torch.randn(2, 4, 6)

    def perfect(x, t):  # v such that x - t v = x0
        return (x - x0) / t.view(-1, 1, 1)

    noise = torch.randn(2, 4, 6)
    assert torch.allclose(sample_pingpong(perfect, noise, pingpong_schedule(1)), x0, atol=1e-6)
    assert torch.allclose(sample_pingpong(perfect, noise, pingpong_schedule(8)), x0, atol=1e-5)


def test_pingpong_matches_a_literal_loop():
    ts = pingpong_schedule(4)
    model = lambda x, t: torch.tanh(x) * (1 + t.view(-1, 1, 1))  # noqa: E731
    start = torch.randn(2, 3, 5)
    got = sample_pingpong(model, start, ts, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    x = start
    for i in range(4):
        t = float(ts[i])
        x0 = x - t * model(x, torch.full((2,), t))
        x = (1 - float(ts[i + 1])) * x0 + float(ts[i + 1]) * torch.randn(x.shape, generator=g) if i < 3 else x0
    assert torch.allclose(got, x, atol=1e-6)


def test_euler_on_a_straight_flow_is_exact():
    """For data at a single point x0, the velocity field is (x - x0) / t and Euler paths are straight lines."""
    x0 = torch.randn(2, 3, 4)
    field = lambda x, t: (x - x0) / t.view(-1, 1, 1)  # noqa: E731
    assert torch.allclose(sample_euler(field, torch.randn(2, 3, 4), linear_schedule(5)), x0, atol=1e-5)


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        pingpong_schedule(0)


def test_training_time_samplers():
    from arcaudio.flow import sample_t

    g = torch.Generator().manual_seed(0)
    t = sample_t("logsnr_uniform", 20000, g)
    lo, hi = torch.sigmoid(torch.tensor(-2.0)), torch.sigmoid(torch.tensor(6.0))
    assert t.min() >= lo - 1e-6 and t.max() <= hi + 1e-6  # logSNR in [-6, 2]
    logsnr = torch.log((1 - t) / t)  # inverse of t = sigmoid(-logsnr)
    assert abs(float(logsnr.mean()) + 2.0) < 0.1  # uniform on [-6, 2] has mean -2
    u = sample_t("uniform", 5, torch.Generator().manual_seed(1))
    shifted = sample_t("uniform", 5, torch.Generator().manual_seed(1), shift=3.0)
    assert torch.allclose(shifted, 3 * u / (1 + 2 * u))
    ln = sample_t("logit_normal", 20000, torch.Generator().manual_seed(2))
    assert abs(float(torch.logit(ln).mean())) < 0.05 and abs(float(torch.logit(ln).std()) - 1) < 0.05
    with pytest.raises(ValueError, match="unknown time sampler 'cosine'"):
        sample_t("cosine", 2)


def test_batch_randn_draws_each_item_from_its_own_generator():
    from arcaudio.sampling import batch_randn

    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    got = batch_randn((2, 5, 7), gens, "cpu")
    want = torch.stack([torch.randn(5, 7, generator=torch.Generator().manual_seed(s)) for s in (3, 4)])
    assert torch.equal(got, want)
    one = batch_randn((2, 5, 7), torch.Generator().manual_seed(3), "cpu")
    assert torch.equal(one, torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="got 2 generators for a batch of 3"):
        batch_randn((3, 5), gens, "cpu")


def test_dpmpp_with_a_perfect_denoiser_returns_x0_and_matches_a_literal_loop():
    from arcaudio.sampling import rf_schedule, sample_dpmpp

    x0 = torch.randn(2, 3, 4, dtype=torch.float64)
    perfect = lambda x, t: (x - x0) / t.view(-1, 1, 1).to(x.dtype)  # noqa: E731
    assert torch.allclose(sample_dpmpp(perfect, torch.randn(2, 3, 4, dtype=torch.float64), rf_schedule(6)), x0)

    ts = rf_schedule(5).tolist()
    model = lambda x, t: torch.sin(3 * x) + t.view(-1, 1, 1)  # noqa: E731
    start = torch.randn(2, 3, 4)
    got = sample_dpmpp(model, start, rf_schedule(5))
    x, old = start.double(), None  # the reference's update, written out in float64 with its own log-SNR
    lam = [float("-inf")] + [float(torch.log(torch.tensor((1 - t) / t, dtype=torch.float64))) for t in ts[1:-1]]
    for i in range(5):
        d = x - ts[i] * model(x, torch.full((2,), ts[i], dtype=torch.float64))
        if i == 4:
            x = d
        else:
            h = lam[i + 1] - lam[i]
            if old is not None:
                r = (lam[i] - lam[i - 1]) / h
                d2 = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old
            step = 1 - torch.exp(torch.tensor(-h, dtype=torch.float64))
            x = (ts[i + 1] / ts[i]) * x + (1 - ts[i + 1]) * step * (d if old is None else d2)
        old = d
    assert torch.allclose(got.double(), x, rtol=1e-5, atol=1e-5)


def test_cfg_with_negative_prompt_interval_and_rescale_is_the_literal_formula():
    from arcaudio import load
    from arcaudio.sampling import cfg_velocity

    model = load("tiny")
    cond, neg = model.condition(["hum", "buzz"], 1.0), model.condition(["hiss", "click"], 1.0)
    x = torch.randn(2, 32, 64)
    inside, outside = torch.tensor([0.5, 0.5]), torch.tensor([0.95, 0.95])
    fn = cfg_velocity(model, cond, 3.0, negative=neg, cfg_interval=(0.2, 0.9), cfg_rescale=0.7)
    uncond = type(cond)(neg.cross_attn_cond, cond.global_cond.clone(), neg.prompt_mask)  # tiny: pooled prompt
    if cond.global_prompt_from is not None:
        k = cond.global_prompt_from
        uncond = type(cond)(neg.cross_attn_cond, torch.cat([cond.global_cond[:, :k], neg.global_cond[:, k:]], 1),
                            neg.prompt_mask, k)
    v_c, v_n = model(x, inside, cond), model(x, inside, uncond)
    v = v_n + 3.0 * (v_c - v_n)
    want = 0.7 * v * v_c.std(dim=1, keepdim=True) / v.std(dim=1, keepdim=True) + 0.3 * v
    assert torch.allclose(fn(x, inside), want, atol=1e-5)
    assert torch.allclose(fn(x, outside), model(x, outside, cond), atol=1e-6)  # outside the interval: no CFG


def test_cli_sampler_names_are_the_samplers():
    from arcaudio.cli.options import SAMPLER_NAMES
    from arcaudio.sampling import SAMPLERS

    assert sorted(SAMPLER_NAMES) == sorted(SAMPLERS)


def _reference_loops(model, x, t, sampler):
    """stable-audio-tools 0.0.19's sample_discrete_euler / sample_flow_dpmpp / sample_flow_pingpong, restated in its
    float32 arithmetic (t a float32 grid; noise from `draws`), as the standard these samplers must equal bit for
    bit."""
    ones, draws = x.new_ones([x.shape[0]]), []
    if sampler == "euler":
        for t_curr, t_prev in zip(t[:-1], t[1:]):
            x = x + (t_prev - t_curr) * model(x, t_curr * ones)
        return x, draws
    if sampler == "pingpong":
        for i in range(len(t) - 1):
            denoised = x - t[i] * model(x, t[i] * ones)
            draws.append(torch.randn(x.shape, generator=torch.Generator().manual_seed(100 + i)))
            x = (1 - t[i + 1]) * denoised + t[i + 1] * draws[-1]
        return x, draws
    old = None
    log_snr = lambda t: ((1 - t) / t).log()  # noqa: E731
    for i in range(len(t) - 1):
        t_curr, t_next = t[i], t[i + 1]
        denoised = x - t_curr * model(x, t_curr * ones)
        alpha_t = 1 - t_next
        h = log_snr(t_next) - log_snr(t_curr)
        if old is None or t_next == 0:
            x = (t_next / t_curr) * x - alpha_t * (-h).expm1() * denoised
        else:
            r = (log_snr(t_curr) - log_snr(t[i - 1])) / h
            x = (t_next / t_curr) * x - alpha_t * (-h).expm1() * ((1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old)
        old = denoised
    return x, draws


@pytest.mark.parametrize("sampler", ["euler", "pingpong", "dpmpp"])
@pytest.mark.parametrize("sigma_max", [1.0, 0.6, 0.05])
def test_samplers_equal_the_references_loops_bit_for_bit(sampler, sigma_max, monkeypatch):
    from arcaudio.sampling import SAMPLERS, rf_schedule

    model = lambda x, t: torch.tanh(2 * x) * (1 + t.view(-1, 1, 1)) - 0.3 * x  # noqa: E731
    start = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(7))
    steps = 7
    logsnr = torch.linspace(math.log((1 - sigma_max) / sigma_max + 1e-6) if sigma_max < 1 else -6, 2, steps + 1)
    t = torch.sigmoid(-logsnr)
    t[0], t[-1] = sigma_max, 0
    want, draws = _reference_loops(model, start, t, sampler)
    assert torch.equal(rf_schedule(steps, sigma_max), t.double())
    replay = iter(draws)
    seen = []
    import arcaudio.sampling

    monkeypatch.setattr(arcaudio.sampling, "batch_randn", lambda shape, g, device, dtype=torch.float32: next(replay))
    got = SAMPLERS[sampler](model, start, rf_schedule(steps, sigma_max), callback=lambda i, x: seen.append(i))
    assert torch.equal(got, want)
    assert seen == list(range(steps))


def test_schedules_by_their_formulas():
    from arcaudio.sampling import linear_schedule, pingpong_schedule, rf_schedule

    assert torch.equal(linear_schedule(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    assert torch.equal(linear_schedule(2, 0.5), torch.tensor([0.5, 0.25, 0.0], dtype=torch.float64))
    got = pingpong_schedule(4, -4.0, 3.0)
    want = torch.sigmoid(-torch.linspace(-4.0, 3.0, 5))
    assert torch.equal(got[1:-1], want[1:-1].double()) and got[0] == 1 and got[-1] == 0
    with pytest.raises(ValueError, match=r"sigma_max \(the starting time\) must be in \(0, 1\], got 1.5"):
        rf_schedule(2, 1.5)


@pytest.mark.parametrize("steps", [0, 2.5, True, "8"])
def test_steps_must_be_a_positive_integer(steps):
    from arcaudio.sampling import rf_schedule

    with pytest.raises(ValueError, match="steps must be a positive integer"):
        rf_schedule(steps)


@pytest.mark.parametrize("sigma_max", [0, 0.0, -0.1, 1.01, float("nan")])
def test_the_starting_time_must_be_in_0_1(sigma_max):
    from arcaudio.sampling import rf_schedule

    with pytest.raises(ValueError, match=r"sigma_max \(the starting time\) must be in \(0, 1\]"):
        rf_schedule(4, sigma_max)


class _SpyModel:
    """A velocity model with a context cache that counts its uses; v depends on the prompt tokens."""

    def __init__(self):
        from arcaudio.models.text_to_audio import Conditioning

        self.cached, self.Conditioning = 0, Conditioning

    def with_context_cache(self, cond):
        self.cached += 1
        return cond

    def __call__(self, x, t, cond):
        return torch.tanh(x) * (1 + cond.cross_attn_cond.mean(dim=(1, 2))[:, None, None]) + t.view(-1, 1, 1)


def _cond(b: int, fill: float):
    from arcaudio.models.text_to_audio import Conditioning

    return Conditioning(torch.full((b, 5, 4), fill), torch.zeros(b, 4), torch.ones(b, 4, dtype=torch.bool))


def test_cfg_velocity_defaults_caches_and_interval_edges():
    from arcaudio.sampling import cfg_velocity

    model, x = _SpyModel(), torch.randn(3, 2, 8)
    cond = _cond(3, 0.5)
    t = torch.full((3,), 0.4)
    assert torch.equal(cfg_velocity(model, cond)(x, t), model(x, t, cond)) and model.cached == 1  # default: no CFG
    guided = cfg_velocity(model, cond, 3.0)
    assert model.cached == 2  # the [cond; null] batch, cached once
    v_c, v_u = model(x, t, cond), model(x, t, cond.null())
    assert torch.allclose(guided(x, t), v_u + 3.0 * (v_c - v_u))  # a batch of 3: 6 rows split in two halves
    edged = cfg_velocity(model, cond, 3.0, cfg_interval=(0.4, 0.6))
    assert model.cached == 4  # the pair, and cond alone for steps outside the interval
    assert torch.allclose(edged(x, t), guided(x, t))  # t = lo is inside
    one = cfg_velocity(model, _cond(1, 0.5), 3.0, cfg_interval=(0.5, 0.6))
    assert torch.equal(one(x[:1], t[:1]), model(x[:1], t[:1], _cond(1, 0.5)))  # a batch of one, outside


@pytest.mark.parametrize("kwargs, message", [
    ({"cfg_scale": float("nan")}, "cfg_scale must be a finite number, got nan"),
    ({"cfg_scale": float("inf")}, "cfg_scale must be a finite number, got inf"),
    ({"cfg_interval": (0.5,)}, r"cfg_interval must be two times \(lo, hi\), got \(0.5,\)"),
    ({"cfg_interval": "ab"}, r"cfg_interval must be two times \(lo, hi\), got 'ab'"),
    ({"cfg_interval": (-0.1, 0.5)}, r"cfg_interval must satisfy 0 <= lo <= hi <= 1"),
    ({"cfg_rescale": -0.5}, r"cfg_rescale must be in \[0, 1\], got -0.5"),
])
def test_guidance_settings_are_checked(kwargs, message):
    from arcaudio.sampling import check_guidance

    args = {"cfg_scale": 3.0, "cfg_interval": (0.0, 1.0), "cfg_rescale": 0.0} | kwargs
    with pytest.raises(ValueError, match=message):
        check_guidance(args["cfg_scale"], args["cfg_interval"], args["cfg_rescale"])


def test_guidance_edges_are_valid():
    from arcaudio.sampling import check_guidance

    assert check_guidance(3.0, (0.5, 0.5), 1.0) == (0.5, 0.5)


def test_time_shift_must_be_positive():
    from arcaudio.flow import sample_t

    for shift in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"time shift must be > 0, got {shift}"):
            sample_t("uniform", 3, shift=shift)


def test_noise_is_drawn_in_float32_whatever_the_models_dtype(monkeypatch):
    """A seed gives a bf16 model the noise it gives an fp32 one: torch's CPU randn in bf16 draws other numbers on
    some torch versions (2.11), so batch_randn draws float32 and casts."""
    from arcaudio.sampling import batch_randn

    asked = []
    randn = torch.randn

    def spy(*args, **kwargs):
        asked.append(kwargs.get("dtype", torch.float32))
        return randn(*args, **kwargs)

    monkeypatch.setattr(torch, "randn", spy)
    for generator in (torch.Generator().manual_seed(1), [torch.Generator().manual_seed(s) for s in (1, 2)]):
        a = batch_randn((2, 3, 50), generator, "cpu", torch.bfloat16)
        assert a.dtype == torch.bfloat16
    assert asked and set(asked) == {torch.float32}
    monkeypatch.undo()
    b = batch_randn((2, 3, 50), [torch.Generator().manual_seed(s) for s in (1, 2)], "cpu", torch.float32)
    assert torch.equal(a, b.bfloat16())
