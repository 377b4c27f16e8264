"""Data-dependent init of a from-scratch autoencoder: the statistics it promises, measured with hooks."""

import pytest
import torch

from arcaudio.config import AutoencoderConfig
from arcaudio.models.autoencoder import AudioAutoencoder, ResidualUnit
from arcaudio.training.autoencoder_init import data_dependent_init

CONFIG = AutoencoderConfig(channels=4, c_mults=[1, 2, 4], strides=[2, 4, 4], latent_dim=8)


def _audio(batch: int = 3, length: int = 4096) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(length) / 44100
    tones = torch.sin(2 * torch.pi * torch.tensor([110.0, 440.0, 1500.0])[:batch, None] * t)  # (B, L)
    return 0.05 * torch.stack([tones, 0.3 * tones + 0.01 * torch.randn(batch, length, generator=g)], 1)


def _branch_outputs(ae: AudioAutoencoder, audio: torch.Tensor) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    """Std of every residual branch's output, the posterior means and the reconstruction of `audio`."""
    stds: list[float] = []
    hooks = [u.layers.register_forward_hook(lambda m, i, o: stds.append(float(o.std())))
             for u in ae.modules() if isinstance(u, ResidualUnit)]
    with torch.no_grad():
        mean, _ = ae.encode_moments(audio)
        recon = ae.decoder(mean)
    for h in hooks:
        h.remove()
    return stds, mean, recon


def test_init_sets_the_promised_statistics():
    torch.manual_seed(0)
    ae = AudioAutoencoder(CONFIG)
    audio = _audio()
    _, mean_before, _ = _branch_outputs(ae, audio)
    scales = data_dependent_init(ae, audio, residual_gain=0.3)
    stds, mean, recon = _branch_outputs(ae, audio)
    assert len(stds) == 2 * 3 * len(CONFIG.strides)
    assert all(abs(s - 0.3) < 1e-4 for s in stds)
    assert abs(float(mean.std()) - 1.0) < 1e-4
    assert abs(float(recon.std()) - float(audio.std())) < 1e-4 * float(audio.std())
    assert float(mean_before.std()) < 0.1  # what it fixes: torch's default init shrinks the signal
    assert set(scales) == {n for n, m in ae.named_modules() if hasattr(m, "weight_g")}


def test_init_keeps_the_narrow_posterior_and_zero_biases():
    torch.manual_seed(0)
    ae = AudioAutoencoder(CONFIG)
    out = ae.encoder.layers[-1]
    before = out.weight_g[CONFIG.latent_dim:].clone()
    data_dependent_init(ae, _audio())
    assert torch.equal(out.weight_g[CONFIG.latent_dim:], before)
    assert torch.all(out.bias[CONFIG.latent_dim:] == -10.0)
    with torch.no_grad():
        _, std = ae.encode_moments(_audio())
    assert float(std.max()) < 1e-2
    for m in ae.modules():
        if getattr(m, "bias", None) is not None and m is not out:
            assert not m.bias.any()


def test_init_refuses_trained_biases():
    ae = AudioAutoencoder(CONFIG)
    with torch.no_grad():
        ae.encoder.layers[0].bias.fill_(0.1)
    with pytest.raises(ValueError, match="encoder.layers.0"):
        data_dependent_init(ae, _audio())
