"""Regenerate tests/golden/ with the reference implementation (stable-audio-tools 0.0.19 from PyPI).

Not part of the library and never run by the tests. Run it in the private reference environment that
../shared/reference/stable-audio-tools/setup_sat_venv.sh creates (the project does not depend on stable-audio-tools):

    bash ../shared/reference/stable-audio-tools/setup_sat_venv.sh /tmp/satvenv
    PYTHONPATH=/tmp/satvenv/stub /tmp/satvenv/bin/python scripts/make_sat_golden.py tests/golden

Writes:
  sao_small_keys.json        every key and shape of a Stable Audio Open Small state dict (built on meta)
  sat_tiny_model_config.json a small model in stable-audio-tools' model_config.json format
  sat_tiny_io.safetensors    inputs and reference outputs of that model (weights are not stored: every parameter
                             is drawn from torch.randn seeded with crc32 of its key, see `golden_weight`, and
                             sat_tiny_weight_sums.json holds each tensor's sum to prove the same draw)
  sat_tiny_sampling.json     the generation cases below (sampler, steps, CFG options, strength, prompts, seed)
  sat_tiny_sampling.safetensors  for each case, `generate_diffusion_cond` end to end with a small T5 whose weights
                             are golden_weight draws too (run in fp32; the reference casts T5 to fp16): the noise it
                             drew (start, posterior, per step), the state and time of every network call (the
                             trajectory), the final latents and the decoded audio
"""

import json
import os
import sys
import zlib

import torch
import transformers
from safetensors.torch import save_file

# T5 is not in stable-audio-tools checkpoints; give its factory a small offline stand-in so the model builds.
T5_ARCH = dict(d_model=768, d_kv=8, d_ff=32, num_layers=1, num_heads=2, vocab_size=384)  # tests/golden_weights.py
transformers.T5EncoderModel.from_pretrained = staticmethod(lambda *a, **k: transformers.T5EncoderModel(
    transformers.T5Config(**T5_ARCH)))
transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: transformers.ByT5Tokenizer())

from stable_audio_tools.inference.generation import generate_diffusion_cond  # noqa: E402
from stable_audio_tools.models.factory import create_model_from_config  # noqa: E402

PROMPTS = ["a dog barking in the rain", "soft piano chords"]
NEGATIVES = ["static noise", "a loud siren"]
CASES = [  # name -> generate_diffusion_cond settings; strength < 1 is audio-to-audio from the stored init audio
    dict(name="pingpong", sampler="pingpong", steps=8, cfg_scale=1.0, seed=11),
    dict(name="euler", sampler="euler", steps=10, cfg_scale=1.0, seed=12),
    dict(name="dpmpp", sampler="dpmpp", steps=10, cfg_scale=1.0, seed=13),
    dict(name="euler_cfg_negative", sampler="euler", steps=10, cfg_scale=3.0, negative=NEGATIVES, seed=14),
    dict(name="dpmpp_cfg_interval_rescale", sampler="dpmpp", steps=10, cfg_scale=4.0, cfg_interval=[0.3, 0.9],
         scale_phi=0.6, seed=15),
    dict(name="pingpong_cfg_negative_rescale", sampler="pingpong", steps=8, cfg_scale=2.5, negative=NEGATIVES,
         scale_phi=0.3, cfg_interval=[0.0, 0.95], seed=16),
] + [dict(name=f"{sampler}_a2a_{s}", sampler=sampler, steps=8, cfg_scale=1.0, strength=s, seed=20 + i)
     for i, (sampler, s) in enumerate((sm, s) for s in (0.3, 0.7) for sm in ("pingpong", "euler", "dpmpp"))]


