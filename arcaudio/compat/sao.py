"""stable-audio-tools (Stable Audio Open) compatibility: model_config.json <-> ModelConfig, and key names.

Leaf parameter names are identical in both projects; only three top-level prefixes differ. Weight-norm parameters
are accepted in both forms torch has written (`weight_g`/`weight_v` and
`parametrizations.weight.original0`/`original1`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..config import (
    AutoencoderConfig,
    ConditioningConfig,
    DiTConfig,
    ModelConfig,
    NumberConditionerConfig,
    PromptConditionerConfig,
)

# (stable-audio-tools prefix, arcaudio prefix)
PREFIXES = [
    ("model.model.", "dit."),
    ("pretransform.model.", "autoencoder."),
    ("conditioner.conditioners.", "conditioners."),
]

_WEIGHT_NORM_FORMS = [(".parametrizations.weight.original0", ".weight_g"),
                      (".parametrizations.weight.original1", ".weight_v")]


def _rename(key: str, table: list[tuple[str, str]]) -> str | None:
    for src, dst in table:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def _weight_norm_key(key: str) -> str:
    """`parametrizations.weight.original0/1` (new torch weight_norm) renamed to `weight_g`/`weight_v`."""
    for src, dst in _WEIGHT_NORM_FORMS:
        if key.endswith(src):
            return key[: -len(src)] + dst
    return key


def sao_key(key: str) -> str | None:
    """The arcaudio name of one stable-audio-tools state-dict key, None when it has no known prefix."""
    return _rename(_weight_norm_key(key), PREFIXES)


def sao_to_arcaudio(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a stable-audio-tools state dict to arcaudio names. Returns (mapped, keys with no known prefix)."""
    mapped, unknown = {}, []
    for key, value in state_dict.items():
        new = sao_key(key)
        if new is None:
            unknown.append(_weight_norm_key(key))
        else:
            mapped[new] = value
    return mapped, unknown


