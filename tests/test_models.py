"""Properties of the assembled networks beyond the reference parity: lengths, exit layers, VAE maths, errors."""

import pytest
import torch
from conftest import rel_err

from arcaudio import build_model, preset
from arcaudio.models.autoencoder import vae_kl, vae_moments


@pytest.fixture(scope="module")
def tiny():
    return build_model(preset("tiny")).eval()


def test_autoencoder_lengths(tiny):
    ae = tiny.autoencoder
    audio = torch.randn(2, 2, 4 * 2048)
    latents = ae.encode(audio, sample=False)
    assert latents.shape == (2, 32, 4)
    assert ae.decode(latents).shape == (2, 2, 4 * 2048)


def test_encode_sample_uses_posterior(tiny):
    audio = torch.randn(1, 2, 2048)
    mean, std = tiny.autoencoder.encode_moments(audio)
    g = torch.Generator().manual_seed(3)
    sample = tiny.autoencoder.encode(audio, generator=g)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(3))
    assert rel_err(sample, mean + std * noise) < 1e-6
    assert torch.equal(tiny.autoencoder.encode(audio, sample=False), mean)


def test_vae_maths_literal():
    encoded = torch.randn(2, 6, 5)
    mean, std = vae_moments(encoded)
    assert torch.equal(mean, encoded[:, :3])
    assert rel_err(std, torch.log1p(torch.exp(encoded[:, 3:])) + 1e-4) < 1e-6
    kl = (mean**2 + std**2 - torch.log(std**2) - 1).sum(1).mean()
    assert rel_err(vae_kl(mean, std), kl) < 1e-6


def test_autoencoder_input_errors(tiny):
    with pytest.raises(ValueError, match="not a multiple of the downsampling ratio 2048"):
        tiny.autoencoder.encode(torch.randn(1, 2, 3000))
    with pytest.raises(ValueError, match=r"audio must be \(batch, 2, samples\)"):
        tiny.autoencoder.encode(torch.randn(1, 1, 2048))
    with pytest.raises(ValueError, match=r"latents must be \(batch, 32, frames\)"):
        tiny.autoencoder.decode(torch.randn(1, 8, 4))


def test_exit_layer_equals_running_the_first_blocks(tiny):
    dit = tiny.dit
    for p in dit.parameters():  # leave no zero-initialised branch
        torch.nn.init.normal_(p, std=0.05) if p.ndim > 1 else None
    x, t = torch.randn(2, 32, 8), torch.tensor([0.2, 0.7])
    ctx, glob = torch.randn(2, 129, 128), torch.randn(2, 256)  # seconds | pooled prompt
    hidden = dit(x, t, ctx, glob, exit_layer=1)
    assert hidden.shape == (2, 9, 128)
    # independent path: the same computation spelled out with the submodules
    tr = dit.transformer
    g = dit.to_global_embed(glob) + dit.to_timestep_embed(dit.timestep_features(t[:, None]))
    h = torch.cat([g[:, None], tr.project_in((dit.preprocess_conv(x) + x).transpose(1, 2))], dim=1)
    rotary, context = tr.rotary_pos_emb(9), dit.to_cond_embed(ctx)
    for block in tr.layers[:2]:
        h = block(h, context, rotary)
    assert torch.equal(hidden, h)
    last = dit(x, t, ctx, glob, exit_layer=len(tr.layers) - 1)
    v = dit(x, t, ctx, glob)
    out = tr.project_out(last).transpose(1, 2)[:, :, 1:]
    assert rel_err(v, dit.postprocess_conv(out) + out) < 1e-6
    with pytest.raises(ValueError, match="exit_layer 4 is out of range for a DiT of depth 4"):
        dit(x, t, ctx, glob, exit_layer=4)


def test_velocity_depends_on_prompt_and_time(tiny):
    for p in tiny.dit.parameters():
        torch.nn.init.normal_(p, std=0.05) if p.ndim > 1 else None
    cond = tiny.condition(["a bell", "white noise"], 2.0)
    x = torch.randn(1, 32, 8).expand(2, -1, -1)
    v = tiny(x, torch.tensor([0.5, 0.5]), cond)
    assert not torch.allclose(v[0], v[1])
    v2 = tiny(x, torch.tensor([0.1, 0.5]), cond)
    assert not torch.allclose(v[0], v2[0]) and torch.allclose(v[1], v2[1])


def test_condition_errors(tiny):
    with pytest.raises(ValueError, match="got 2 prompts but 3 seconds_total values"):
        tiny.condition(["a", "b"], [1.0, 2.0, 3.0])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_nearest_upsample_decoder_block_matches_torch_layers():
    """The `use_nearest_upsample` decoder path = nn.Upsample(nearest) then Conv1d(padding='same'), no bias."""
    from arcaudio.models.autoencoder import DecoderBlock

    block = DecoderBlock(6, 4, stride=4, use_snake=False, nearest=True)
    upsample = block.layers[1]
    conv = torch.nn.Conv1d(6, 4, 8, padding="same", bias=False)
    with torch.no_grad():
        conv.weight.copy_(upsample[1].weight)
    x = torch.randn(2, 6, 5)
    ref = conv(torch.nn.Upsample(scale_factor=4, mode="nearest")(x))
    assert upsample(x).shape == (2, 4, 20)
    assert rel_err(upsample(x), ref) < 1e-6
    assert "layers.1.1.weight_g" in block.state_dict()  # stable-audio-tools' key layout


def test_pooled_prompt_in_the_global_condition(tiny):
    prompts = ["a loud kick", "soft rain on a window, far away"]
    cond = tiny.condition(prompts, [1.0, 2.5])
    text, mask = tiny.conditioners["prompt"](prompts)  # (B, L, D), (B, L)
    seconds, _ = tiny.conditioners["seconds_total"]([1.0, 2.5])  # (B, 1, D)
    k = cond.global_prompt_from
    assert k == 128 and cond.global_cond.shape == (2, 256)
    pooled = torch.stack([text[i, mask[i]].mean(0) for i in range(2)])  # literal masked mean
    assert rel_err(cond.global_cond[:, k:], pooled) < 1e-6
    assert torch.equal(cond.global_cond[:, :k], seconds[:, 0])
    null = cond.null()
    assert not null.cross_attn_cond.any() and not null.global_cond[:, k:].any()
    assert torch.equal(null.global_cond[:, :k], cond.global_cond[:, :k])  # the seconds survive CFG's null branch
    dropped = cond.dropped(torch.tensor([True, False]))
    assert torch.equal(dropped.global_cond[0], null.global_cond[0])
    assert torch.equal(dropped.global_cond[1], cond.global_cond[1])
    swapped = cond.with_prompts_permuted(torch.tensor([1, 0]))
    assert torch.equal(swapped.global_cond[:, k:], cond.global_cond.flip(0)[:, k:])
    assert torch.equal(swapped.global_cond[:, :k], cond.global_cond[:, :k])
