"""Exact time tiling of the Oobleck decoder (nn/tiling.py): tiles stitched equal the whole run, and the context each
stage declares covers its measured receptive field."""

import pytest
import torch
from torch import nn

from arcaudio.config import AutoencoderConfig
from arcaudio.models.autoencoder import OobleckDecoder, channels_last_2d
from arcaudio.nn.layers import WNConv1d, WNConvTranspose1d
from arcaudio.nn.tiling import geometry, run_tiled, tiled_stages


def _decoder(nearest: bool) -> OobleckDecoder:
    torch.manual_seed(0)
    config = AutoencoderConfig(channels=8, c_mults=[1, 2, 4], strides=[2, 4, 3 if nearest else 4], latent_dim=4,
                               use_nearest_upsample=nearest)
    decoder = OobleckDecoder(config).eval()
    with torch.no_grad():  # nonzero biases and activations' parameters: every path carries signal
        for p in decoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return decoder


@pytest.mark.parametrize("nearest", [False, True])
def test_tiled_decoder_equals_the_whole_run(nearest, monkeypatch):
    decoder = _decoder(nearest)
    z = torch.randn(2, 4, 37)
    with torch.no_grad():
        monkeypatch.setattr(decoder, "tile_bytes", 0)
        whole = decoder(z)  # (2, 2, 37 * 24 or 37 * 32)
        for tile_bytes in (1, 3000, 1 << 14):  # one input sample per tile, a few, one tile per stage
            monkeypatch.setattr(decoder, "tile_bytes", tile_bytes)
            tiled = decoder(z)
            assert tiled.shape == whole.shape
            torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-6)
    with torch.enable_grad():  # training runs the layers whole
        assert torch.equal(decoder(z), decoder.layers(channels_last_2d(z)).squeeze(2))


@pytest.mark.parametrize("nearest", [False, True])
def test_declared_context_covers_the_measured_receptive_field(nearest):
    """Change one input sample of a stage and see which output samples move: all lie within the stage's declared
    context (x its upsampling) of that sample's position."""
    decoder = _decoder(nearest)
    with torch.no_grad():
        for stage in decoder.stages():
            context, scale, _ = geometry(stage)
            x = torch.randn(1, _in_channels(stage), 1, 60)
            base = stage(x)
            for j in (0, 29, 59):
                moved = x.clone()
                moved[..., j] += 1.0
                changed = (stage(moved) - base).abs().flatten(0, 2).amax(0) > 0  # (T * scale,)
                where = changed.nonzero().flatten()
                assert len(where) > 0
                assert where.min() >= (j - context) * scale and where.max() < (j + context + 1) * scale


def _in_channels(stage: nn.Module) -> int:
    return next(m for m in stage.modules() if isinstance(m, (WNConv1d, WNConvTranspose1d))).in_channels


def test_a_stack_of_unknown_geometry_runs_whole():
    strided = nn.Sequential(WNConv1d(4, 4, 4, stride=2, padding=1))
    assert geometry(strided) is None and geometry(nn.Sequential(nn.Linear(4, 4))) is None
    x = torch.randn(1, 4, 1, 32)
    with torch.no_grad():
        assert torch.equal(tiled_stages([strided], x, tile_bytes=1), strided(x))


def test_a_context_too_small_is_caught():
    """The stitching is only exact with the context: without it the tiles' edges differ (what the tests above
    would see if geometry under-counted)."""
    stage = _decoder(False).stages()[1]
    context, scale, _ = geometry(stage)
    x = torch.randn(1, 32, 1, 40)
    with torch.no_grad():
        whole = stage(x)
        assert torch.allclose(run_tiled(stage, x, context, scale, tile=5), whole, rtol=0, atol=1e-6)
        assert not torch.allclose(run_tiled(stage, x, 0, scale, tile=5), whole, rtol=0, atol=1e-3)


def test_the_decoder_layouts_agree_and_a_bad_one_is_refused():
    from arcaudio.loading import load

    decoder = load("tiny", precision="fp32").autoencoder.decoder
    z = torch.randn(2, decoder.layers[0].in_channels, 12)
    with torch.no_grad():
        default = decoder(z)  # on a CPU: channels-last 2D (models/autoencoder.py DEFAULT_LAYOUT)
        decoder.layout = "ncl"
        ncl = decoder(z)
        decoder.layout = "nhwc"
        with pytest.raises(ValueError, match=r"layout must be one of \['channels_last_2d', 'ncl'\] .*got 'nhwc'"):
            decoder(z)
        decoder.layout = 2
        with pytest.raises(ValueError, match=r"or a tuple of them, one per layer; got 2"):
            decoder(z)
    assert ncl.shape == default.shape and (ncl - default).abs().max() <= 1e-5 * default.abs().max()


def test_a_layout_per_layer_agrees_with_one_layout_and_a_bad_list_is_refused():
    from arcaudio.loading import load

    decoder = load("tiny", precision="fp32").autoencoder.decoder
    z = torch.randn(2, decoder.layers[0].in_channels, 12)
    n = len(decoder.layers)
    seen = []  # the layout each top-level layer was given its input in
    for layer in decoder.layers:
        layer.register_forward_pre_hook(lambda _, args: seen.append(
            "channels_last_2d" if args[0].ndim == 4 and args[0].is_contiguous(memory_format=torch.channels_last)
            else "ncl" if args[0].ndim == 3 else "other"))
    with torch.no_grad():
        decoder.layout = "ncl"
        ncl = decoder(z)
        for first in ("ncl", "channels_last_2d"):  # alternating, so that every layer boundary converts
            other = "ncl" if first == "channels_last_2d" else "channels_last_2d"
            decoder.layout = tuple(first if i % 2 == 0 else other for i in range(n))
            seen.clear()
            mixed = decoder(z)
            assert tuple(seen) == decoder.layout
            assert mixed.shape == ncl.shape and mixed.is_contiguous()
            assert (mixed - ncl).abs().max() <= 1e-5 * ncl.abs().max()
        decoder.layout = ("ncl",) * (n - 1)
        with pytest.raises(ValueError, match=rf"per-layer decoder layout needs {n} entries.*got {n - 1} entries"):
            decoder(z)
        decoder.layout = ("ncl",) * (n - 1) + ("nhwc",)
        with pytest.raises(ValueError, match=rf"got {n} entries, 'nhwc'"):
            decoder(z)
