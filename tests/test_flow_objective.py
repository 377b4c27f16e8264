"""The rectified-flow objective against its formula: x_t = (1 - t) x0 + t eps, target eps - x0, loss
MSE(model(x_t, t, c), eps - x0), with t = 0 clean and t = 1 noise; checked on literal numbers and on the loss the
flow stage really reports for a batch."""

import pytest
import torch

from arcaudio.config import ModelConfig, preset
from arcaudio.flow import add_noise, velocity_target, x0_from_velocity
from arcaudio.loading import build_model
from arcaudio.training.config import TrainConfig, apply_overrides
from arcaudio.training.distributed import DistInfo


def test_flow_identities_on_literal_numbers_at_an_asymmetric_time():
    x0 = torch.tensor([[[1.0, -2.0]], [[4.0, 0.0]]])  # (B=2, C=1, T=2)
    noise = torch.tensor([[[3.0, 0.5]], [[-1.0, 2.0]]])
    t = torch.tensor([0.2, 0.9])
    x_t = add_noise(x0, noise, t)
    # item 0: 0.8 * x0 + 0.2 * noise; item 1: 0.1 * x0 + 0.9 * noise
    assert torch.allclose(x_t, torch.tensor([[[1.4, -1.5]], [[-0.5, 1.8]]]), atol=1e-6), x_t
    v = velocity_target(x0, noise)
    assert torch.allclose(v, torch.tensor([[[2.0, 2.5]], [[-5.0, 2.0]]]), atol=1e-6), v
    assert torch.allclose(x0_from_velocity(x_t, t, v), x0, atol=1e-6)  # x_t - t v gives back x0
    assert torch.allclose(x0_from_velocity(x_t, t, torch.zeros_like(v)), x_t)
    assert torch.equal(add_noise(x0, noise, torch.zeros(2)), x0)  # t = 0: clean
    assert torch.equal(add_noise(x0, noise, torch.ones(2)), noise)  # t = 1: pure noise


def _small_config() -> ModelConfig:
    data = apply_overrides(preset("tiny").to_dict(), ["dit.depth=2", "dit.embed_dim=64", "autoencoder.channels=4",
                                                      "conditioning.prompt.arch.num_layers=1"])
    return ModelConfig.from_dict(data)


def test_flow_stage_loss_equals_the_literal_objective():
    from arcaudio.training.flow_stage import FlowStage

    torch.manual_seed(0)
    model = build_model(_small_config())
    with torch.no_grad():  # nonzero output projection, so the velocity depends on x_t and t
        model.dit.postprocess_conv.weight.normal_(0, 0.1)
    overrides = ["stage='flow'", "data='x'", "batch_size=3", "ema_decay=0.0", "flow.time_sampler='uniform'",
                 "flow.cfg_dropout=0.0"]
    config = TrainConfig.from_dict(apply_overrides(TrainConfig().to_dict(), overrides))
    stage = FlowStage(model, config, DistInfo())
    g = torch.Generator().manual_seed(1)
    batch = {"latents": 2.0 * torch.randn(3, 32, 64, generator=g) + 1.0, "caption": ["low", "high", "noise"],
             "seconds_total": torch.full((3,), 2.0)}

    seen = []
    model.dit.register_forward_pre_hook(lambda module, args: seen.append((args[0].detach().clone(), args[1].clone())))

    # the draws of the step, redrawn in its order: t ~ U(0, 1), eps ~ N(0, I), the (unused) CFG dropout draw
    draws = torch.Generator().manual_seed(5)
    t = torch.rand(3, generator=draws)
    eps = torch.randn(3, 32, 64, generator=draws)
    x0 = batch["latents"]
    tb = t[:, None, None]
    x_t = (1 - tb) * x0 + tb * eps
    with torch.no_grad():
        v = model(x_t, t, model.condition(batch["caption"], [2.0] * 3))
    want = float(((v - (eps - x0)) ** 2).mean())
    seen.clear()

    loss = stage.train_step(batch, 0, torch.Generator().manual_seed(5))["loss"]
    assert loss == pytest.approx(want, rel=1e-5), (loss, want)
    assert len(seen) == 1  # and the DiT saw exactly these times and noised latents
    fed_x, fed_t = seen[0]
    assert torch.equal(fed_t, t)
    assert torch.allclose(fed_x, x_t, atol=1e-5), float((fed_x - x_t).abs().max())
