"""Model configuration: dataclasses are the schema, presets live in code, JSON is the serialization.

`from_dict` is strict: an unknown key raises and lists the valid ones, a value of the wrong type raises and names
the field. Field names reuse stable-audio-tools' (`io_channels`, `embed_dim`, `depth`, ...) where they exist.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


class JsonConfig:
    """Strict JSON (de)serialisation for a top-level config dataclass that has a `validate()` returning self."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return from_dict(cls, data).validate()

    @classmethod
    def from_json(cls, text_or_path: str | Path):
        """From a JSON string or the path of a JSON file."""
        text = str(text_or_path)
        return cls.from_dict(json.loads(text if text.lstrip().startswith("{") else Path(text).read_text()))


AUTOENCODER_TYPES = ("oobleck", "spectral", "partials", "harmonic")
VOICE_F0_LAYOUTS = ("absolute", "interval")  # the harmonic codec's f0 channels (AutoencoderConfig.voice_f0)
SPECTRAL_PHASES = ("learned", "peak-locked")


@dataclass
class AutoencoderConfig:
    """A VAE: stereo waveform <-> latents at sample_rate / downsampling_ratio frames per second.

    type "oobleck" (Stable Audio's): convolutions on the waveform, downsampling_ratio = prod(strides).
    type "spectral" (arcaudio's, for small models trained on a CPU; see models/spectral_autoencoder.py):
    convolutions on STFT frames of hop_length samples, downsampling_ratio = hop_length * prod(strides).
    """

    type: str = "oobleck"
    io_channels: int = 2  # audio channels in and out
    channels: int = 128  # base width; block i has channels * c_mults[i]
    c_mults: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    strides: list[int] = field(default_factory=lambda: [2, 4, 4, 8, 8])  # time downsampling of each block
    latent_dim: int = 64  # latent channels; the encoder emits 2 * latent_dim (mean | scale)
    use_snake: bool = True  # oobleck: SnakeBeta activations (False: ELU)
    final_tanh: bool = False  # oobleck: tanh on the decoder output
    use_nearest_upsample: bool = False  # oobleck: upsample by nearest neighbour + conv, not a transposed conv
    n_fft: int = 2048  # spectral: STFT size (Hann window)
    hop_length: int = 512  # spectral: STFT hop, samples per frame
    # spectral: how the decoder phases its magnitudes: "learned" (a predicted advance per bin and frame; smears
    # partials into sidebands) or "peak-locked" (derived from the magnitudes; see models/spectral_phase.py)
    phase: str = "learned"
    in_kernel: int = 3  # spectral: the encoder's first convolution, in frames (1: per frame; fewer weights)
    # partials (arcaudio's codec with no learned weights; see models/partials_autoencoder.py): spectral peaks per
    # frame, noise bands, and the audio's sample rate (to read frequencies); latent_dim = 2 * partials + bands + 1
    # + envelope_blocks
    partials: int = 16
    noise_bands: int = 7
    envelope_blocks: int = 4  # partials: blocks per hop of the fine level envelope
    # harmonic (the partials codec with its peaks grouped into voices; see models/harmonic_autoencoder.py): voices
    # per frame, each an f0 and `harmonics` levels; latent_dim = voices * (1 + harmonics) + bands + 1 +
    # envelope_blocks
    voices: int = 3
    harmonics: int = 16
    # harmonic: how the voices' f0 channels hold pitch: "absolute" (each log2(f0 / 440 Hz) / 2) or "interval"
    # (voice 1 log2(f0 / 440 Hz), each later voice its compressed interval in semitones above the previous one, so
    # that a chord's quality is one channel whatever its root, at 0.26 units per semitone)
    voice_f0: str = "absolute"
    sample_rate: int = 44100
    latent_scale: float = 1.0  # latents seen by the DiT = autoencoder latents / latent_scale

    @property
    def downsampling_ratio(self) -> int:
        frames = math.prod(self.strides)
        return frames * self.hop_length if self.type in ("spectral", "partials", "harmonic") else frames

    def validate(self) -> None:
        if self.type not in AUTOENCODER_TYPES:
            raise ValueError(f"autoencoder.type {self.type!r} is not one of {AUTOENCODER_TYPES}")
        if len(self.c_mults) != len(self.strides):
            raise ValueError(f"autoencoder.c_mults {self.c_mults} and autoencoder.strides {self.strides} "
                             "must have the same length")
        if any(s < 1 for s in self.strides) or any(m < 1 for m in self.c_mults):
            raise ValueError(f"autoencoder strides {self.strides} and c_mults {self.c_mults} must be >= 1")
        _positive("autoencoder", io_channels=self.io_channels, channels=self.channels, latent_dim=self.latent_dim,
                  latent_scale=self.latent_scale, n_fft=self.n_fft, hop_length=self.hop_length,
                  in_kernel=self.in_kernel)
        if self.type in ("partials", "harmonic"):
            _positive("autoencoder", partials=self.partials, noise_bands=self.noise_bands,
                      sample_rate=self.sample_rate, voices=self.voices, harmonics=self.harmonics)
            if self.type == "partials":
                want, formula = 2 * self.partials + self.noise_bands + 1 + self.envelope_blocks, "2 * partials"
            else:
                want = self.voices * (1 + self.harmonics) + self.noise_bands + 1 + self.envelope_blocks
                formula = "voices * (1 + harmonics)"
                if self.voice_f0 not in VOICE_F0_LAYOUTS:
                    raise ValueError(f"autoencoder.voice_f0 {self.voice_f0!r} is not one of {VOICE_F0_LAYOUTS}")
            if self.latent_dim != want:
                raise ValueError(f"autoencoder.latent_dim {self.latent_dim} must be {formula} + noise_bands + 1 + "
                                 f"envelope_blocks = {want} for the {self.type} codec")
            if self.hop_length % self.envelope_blocks:
                raise ValueError(f"autoencoder.hop_length {self.hop_length} must be a multiple of envelope_blocks "
                                 f"{self.envelope_blocks}")
            if self.strides != [1] or self.n_fft not in (2 * self.hop_length, 4 * self.hop_length):
                raise ValueError(f"the {self.type} codec has one latent frame per STFT frame at 50 or 75 % overlap: "
                                 f"autoencoder.strides must be [1] (got {self.strides}) and n_fft 2 or 4 times "
                                 f"hop_length (got {self.n_fft}, {self.hop_length})")
        if self.type == "spectral":
            if self.in_kernel % 2 == 0:
                raise ValueError(f"autoencoder.in_kernel {self.in_kernel} must be odd (a length-preserving "
                                 "convolution)")
            if self.phase not in SPECTRAL_PHASES:
                raise ValueError(f"autoencoder.phase {self.phase!r} is not one of {SPECTRAL_PHASES}")
            if any(s % 2 for s in self.strides):
                raise ValueError(f"autoencoder.strides {self.strides} must be even for a spectral autoencoder")
            if self.n_fft % self.hop_length or self.n_fft < 2 * self.hop_length:
                raise ValueError(f"autoencoder.n_fft {self.n_fft} must be a multiple of at least twice "
                                 f"autoencoder.hop_length {self.hop_length} (overlap-add needs overlap)")


