"""Tar shards in the WebDataset layout (the format stable-audio-tools streams): writing them from a manifest of
audio or from pre-encoded latents (`arcaudio pack`), and reading their samples back from any byte stream.

A sample is the run of consecutive tar members that share a key (the member name up to the first dot of its file
name): `000000042.flac` + `000000042.json`, or `000000042.latents.npy` + `000000042.json`. The json holds the caption
(`caption`, or `prompt` / `text` in shards written elsewhere), `seconds_total` for latents, and any other metadata
(e.g. `attributes`, `seconds_start`). Audio members keep their file's bytes and format (flac, wav, ogg, mp3, opus).

`arcaudio pack` writes OUT/shard-000000.tar, ... and OUT/shards.json (kind, settings, per-shard counts). Tars are
deterministic (sorted members, zero times and owners), written atomically one by one; a killed pack resumes
where it stopped and writes the same bytes.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..checkpoint import atomic_write

AUDIO_EXTENSIONS = ("flac", "wav", "ogg", "mp3", "opus")
LATENTS_EXTENSION = "latents.npy"
INDEX_NAME = "shards.json"
CAPTION_KEYS = ("caption", "prompt", "text")


def shard_file(k: int) -> str:
    return f"shard-{k:06d}.tar"


def write_tar_shard(path: str | Path, samples: Iterable[tuple[str, dict[str, bytes]]]) -> int:
    """Write samples (key, {extension: bytes}) to one tar, atomically and byte-reproducibly; returns the count."""
    count = 0

    def write(tmp: str) -> None:
        nonlocal count
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, members in samples:
                for ext in sorted(members):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mode, info.mtime = len(members[ext]), 0o644, 0
                    tar.addfile(info, io.BytesIO(members[ext]))
                count += 1

    atomic_write(Path(path), write)
    return count


def read_tar_samples(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of a tar read as a stream (no seeking): (key, {extension: bytes}) in the order written."""
    key, members = None, {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            folder, _, name = info.name.rpartition("/")
            stem, dot, ext = name.partition(".")
            if not dot:
                continue  # a member without an extension belongs to no sample
            this = f"{folder}/{stem}" if folder else stem
            if this != key and members:
                yield key, members
                members = {}
            key = this
            members[ext] = tar.extractfile(info).read()
    if members:
        yield key, members


def sample_caption(meta: dict[str, Any], key: str) -> str:
    for name in CAPTION_KEYS:
        if isinstance(meta.get(name), str) and meta[name].strip():
            return meta[name].strip()
    raise ValueError(f"sample {key!r} has no caption: its json needs one of {list(CAPTION_KEYS)}")


def _json_bytes(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, ensure_ascii=False, sort_keys=True).encode()


def _pack(out_dir: Path, kind: str, settings: dict[str, Any], n: int, shard_size: int,
          sample: Callable[[int], tuple[str, dict[str, bytes]]],
          progress: Callable[[int], None] | None) -> Path:
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / INDEX_NAME
    settings = {"kind": kind, "shard_size": shard_size, "num_sources": n, **settings}
    if index_path.is_file():
        stored = json.loads(index_path.read_text()).get("settings")
        if stored != settings:
            raise ValueError(f"{str(out_dir)!r} holds shards packed with other settings ({stored} against "
                             f"{settings}); choose another folder or delete it")
    else:  # settings first: a resumed pack checks them before reusing any tar
        text = json.dumps({"settings": settings, "complete": False}, indent=1)
        atomic_write(index_path, lambda tmp: Path(tmp).write_text(text))
    shards = []
    for k in range(-(-n // shard_size)):
        lo, hi = k * shard_size, min(n, (k + 1) * shard_size)
        path = out_dir / shard_file(k)
        if path.is_file():  # written whole (atomically) by an earlier run with these settings
            with open(path, "rb") as f:
                count = sum(1 for _ in read_tar_samples(f))
        else:
            count = write_tar_shard(path, (sample(i) for i in range(lo, hi)))
        shards.append({"name": shard_file(k), "count": count})
        if progress is not None:
            progress(hi - lo)
    index = {"settings": settings, "complete": True, "kind": kind, "num_items": sum(s["count"] for s in shards),
             "shards": shards}
    text = json.dumps(index, indent=1)
    atomic_write(index_path, lambda tmp: Path(tmp).write_text(text))
    return out_dir


def pack_manifest(manifest: str | Path, out_dir: str | Path, shard_size: int = 1000,
                  progress: Callable[[int], None] | None = None) -> Path:
    """Pack a manifest's audio files (their bytes, as they are) with their manifest fields as json. Files that
    cannot be read or have an unknown suffix are refused before anything is written."""
    from .manifest import read_manifest

    entries = read_manifest(manifest)
    for entry in entries:
        ext = Path(entry["path"]).suffix.lower().lstrip(".")
        if ext not in AUDIO_EXTENSIONS:
            raise ValueError(f"{entry['path']!r}: cannot pack a {ext or 'suffix-less'} file; audio shards hold "
                             f"{list(AUDIO_EXTENSIONS)}")
        if not Path(entry["path"]).is_file():
            raise FileNotFoundError(f"{entry['path']!r} (in {str(manifest)!r}) does not exist")

    def sample(i: int) -> tuple[str, dict[str, bytes]]:
        entry = entries[i]
        meta = {k: v for k, v in entry.items() if k != "path"}
        meta["source"] = Path(entry["path"]).name
        ext = Path(entry["path"]).suffix.lower().lstrip(".")
        return f"{i:09d}", {ext: Path(entry["path"]).read_bytes(), "json": _json_bytes(meta)}

    settings = {"manifest": str(Path(manifest).resolve())}
    return _pack(Path(out_dir), "audio", settings, len(entries), shard_size, sample, progress)


def pack_latents(latents_dir: str | Path, out_dir: str | Path, shard_size: int = 1000,
                 progress: Callable[[int], None] | None = None) -> Path:
    """Pack a folder written by `arcaudio encode`: each clip's latents (C, T) float32 as .npy, with its caption,
    seconds_total, source path and metadata as json."""
    from .latents import LatentDataset

    data = LatentDataset(latents_dir)

    def sample(i: int) -> tuple[str, dict[str, bytes]]:
        buf = io.BytesIO()
        np.save(buf, data.latents[i].numpy(), allow_pickle=False)
        meta = {**data.metadata[i], "caption": data.captions[i], "seconds_total": float(data.seconds_total[i]),
                "source": data.paths[i]}
        return f"{i:09d}", {LATENTS_EXTENSION: buf.getvalue(), "json": _json_bytes(meta)}

    settings = {"latents": str(Path(latents_dir).resolve()), "fingerprint": data.index["fingerprint"],
                "latent_shape": list(data.latent_shape)}
    return _pack(Path(out_dir), "latents", settings, len(data), shard_size, sample, progress)