def arcaudio_to_sao(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an arcaudio state dict to stable-audio-tools names (weight_g / weight_v form)."""
    inverse = [(dst, src) for src, dst in PREFIXES]
    out = {}
    for key, value in state_dict.items():
        if key.startswith("conditioners.prompt."):
            raise ValueError("this model has a built-in text encoder (conditioning.prompt.arch or .words), which "
                             "stable-audio-tools cannot load; export it in arcaudio format instead")
        new = _rename(key, inverse)
        if new is None:
            raise ValueError(f"state-dict key {key!r} has no stable-audio-tools name")
        out[new] = value
    return out


def _require(value: Any, expected: Any, where: str, hint: str = "") -> None:
    if value != expected:
        raise ValueError(f"unsupported stable-audio-tools config: {where} is {value!r}, arcaudio supports "
                         f"{expected!r}" + (f" ({hint})" if hint else ""))


def _check_keys(section: dict, allowed: dict[str, Any], required: set[str], where: str) -> None:
    """Every key of `section` must be allowed; keys with a fixed value in `allowed` must hold it."""
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ValueError(f"unsupported stable-audio-tools config: unknown key(s) {unknown} in {where}; "
                         f"arcaudio understands {sorted(allowed)}")
    missing = sorted(required - set(section))
    if missing:
        raise ValueError(f"stable-audio-tools config: {where} lacks {missing}")
    for key, fixed in allowed.items():
        if fixed is not _ANY and key in section:
            _require(section[key], fixed, f"{where}.{key}")


_ANY = object()


def model_config_from_sao(sao: dict[str, Any]) -> ModelConfig:
    """Translate a stable-audio-tools `model_config.json` (dict) to a ModelConfig.

    Supports the Stable Audio Open Small family: a `diffusion_cond` rectified-flow DiT with an Oobleck VAE, a T5
    prompt and a `seconds_total` number conditioner. Anything else raises ValueError naming the unsupported value.
    """
    _require(sao.get("model_type"), "diffusion_cond", "model_type")
    model = sao.get("model", {})
    pre = model.get("pretransform", {})
    _require(pre.get("type"), "autoencoder", "model.pretransform.type")
    ae = pre.get("config", {})
    _require(ae.get("encoder", {}).get("type"), "oobleck", "model.pretransform.config.encoder.type")
    _require(ae.get("decoder", {}).get("type"), "oobleck", "model.pretransform.config.decoder.type")
    _require(ae.get("bottleneck", {}).get("type"), "vae", "model.pretransform.config.bottleneck.type")
    enc, dec = ae["encoder"].get("config", {}), ae["decoder"].get("config", {})
    for key in ("channels", "c_mults", "strides", "use_snake"):
        if enc.get(key) != dec.get(key):
            raise ValueError(f"unsupported stable-audio-tools config: encoder and decoder differ in {key!r} "
                             f"({enc.get(key)!r} vs {dec.get(key)!r})")
    _check_keys(enc, {"in_channels": _ANY, "channels": _ANY, "c_mults": _ANY, "strides": _ANY, "latent_dim": _ANY,
                      "use_snake": _ANY, "antialias_activation": False},
                {"channels", "c_mults", "strides", "latent_dim"}, "encoder.config")
    _check_keys(dec, {"out_channels": _ANY, "channels": _ANY, "c_mults": _ANY, "strides": _ANY, "latent_dim": _ANY,
                      "use_snake": _ANY, "final_tanh": _ANY, "antialias_activation": False,
                      "use_nearest_upsample": _ANY},
                {"channels", "c_mults", "strides", "latent_dim"}, "decoder.config")
    latent = dec["latent_dim"]
    _require(enc["latent_dim"], 2 * latent, "encoder.config.latent_dim", "twice the decoder latent_dim for a VAE")
    if "latent_dim" in ae:
        _require(ae["latent_dim"], latent, "pretransform.config.latent_dim")
    if "downsampling_ratio" in ae:
        _require(ae["downsampling_ratio"], math.prod(enc["strides"]), "pretransform.config.downsampling_ratio")
    audio_channels = sao.get("audio_channels", 2)
    autoencoder = AutoencoderConfig(
        io_channels=audio_channels, channels=enc["channels"], c_mults=list(enc["c_mults"]),
        strides=list(enc["strides"]), latent_dim=latent, use_snake=bool(enc.get("use_snake", False)),
        final_tanh=bool(dec.get("final_tanh", True)), latent_scale=float(pre.get("scale", 1.0)),
        use_nearest_upsample=bool(dec.get("use_nearest_upsample", False)))
    for key, value in (("in_channels", enc.get("in_channels", audio_channels)),
                       ("out_channels", dec.get("out_channels", audio_channels))):
        _require(value, audio_channels, f"{key} of the autoencoder", "must equal audio_channels")

    cond = model.get("conditioning", {})
    by_id = {c.get("id"): c for c in cond.get("configs", [])}
    if set(by_id) != {"prompt", "seconds_total"}:
        raise ValueError(f"unsupported stable-audio-tools config: conditioners {sorted(map(str, by_id))}; arcaudio "
                         "supports exactly 'prompt' (t5) and 'seconds_total' (number), as Stable Audio Open Small")
    _require(by_id["prompt"].get("type"), "t5", "conditioning 'prompt' type")
    _require(by_id["seconds_total"].get("type"), "number", "conditioning 'seconds_total' type")
    p_cfg, s_cfg = by_id["prompt"].get("config", {}), by_id["seconds_total"].get("config", {})
    _check_keys(p_cfg, {"t5_model_name": _ANY, "max_length": _ANY, "enable_grad": False, "project_out": False},
                set(), "prompt conditioner config")
    _check_keys(s_cfg, {"min_val": _ANY, "max_val": _ANY}, set(), "seconds_total conditioner config")
    conditioning = ConditioningConfig(
        cond_dim=cond["cond_dim"],
        prompt=PromptConditionerConfig(t5_model_name=p_cfg.get("t5_model_name", "t5-base"),
                                       max_length=p_cfg.get("max_length", 128)),
        seconds_total=NumberConditionerConfig(min_val=float(s_cfg.get("min_val", 0)),
                                              max_val=float(s_cfg.get("max_val", 1))))

    diff = model.get("diffusion", {})
    _require(diff.get("type"), "dit", "model.diffusion.type")
    objective = diff.get("diffusion_objective", diff.get("config", {}).get("diffusion_objective", "v"))
    if objective not in ("rectified_flow", "rf_denoiser"):
        raise ValueError(f"unsupported stable-audio-tools config: diffusion_objective {objective!r}; arcaudio "
                         "implements rectified-flow models ('rectified_flow', 'rf_denoiser'), not the 'v' objective "
                         "of Stable Audio Open 1.0")
    _require(diff.get("cross_attention_cond_ids"), ["prompt", "seconds_total"], "diffusion.cross_attention_cond_ids")
    _require(diff.get("global_cond_ids"), ["seconds_total"], "diffusion.global_cond_ids")
    for key in ("input_concat_ids", "prepend_cond_ids"):
        if diff.get(key):
            raise ValueError(f"unsupported stable-audio-tools config: diffusion.{key} {diff[key]!r} (must be empty)")
    d = diff.get("config", {})
    _check_keys(d, {"io_channels": _ANY, "embed_dim": _ANY, "depth": _ANY, "num_heads": _ANY,
                    "cond_token_dim": _ANY, "global_cond_dim": _ANY, "attn_kwargs": _ANY,
                    "transformer_type": "continuous_transformer", "global_cond_type": "prepend",
                    "timestep_cond_type": "global", "patch_size": 1, "project_cond_tokens": True,
                    "project_global_cond": True, "input_concat_dim": 0, "prepend_cond_dim": 0,
                    "diffusion_objective": _ANY},
                {"io_channels", "embed_dim", "depth", "num_heads"}, "diffusion.config")
    attn = dict(d.get("attn_kwargs") or {})
    qk_norm = attn.pop("qk_norm", "none")
    if attn:
        raise ValueError(f"unsupported stable-audio-tools config: diffusion.config.attn_kwargs {sorted(attn)}")
    dit = DiTConfig(io_channels=d["io_channels"], embed_dim=d["embed_dim"], depth=d["depth"],
                    num_heads=d["num_heads"], cond_token_dim=d.get("cond_token_dim", conditioning.cond_dim),
                    global_cond_dim=d.get("global_cond_dim", conditioning.cond_dim), qk_norm=qk_norm)
    return ModelConfig(sample_rate=sao["sample_rate"], sample_size=sao["sample_size"], objective=objective,
                       autoencoder=autoencoder, conditioning=conditioning, dit=dit).validate()


def model_config_to_sao(config: ModelConfig) -> dict[str, Any]:
    """The stable-audio-tools `model_config.json` (dict) of a ModelConfig."""
    if config.conditioning.prompt.builtin:
        raise ValueError("a model with a built-in text encoder (conditioning.prompt.arch or .words) has no "
                         "stable-audio-tools config; stable-audio-tools loads T5 by name")
    if config.autoencoder.type != "oobleck":
        raise ValueError(f"autoencoder.type {config.autoencoder.type!r} has no stable-audio-tools equivalent "
                         "(only 'oobleck' does)")
    if config.conditioning.pooled_prompt_in_global:
        raise ValueError("conditioning.pooled_prompt_in_global has no stable-audio-tools equivalent")
    ae, dit, cond = config.autoencoder, config.dit, config.conditioning
    shared = {"channels": ae.channels, "c_mults": list(ae.c_mults), "strides": list(ae.strides),
              "use_snake": ae.use_snake}
    pretransform = {"type": "autoencoder", "iterate_batch": False, "model_half": False, "config": {
        "encoder": {"type": "oobleck", "requires_grad": False,
                    "config": {"in_channels": ae.io_channels, **shared, "latent_dim": 2 * ae.latent_dim}},
        "decoder": {"type": "oobleck", "config": {"out_channels": ae.io_channels, **shared,
                                                  "latent_dim": ae.latent_dim, "final_tanh": ae.final_tanh,
                                                  "use_nearest_upsample": ae.use_nearest_upsample}},
        "bottleneck": {"type": "vae"}, "latent_dim": ae.latent_dim,
        "downsampling_ratio": ae.downsampling_ratio, "io_channels": ae.io_channels}}
    if ae.latent_scale != 1.0:
        pretransform["scale"] = ae.latent_scale
    return {
        "model_type": "diffusion_cond", "sample_size": config.sample_size, "sample_rate": config.sample_rate,
        "audio_channels": ae.io_channels,
        "model": {
            "pretransform": pretransform,
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": cond.prompt.t5_model_name,
                                                          "max_length": cond.prompt.max_length}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": cond.seconds_total.min_val,
                                                                     "max_val": cond.seconds_total.max_val}}],
                "cond_dim": cond.cond_dim},
            "diffusion": {"diffusion_objective": config.objective,
                          "cross_attention_cond_ids": ["prompt", "seconds_total"],
                          "global_cond_ids": ["seconds_total"], "type": "dit",
                          "config": {"io_channels": dit.io_channels, "embed_dim": dit.embed_dim, "depth": dit.depth,
                                     "num_heads": dit.num_heads, "cond_token_dim": dit.cond_token_dim,
                                     "global_cond_dim": dit.global_cond_dim,
                                     "transformer_type": "continuous_transformer",
                                     "attn_kwargs": {"qk_norm": dit.qk_norm}}},
            "io_channels": dit.io_channels},
    }