@dataclass
class T5ArchConfig:
    """A small T5 encoder built here (random init, byte-level tokenizer), trained with the model, saved with it."""

    d_model: int = 768  # must equal conditioning.cond_dim
    d_kv: int = 64
    d_ff: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    vocab_size: int = 384  # ByT5: 3 special + 256 bytes + 125 sentinels


@dataclass
class WordEncoderConfig:
    """A learned embedding per hashed word (models/word_encoder.py), built here, trained with the model, saved with
    it: the text encoder of models trained from nothing (width conditioning.cond_dim)."""

    vocab_size: int = 4096  # 2 special ids + hashed word buckets
    init_std: float = 0.05  # small: a word never seen in training stays near zero, a prompt's unknown words fade


@dataclass
class PromptConditionerConfig:
    """The text prompt encoder: a frozen pre-trained T5 found locally, a small T5 described by `arch`, or a word
    embedding table described by `words`."""

    t5_model_name: str = "t5-base"  # local folder or Hugging Face cache name; ignored when arch or words is set
    max_length: int = 64  # tokens; shorter prompts are padded and the padded rows zeroed
    arch: T5ArchConfig | None = None  # set: build this encoder here, with a byte tokenizer; weights in checkpoint
    words: WordEncoderConfig | None = None  # set: build a word embedding table here; weights in checkpoint

    @property
    def builtin(self) -> bool:
        """Whether the text encoder is built here and saved with the model (not a pre-trained T5 found locally)."""
        return self.arch is not None or self.words is not None


