"""Checkpoint I/O: strict state-dict checks, reading safetensors / torch files, and our own format.

Our format is one safetensors file whose metadata holds the model config as JSON (`arcaudio_config`), so weights
and config never drift apart. Every write goes to a temporary file in the target folder first and is then renamed
over the target, so an interrupted write never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .config import ModelConfig

CONFIG_KEY = "arcaudio_config"
# a file that stores only the tensors it does not share with another arcaudio file in the same folder (a
# post-trained model's base, which differs from it in the DiT only): that file's name and its sha256
BASE_KEY, BASE_SHA256_KEY = "arcaudio_base", "arcaudio_base_sha256"
TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class StateDictMismatchError(ValueError):
    """A state dict does not match the model: lists every missing, unexpected and mis-shaped key."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[tuple[str, tuple, tuple]],
                 source: str = "checkpoint"):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"{source} does not match the model: {len(missing)} missing, {len(unexpected)} unexpected, "
                 f"{len(mismatched)} mis-shaped key(s)"]
        lines += [f"  missing:     {k}" for k in missing]
        lines += [f"  unexpected:  {k}" for k in unexpected]
        lines += [f"  wrong shape: {k}: checkpoint {list(got)}, model expects {list(want)}"
                  for k, got, want in mismatched]
        super().__init__("\n".join(lines))


def check_state_dict(expected: Mapping[str, tuple[int, ...] | torch.Size], state_dict: Mapping[str, torch.Tensor],
                     source: str = "checkpoint") -> None:
    """Raise StateDictMismatchError unless `state_dict` has exactly the keys and shapes of `expected`."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted((k, tuple(state_dict[k].shape), tuple(expected[k])) for k in set(expected) & set(state_dict)
                        if tuple(state_dict[k].shape) != tuple(expected[k]))
    if missing or unexpected or mismatched:
        raise StateDictMismatchError(missing, unexpected, mismatched, source)


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str = "checkpoint") -> None:
    """Load with zero tolerance for missing, unexpected or mis-shaped keys. A model built on the meta device
    takes the checkpoint's tensors directly (no second copy), and its tied parameters (one Parameter under several
    names, such as a T5's `shared` and `encoder.embed_tokens`) stay tied: as in a load into a built model, the
    last of the names in state-dict order gives the value."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state_dict(expected, state_dict, source)
    on_meta = any(t.is_meta for t in model.state_dict().values())
    tied: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        tied.setdefault(id(param), []).append(name)
    model.load_state_dict(dict(state_dict), strict=True, assign=on_meta)
    if on_meta:  # assign=True gave every name its own tensor: tie them again
        for names in (n for n in tied.values() if len(n) > 1):
            keep = model.get_parameter(names[-1])
            for name in names[:-1]:
                owner, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(owner), leaf, keep)


# convert(key, tensor) -> the entries to keep for it: the tensor cast, quantised (more than one entry) or dropped
Convert = Callable[[str, torch.Tensor], Mapping[str, torch.Tensor]]