def golden_weight(name, shape):
    """The deterministic random value of parameter `name` (mirrored in tests/parity_weights.py)."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    w = torch.randn(shape, generator=g)
    if name.endswith(("gamma", "norm.weight")):
        return 1.0 + 0.1 * w
    return w * (0.3 if len(shape) > 1 else 0.1)


def sat_config(channels, c_mults, strides, latent, embed_dim, depth, heads, sample_size):
    ratio = 1
    for s in strides:
        ratio *= s
    ae = dict(channels=channels, c_mults=list(c_mults), strides=list(strides), use_snake=True)
    return {
        "model_type": "diffusion_cond", "sample_size": sample_size, "sample_rate": 44100, "audio_channels": 2,
        "model": {
            "pretransform": {"type": "autoencoder", "iterate_batch": False, "model_half": False, "config": {
                "encoder": {"type": "oobleck", "requires_grad": False,
                            "config": dict(ae, in_channels=2, latent_dim=2 * latent)},
                "decoder": {"type": "oobleck", "config": dict(ae, out_channels=2, latent_dim=latent, final_tanh=False)},
                "bottleneck": {"type": "vae"}, "latent_dim": latent, "downsampling_ratio": ratio, "io_channels": 2}},
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": 64}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 256}}],
                "cond_dim": 768},
            "diffusion": {"diffusion_objective": "rf_denoiser",
                          "cross_attention_cond_ids": ["prompt", "seconds_total"],
                          "global_cond_ids": ["seconds_total"], "type": "dit",
                          "config": {"io_channels": latent, "embed_dim": embed_dim, "depth": depth, "num_heads": heads,
                                     "cond_token_dim": 768, "global_cond_dim": 768,
                                     "transformer_type": "continuous_transformer", "attn_kwargs": {"qk_norm": "ln"}}},
            "io_channels": latent}}


def main(out):
    os.makedirs(out, exist_ok=True)
    with torch.device("meta"):
        big = create_model_from_config(sat_config(128, (1, 2, 4, 8, 16), (2, 4, 4, 8, 8), 64, 1024, 16, 8, 524288))
    keys = {k: list(v.shape) for k, v in big.state_dict().items()}
    with open(f"{out}/sao_small_keys.json", "w") as f:
        json.dump(keys, f, indent=0, sort_keys=True)

    cfg = sat_config(8, (1, 2), (2, 4), 8, 128, 3, 2, 8 * 32)
    model = create_model_from_config(cfg).eval()
    sums = {}
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.copy_(golden_weight(name, tuple(p.shape)))
            sums[name] = float(p.double().sum())
    with open(f"{out}/sat_tiny_model_config.json", "w") as f:
        json.dump(cfg, f, indent=1)
    with open(f"{out}/sat_tiny_weight_sums.json", "w") as f:
        json.dump(sums, f, indent=0, sort_keys=True)

    g = torch.Generator().manual_seed(1)
    b, frames = 2, 32
    x = torch.randn(b, 8, frames, generator=g)
    t = torch.tensor([0.3, 0.9])
    cross = torch.randn(b, 65, 768, generator=g)
    cross[0, 20:64] = 0.0  # padded T5 rows are zero in the reference
    cross[1, 50:64] = 0.0
    glob = torch.randn(b, 768, generator=g)
    audio = torch.randn(b, 2, 8 * frames, generator=g) * 0.5
    seconds = [3.0, 200.0, 300.0, -1.0]  # the last two lie outside [0, 256] and are clamped
    dit = model.model.model
    ae = model.pretransform.model
    with torch.no_grad():
        v = dit(x, t, cross_attn_cond=cross, global_embed=glob, cfg_scale=1.0)
        hidden = dit(x, t, cross_attn_cond=cross, global_embed=glob, cfg_scale=1.0, exit_layer_ix=1)
        encoded = ae.encoder(audio)
        decoded = ae.decoder(x)
        sec_tokens, _ = model.conditioner.conditioners["seconds_total"](seconds, device="cpu")
    save_file({"x": x, "t": t, "cross_attn_cond": cross, "global_cond": glob, "audio": audio,
               "v": v, "hidden_after_block1": hidden.contiguous(), "encoder_out": encoded, "decoded": decoded,
               "seconds": torch.tensor(seconds), "seconds_tokens": sec_tokens.contiguous()},
              f"{out}/sat_tiny_io.safetensors")
    print("wrote", out, "| v", tuple(v.shape), "hidden", tuple(hidden.shape), "encoded", tuple(encoded.shape))
    sampling_golden(model, cfg["sample_size"], out)


def sampling_golden(model, sample_size, out):
    """Run every CASE through generate_diffusion_cond, recording its noise draws and its network calls."""
    t5 = transformers.T5EncoderModel(transformers.T5Config(**T5_ARCH)).eval()
    with torch.no_grad():
        for name, p in t5.named_parameters():
            p.copy_(golden_weight(f"t5.{name}", tuple(p.shape)))
    model.conditioner.conditioners["prompt"].__dict__["model"] = t5  # fp32 (the reference casts it to fp16)
    seconds = sample_size / model.sample_rate  # the whole window, so nothing is cropped
    init_audio = torch.randn(2, sample_size, generator=torch.Generator().manual_seed(5)) * 0.5
    tensors, calls = {"init_audio": init_audio}, []
    model.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append((args[0].clone(), args[1].clone())), with_kwargs=True)
    real_randn_like = torch.randn_like
    for case in CASES:
        draws = []
        calls.clear()

        def recorded_randn_like(x, *args, draws=draws, **kwargs):
            draws.append(real_randn_like(x, *args, **kwargs))
            return draws[-1]

        cond = [{"prompt": p, "seconds_total": seconds} for p in PROMPTS]
        neg = [{"prompt": p, "seconds_total": seconds} for p in case["negative"]] if "negative" in case else None
        extra = {k: tuple(case[k]) if k == "cfg_interval" else case[k] for k in ("cfg_interval", "scale_phi")
                 if k in case}
        strength = case.get("strength", 1.0)
        init = (model.sample_rate, init_audio) if strength < 1 else None
        torch.manual_seed(case["seed"])
        noise = torch.randn(2, 8, sample_size // model.pretransform.downsampling_ratio)  # what it draws first
        torch.randn_like = recorded_randn_like
        try:
            with torch.no_grad():
                latents = generate_diffusion_cond(
                    model, steps=case["steps"], cfg_scale=case["cfg_scale"], conditioning=cond,
                    negative_conditioning=neg, batch_size=2, sample_size=sample_size, seed=case["seed"],
                    device="cpu", sampler_type=case["sampler"], init_audio=init, init_noise_level=strength,
                    return_latents=True, **extra)
                audio = model.pretransform.decode(latents)
        finally:
            torch.randn_like = real_randn_like
        k = case["name"]
        tensors[f"{k}.noise"] = noise
        if strength < 1:  # the init audio is encoded once, its posterior drawn at batch 1, then repeated
            tensors[f"{k}.posterior_noise"] = draws.pop(0)  # (1, C, T)
        if draws:
            tensors[f"{k}.step_noise"] = torch.stack(draws)  # (steps, B, C, T): ping-pong's re-noising
        tensors[f"{k}.xs"] = torch.stack([x for x, _ in calls])  # (steps, B, C, T): the state at each call
        tensors[f"{k}.ts"] = torch.stack([t[0] for _, t in calls])  # (steps,)
        tensors[f"{k}.latents"] = latents
        tensors[f"{k}.audio"] = audio
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{out}/sat_tiny_sampling.safetensors")
    with open(f"{out}/sat_tiny_sampling.json", "w") as f:
        json.dump({"prompts": PROMPTS, "seconds_total": seconds, "t5": T5_ARCH, "cases": CASES}, f, indent=1)
    print("wrote", len(CASES), "sampling cases")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden")