@dataclass
class NumberConditionerConfig:
    """`seconds_total`: clamped to [min_val, max_val], normalised to [0, 1], learned Fourier features."""

    min_val: float = 0.0
    max_val: float = 256.0

    def validate(self, name: str) -> None:
        if not self.max_val > self.min_val:
            raise ValueError(f"conditioning.{name}: max_val {self.max_val} must exceed min_val {self.min_val}")


@dataclass
class ConditioningConfig:
    cond_dim: int = 768  # width of every conditioning token
    prompt: PromptConditionerConfig = field(default_factory=PromptConditionerConfig)
    seconds_total: NumberConditionerConfig = field(default_factory=NumberConditionerConfig)
    # Also feed the masked mean of the prompt tokens to the DiT's global token (then dit.global_cond_dim =
    # 2 * cond_dim): a direct path for the text that a DiT trained from scratch learns to use much sooner than
    # cross-attention alone. Not a stable-audio-tools option (SAO models keep it off).
    pooled_prompt_in_global: bool = False


@dataclass
class DiTConfig:
    """Diffusion Transformer: prepended global token, partial RoPE, QK LayerNorm, SwiGLU, cross-attention."""

    io_channels: int = 64  # latent channels in and out
    embed_dim: int = 1024
    depth: int = 16
    num_heads: int = 8  # head dim = embed_dim / num_heads; RoPE on max(head_dim // 2, 32) of its dims
    cond_token_dim: int = 768  # width of the cross-attention tokens (= conditioning.cond_dim)
    global_cond_dim: int = 768  # width of the global condition (the seconds embedding)
    qk_norm: Literal["ln", "none"] = "ln"  # LayerNorm on queries and keys per head
    ff_mult: int = 4  # SwiGLU hidden width = ff_mult * embed_dim

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def validate(self) -> None:
        _positive("dit", io_channels=self.io_channels, embed_dim=self.embed_dim, depth=self.depth,
                  num_heads=self.num_heads, cond_token_dim=self.cond_token_dim,
                  global_cond_dim=self.global_cond_dim, ff_mult=self.ff_mult)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"dit.embed_dim {self.embed_dim} is not divisible by dit.num_heads {self.num_heads}")
        if self.head_dim < 32 or self.head_dim % 2:
            raise ValueError(f"dit head dim {self.head_dim} (embed_dim / num_heads) must be even and >= 32, "
                             "since rotary embeddings cover max(head_dim // 2, 32) dims")
        if self.qk_norm not in ("ln", "none"):
            raise ValueError(f"dit.qk_norm {self.qk_norm!r} is not one of 'ln', 'none'")