def read_state_dict(path: str | Path, convert: Convert | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata from a safetensors file or a torch file (`weights_only=True`; a nested
    `state_dict` entry, as in Lightning checkpoints, is unwrapped). Returns (state_dict, metadata).
    `convert` is applied to each tensor as it is read, so a cast or quantised model never has the whole file's
    tensors in memory at once (a torch file is memory-mapped where its format allows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with _readable_safetensors(path):
            if convert is not None:
                return _read_safetensors_converted(path, convert)
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    if path.suffix not in TORCH_SUFFIXES:
        raise ValueError(f"unknown checkpoint type {path.suffix!r} for {str(path)!r}; expected .safetensors or one of "
                         f"{list(TORCH_SUFFIXES)}")
    try:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors come in many types
        raise ValueError(f"could not read {str(path)!r} as a torch checkpoint with weights_only=True: {err}") from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{str(path)!r} holds no state dict of tensors")
    if convert is None:
        return dict(obj), {}
    state = {}
    for key in list(obj):
        state.update(convert(key, obj.pop(key)))
    return state, {}


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool}


def _read_safetensors_converted(path: Path, convert: Convert) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file read tensor by tensor with plain reads into fresh memory, each converted and released
    before the next (safe_open memory-maps the file, and every page a conversion touches would stay resident:
    converting Stable Audio Open Small's 2 GB file that way peaked at 2.5 GB of RSS)."""
    state: dict[str, torch.Tensor] = {}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        meta = header.pop("__metadata__", None) or {}
        start = 8 + size
        for key, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            if entry["dtype"] not in _SAFETENSORS_DTYPES:
                raise ValueError(f"{str(path)!r}: tensor {key!r} has dtype {entry['dtype']!r}, which arcaudio does "
                                 f"not read ({sorted(_SAFETENSORS_DTYPES)})")
            begin, end = entry["data_offsets"]
            raw = torch.empty(end - begin, dtype=torch.uint8)
            f.seek(start + begin)
            if f.readinto(raw.numpy()) != end - begin:
                raise ValueError(f"{str(path)!r} is truncated: tensor {key!r} runs past the end of the file")
            tensor = raw.view(_SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
            state.update(convert(key, tensor))
            del raw, tensor
    return state, dict(meta)


def read_config(path: str | Path) -> ModelConfig | None:
    """The ModelConfig stored in an arcaudio safetensors file's metadata, or None if it has none."""
    from safetensors import safe_open

    with _readable_safetensors(path), safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return ModelConfig.from_json(meta[CONFIG_KEY]) if CONFIG_KEY in meta else None


@contextlib.contextmanager
def _readable_safetensors(path: str | Path):
    """Turn a damaged or non-safetensors file's low-level error into a ValueError that names the file."""
    from safetensors import SafetensorError

    try:
        yield
    except (SafetensorError, json.JSONDecodeError, struct.error, UnicodeDecodeError) as err:
        raise ValueError(f"{str(path)!r} is not a readable safetensors file (damaged or truncated?): {err}") from err


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _untied(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies, with tensors that share storage (tied embeddings) cloned apart for safetensors."""
    out, seen = {}, set()
    for key, value in state_dict.items():
        value = value.detach().to("cpu").contiguous()
        ptr = (value.untyped_storage().data_ptr(), value.storage_offset())
        out[key] = value.clone() if ptr in seen else value
        seen.add(ptr)
    return out


def save_safetensors(path: str | Path, state_dict: Mapping[str, torch.Tensor],
                     metadata: dict[str, str] | None = None) -> Path:
    """Atomically write tensors (and string metadata) to a safetensors file."""
    from safetensors.torch import save_file

    tensors = _untied(state_dict)

    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata=metadata)
        _canonicalise_header(tmp)

    return atomic_write(path, write)


def _canonicalise_header(path: str) -> None:
    """Rewrite a safetensors file's JSON header with sorted keys, so that equal tensors and metadata give equal
    bytes (the writer's key order varies from run to run). The tensor data is left as it is."""
    import struct

    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        canonical += b" " * (-len(canonical) % 8)  # the data must stay 8-byte aligned
        tmp = path + ".h"
        with open(tmp, "wb") as out:
            out.write(struct.pack("<Q", len(canonical)) + canonical)
            while chunk := f.read(1 << 24):
                out.write(chunk)
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: nn.Module, path: str | Path, base: str | Path | None = None) -> Path:
    """Save a TextToAudioModel in arcaudio format: safetensors with the config in its metadata.

    With `base` (an arcaudio file in the same folder as `path`), only the tensors that differ from the base's are
    written, with the base's name and sha256 in the metadata; `read_model_state` puts the two back together."""
    config: ModelConfig = model.config
    meta = {"format": "pt", CONFIG_KEY: config.to_json(), "arcaudio_version": __version__}
    state = model.state_dict()
    if base is not None:
        base = Path(base)
        if base.resolve().parent != Path(path).resolve().parent:
            raise ValueError(f"the base {str(base)!r} must be in the same folder as {str(path)!r}")
        shared, _ = read_state_dict(base)
        state = {k: v for k, v in state.items()
                 if k not in shared or shared[k].shape != v.shape or shared[k].dtype != v.dtype
                 or not torch.equal(shared[k], v.detach().cpu())}
        meta.update({BASE_KEY: base.name, BASE_SHA256_KEY: file_sha256(base)})
    return save_safetensors(path, state, meta)


def read_model_state(path: str | Path, convert: Convert | None = None) -> tuple[dict[str, torch.Tensor],
                                                                                dict[str, str]]:
    """`read_state_dict`, with the tensors of a shared-weights file's base (see `save_model`) filled in. Raises
    FileNotFoundError / ValueError when the base is missing or is not the file the weights were saved against."""
    path = Path(path)
    state, meta = read_state_dict(path, convert)
    if BASE_KEY not in meta:
        return state, meta
    base = path.parent / meta[BASE_KEY]
    if Path(meta[BASE_KEY]).name != meta[BASE_KEY]:
        raise ValueError(f"{str(path)!r} names a base outside its folder: {meta[BASE_KEY]!r}")
    if not base.is_file():
        raise FileNotFoundError(f"{str(path)!r} stores only the tensors it does not share with {meta[BASE_KEY]!r}, "
                                f"which is missing from {str(path.parent)!r}")
    if file_sha256(base) != meta.get(BASE_SHA256_KEY):
        raise ValueError(f"{str(base)!r} is not the file {str(path)!r} was saved against (sha256 differs): "
                         "re-save it against the current base")
    own = set(state)
    merged, _ = read_state_dict(base, None if convert is None else
                                lambda key, tensor: {} if key in own else convert(key, tensor))
    merged.update(state)
    return merged, meta


def save_sao(model: nn.Module, out_dir: str | Path) -> Path:
    """Write `model_config.json` + `model.safetensors` in stable-audio-tools key names into out_dir."""
    from .compat.sao import arcaudio_to_sao, model_config_to_sao

    out_dir = Path(out_dir)
    sao_config = model_config_to_sao(model.config)
    state = arcaudio_to_sao(model.state_dict())
    save_safetensors(out_dir / "model.safetensors", state, {"format": "pt"})
    text = json.dumps(sao_config, indent=2)
    atomic_write(out_dir / "model_config.json", lambda tmp: Path(tmp).write_text(text))
    return out_dir
