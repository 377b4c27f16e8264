"""The spectral VAE against literal formulas: the encoder's log-magnitudes against a numpy DFT of Hann-windowed
frames, the decoder's phase accumulation and its overlap-add against a closed-form sinusoid."""

import math

import numpy as np
import pytest
import torch

from arcaudio.config import AutoencoderConfig, ModelConfig, preset
from arcaudio.models.autoencoder import AudioAutoencoder
from arcaudio.models.spectral_autoencoder import LOG_MAG_CENTRE, LOG_MAG_FLOOR, LOG_MAG_MIN, LOG_MAG_SPREAD


def _config(**kw) -> AutoencoderConfig:
    base = dict(type="spectral", io_channels=2, channels=16, c_mults=[1, 2], strides=[2, 2], latent_dim=4,
                n_fft=256, hop_length=64)
    return AutoencoderConfig(**{**base, **kw})


def test_shapes_and_ratio():
    ae = AudioAutoencoder(_config())
    assert ae.downsampling_ratio == 64 * 4
    audio = torch.randn(3, 2, 256 * 10) * 0.1
    mean, std = ae.encode_moments(audio)
    assert mean.shape == std.shape == (3, 4, 10) and bool((std > 0).all())
    assert ae.decode(mean).shape == (3, 2, 2560)


def test_encoder_log_magnitudes_match_a_numpy_dft():
    ae = AudioAutoencoder(_config())
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((1, 2, 1024)).astype(np.float32) * 0.3
    got = ae.encoder.log_magnitudes(torch.from_numpy(audio)).numpy()  # (1, 2 * bins, frames)
    n_fft, hop, bins = 256, 64, 129
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    for channel in range(2):
        padded = np.pad(audio[0, channel], n_fft // 2, mode="reflect")  # a centred STFT
        for frame in (0, 5, 15):
            segment = padded[frame * hop: frame * hop + n_fft] * window
            magnitude = np.abs(np.fft.rfft(segment))
            want = (np.log(magnitude + LOG_MAG_FLOOR) - LOG_MAG_CENTRE) / LOG_MAG_SPREAD
            np.testing.assert_allclose(got[0, channel * bins:(channel + 1) * bins, frame], want, atol=2e-4)
    assert got.shape[-1] == 1024 // hop  # the centred STFT's last frame (padding only) is dropped


def _steady_decoder(config: AutoencoderConfig, bin_index: int, magnitude: float) -> AudioAutoencoder:
    """A decoder whose head ignores the latents: magnitude at one bin (both channels), none elsewhere, zero phase
    deviation."""
    ae = AudioAutoencoder(config)
    head = ae.decoder.layers[-1]
    bins = config.n_fft // 2 + 1
    bias = torch.full((config.io_channels, 2, bins), -40.0)
    bias[:, 0, bin_index] = math.log(magnitude) - LOG_MAG_CENTRE
    bias[:, 1] = 0.0
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(bias.flatten())
    return ae


def test_decoder_phase_advances_at_the_bin_centre_frequency():
    config = _config()
    ae = _steady_decoder(config, bin_index=9, magnitude=2.0)
    with torch.no_grad():
        spec = ae.decoder.spectrogram(torch.zeros(1, 4, 5))  # (2, bins, 20)
    frames = torch.arange(1, 21, dtype=torch.float64)
    want_phase = (2 * math.pi * 64 / 256 * 9 * frames + math.pi) % (2 * math.pi) - math.pi
    got_phase = torch.angle(spec[0, 9]).double()
    assert torch.allclose((got_phase - want_phase + math.pi) % (2 * math.pi) - math.pi,
                          torch.zeros_like(got_phase), atol=1e-4)
    assert torch.allclose(spec[:, 9].abs(), torch.full((2, 20), 2.0), rtol=1e-5)
    assert float(spec[:, 20].abs().max()) <= math.exp(LOG_MAG_MIN) * 1.001  # the floor: silence


def test_decoder_renders_a_steady_bin_as_a_cosine():
    """A single bin of magnitude M, its phase advancing at the bin centre: each frame's inverse DFT is the cosine
    (2 M / n_fft) cos(2 pi k j / n_fft + phase); Hann-weighted overlap-add at hop n_fft / 4 divides
    sum(w) = 2 by sum(w^2) = 1.5, so the output is that cosine times 4 / 3, its phase at sample 0 that of frame 0
    (one bin advance, shifted by pi k for the centred frame; k is even here)."""
    config = _config()
    k, m = 12, 3.0
    ae = _steady_decoder(config, bin_index=k, magnitude=m)
    with torch.no_grad():
        audio = ae.decode(torch.zeros(1, 4, 6))[0].double()  # (2, 1536)
    n = torch.arange(audio.shape[-1], dtype=torch.float64)
    phase0 = 2 * math.pi * 64 / 256 * k
    want = 2 * m / 256 * 4 / 3 * torch.cos(2 * math.pi * k * n / 256 + phase0)
    interior = slice(256, audio.shape[-1] - 256)  # away from the edge frames' partial overlap-add
    assert torch.allclose(audio[:, interior], want[interior].expand(2, -1), atol=1e-5)


def test_gradients_reach_every_weight():
    ae = AudioAutoencoder(_config())
    audio = torch.randn(2, 2, 1024) * 0.1
    mean, std = ae.encode_moments(audio)
    ae.decoder(mean + std * torch.randn_like(std)).pow(2).mean().backward()
    missing = [name for name, p in ae.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing


@pytest.mark.parametrize("change, match", [
    (dict(type="wavelet"), "autoencoder.type 'wavelet'"),
    (dict(strides=[3, 2]), r"strides \[3, 2\] must be even"),
    (dict(n_fft=256, hop_length=256), "n_fft 256 must be a multiple of at least twice"),
])
def test_bad_configs_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        _config(**change).validate()


def test_preset_round_trips_through_json_and_is_refused_by_sao_export():
    config = preset("tiny-spectral")
    assert ModelConfig.from_json(config.to_json()) == config
    assert config.latent_length == 64
    from arcaudio.compat.sao import model_config_to_sao

    config.conditioning.prompt.arch = None
    config.conditioning.pooled_prompt_in_global = False
    with pytest.raises(ValueError, match="autoencoder.type 'spectral'"):
        model_config_to_sao(config)


def test_saved_model_loads_strictly_and_decodes_the_same(tmp_path):
    from arcaudio import load
    from arcaudio.checkpoint import save_model
    from arcaudio.models.text_to_audio import TextToAudioModel

    config = preset("tiny-spectral")
    config.autoencoder.channels = 16
    model = TextToAudioModel(config).eval()
    path = save_model(model, tmp_path / "model.safetensors")
    loaded = load(path)  # built on the meta device, then filled: nothing may be left unmaterialised
    assert loaded.config.autoencoder == config.autoencoder
    latents = torch.randn(1, 32, 4)
    with torch.no_grad():
        assert torch.equal(model.autoencoder.decode(latents), loaded.autoencoder.decode(latents))