@dataclass
class ModelConfig(JsonConfig):
    """A latent text-to-audio model: autoencoder + conditioners + DiT trained as a rectified flow."""

    sample_rate: int = 44100
    sample_size: int = 524288  # audio samples the DiT sees at once (256 latent frames for sao-small)
    objective: Literal["rectified_flow", "rf_denoiser"] = "rectified_flow"  # rf_denoiser: post-trained (ARC)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)

    @property
    def audio_channels(self) -> int:
        return self.autoencoder.io_channels

    @property
    def latent_length(self) -> int:
        return self.sample_size // self.autoencoder.downsampling_ratio

    @property
    def max_seconds(self) -> float:
        return self.sample_size / self.sample_rate

    def validate(self) -> ModelConfig:
        """Check cross-field consistency; returns self. Raises ValueError naming the bad value."""
        self.autoencoder.validate()
        self.dit.validate()
        self.conditioning.seconds_total.validate("seconds_total")
        _positive("model", sample_rate=self.sample_rate, sample_size=self.sample_size)
        if self.objective not in ("rectified_flow", "rf_denoiser"):
            raise ValueError(f"objective {self.objective!r} is not one of 'rectified_flow', 'rf_denoiser'")
        ratio = self.autoencoder.downsampling_ratio
        if self.sample_size % ratio:
            raise ValueError(f"sample_size {self.sample_size} is not a multiple of the autoencoder's "
                             f"downsampling ratio {ratio}")
        if self.dit.io_channels != self.autoencoder.latent_dim:
            raise ValueError(f"dit.io_channels {self.dit.io_channels} must equal autoencoder.latent_dim "
                             f"{self.autoencoder.latent_dim}")
        cond_dim = self.conditioning.cond_dim
        global_dim = 2 * cond_dim if self.conditioning.pooled_prompt_in_global else cond_dim
        if self.dit.cond_token_dim != cond_dim or self.dit.global_cond_dim != global_dim:
            raise ValueError(f"dit.cond_token_dim {self.dit.cond_token_dim} must equal conditioning.cond_dim "
                             f"{cond_dim} and dit.global_cond_dim {self.dit.global_cond_dim} must be {global_dim} "
                             f"(pooled_prompt_in_global={self.conditioning.pooled_prompt_in_global})")
        arch, words = self.conditioning.prompt.arch, self.conditioning.prompt.words
        if arch is not None and words is not None:
            raise ValueError("conditioning.prompt: set arch (a small T5) or words (a word embedding table), not both")
        if words is not None and (words.vocab_size < 3 or not words.init_std > 0):
            raise ValueError(f"conditioning.prompt.words: vocab_size must be >= 3 and init_std > 0, got "
                             f"{words.vocab_size} and {words.init_std}")
        if arch is not None and arch.d_model != cond_dim:
            raise ValueError(f"conditioning.prompt.arch.d_model {arch.d_model} must equal conditioning.cond_dim "
                             f"{cond_dim}")
        if self.conditioning.prompt.max_length < 1:
            raise ValueError(f"conditioning.prompt.max_length {self.conditioning.prompt.max_length} must be >= 1")
        return self



def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{section}.{name} must be > 0, got {value}")


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Strictly build dataclass `cls` from a dict: unknown keys and wrong types raise, naming the field."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where or 'config'}: unknown key(s) {unknown}; valid keys: {names}")
    kwargs = {name: _coerce(hints[name], data[name], f"{where}.{name}".lstrip(".")) for name in names if name in data}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {hint}")


def _sao_small() -> ModelConfig:
    return ModelConfig(objective="rf_denoiser")  # the defaults are Stable Audio Open Small


def _tiny() -> ModelConfig:
    """A CPU-sized model with the same structure (the architecture of the project's own trained models):
    2.97 s of stereo at 44.1 kHz as 64 latent frames of 32 channels, a byte-level T5 built in, the pooled prompt
    in the DiT's global token."""
    return ModelConfig(
        sample_rate=44100,
        sample_size=131072,
        objective="rectified_flow",
        autoencoder=AutoencoderConfig(channels=8, c_mults=[1, 2, 4, 8, 16], strides=[2, 4, 4, 8, 8], latent_dim=32),
        conditioning=ConditioningConfig(
            cond_dim=128,
            prompt=PromptConditionerConfig(
                t5_model_name="byt5-tiny", max_length=128,
                arch=T5ArchConfig(d_model=128, d_kv=32, d_ff=256, num_layers=3, num_heads=4),
            ),
            pooled_prompt_in_global=True,
        ),
        dit=DiTConfig(io_channels=32, embed_dim=128, depth=4, num_heads=2, cond_token_dim=128, global_cond_dim=256),
    )


def _tiny_spectral() -> ModelConfig:
    """`tiny` with the spectral autoencoder (STFT 2048 / hop 512, 4x frame downsampling: still 64 latent
    frames of 32 channels): the model the project trains from nothing on a CPU in minutes."""
    config = _tiny()
    config.autoencoder = AutoencoderConfig(type="spectral", channels=192, c_mults=[1, 1], strides=[2, 2],
                                           latent_dim=32, n_fft=2048, hop_length=512)
    return config


def _small_spectral() -> ModelConfig:
    """The built-in model's architecture: `tiny-spectral` with a finer spectral autoencoder (STFT 4096 / hop 1024,
    10.8 Hz bins, so that the notes of a low triad are separate peaks; 2x frame downsampling: still 64 latent frames
    of 32 channels) whose decoder derives its phase from the magnitudes (partials stay single sinusoids, onsets
    stay sharp: models/spectral_phase.py), a 4-layer byte-level T5 and a DiT of width 192 and depth 5. Sized to
    train in about two CPU hours and to ship, with its rectified-flow base's DiT, in under 50 MB."""
    config = _tiny_spectral()
    config.autoencoder = AutoencoderConfig(type="spectral", channels=192, c_mults=[1], strides=[2], latent_dim=32,
                                           n_fft=4096, hop_length=1024, phase="peak-locked", in_kernel=1)
    config.conditioning.prompt.arch = T5ArchConfig(d_model=128, d_kv=32, d_ff=384, num_layers=4, num_heads=4)
    config.dit = DiTConfig(io_channels=32, embed_dim=192, depth=5, num_heads=3, cond_token_dim=128,
                           global_cond_dim=256)
    return config


def _small_partials() -> ModelConfig:
    """The built-in model's architecture: the partials codec (no learned weights: 16 spectral peaks, 7 noise bands,
    the stereo balance and a 4-block fine envelope per 46 ms frame, STFT 8192 / hop 2048, so that the notes of a
    low triad are separate peaks; models/partials_autoencoder.py), a word-level text encoder and a DiT of width 192
    and depth 6 over its 44-channel latents (64 frames for 2.97 s). Sized to train in about two CPU hours and to
    ship, with its rectified-flow base's DiT, in under 50 MB. The text encoder is a table of hashed-word embeddings
    (models/word_encoder.py): with the byte-level T5 the DiT trained for 8000 steps and still ignored the prompt's
    words; with word tokens it follows them after a few hundred."""
    config = _small_spectral()
    config.conditioning.prompt = PromptConditionerConfig(max_length=32, words=WordEncoderConfig())
    config.autoencoder = AutoencoderConfig(type="partials", c_mults=[1], strides=[1], latent_dim=44, n_fft=8192,
                                           hop_length=2048, partials=16, noise_bands=7, envelope_blocks=4)
    config.dit.io_channels, config.dit.depth = 44, 6
    return config


def _small_harmonic() -> ModelConfig:
    """`small-partials` over the harmonic codec (models/harmonic_autoencoder.py): per 46 ms frame 3 voices, each
    an f0 and the levels of its first 16 harmonics, instead of 16 free peaks, so that the DiT generates a waveform
    as a pattern of levels and a chord as a root and two intervals; 63-channel latents."""
    config = _small_partials()
    config.autoencoder = AutoencoderConfig(type="harmonic", c_mults=[1], strides=[1], latent_dim=63, n_fft=8192,
                                           hop_length=2048, voices=3, harmonics=16, noise_bands=7,
                                           envelope_blocks=4, voice_f0="interval")
    config.dit.io_channels = 63
    return config


PRESETS = {"sao-small": _sao_small, "tiny": _tiny, "tiny-spectral": _tiny_spectral, "small-spectral": _small_spectral,
           "small-partials": _small_partials, "small-harmonic": _small_harmonic}


def preset(name: str) -> ModelConfig:
    """A fresh copy of a named preset config. Raises ValueError listing the presets for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name]().validate())
