"""Pre-encoding a dataset to autoencoder latents (`encode_dataset`) and reading them back (`LatentDataset`).

Folder layout written by `encode_dataset`:

    shard-00000.safetensors  latents (N, latent_dim, frames) float32, seconds_total (N,) float32
    shard-00000.json         captions, paths, other per-item metadata, dataset indices, skipped files, settings
    ...
    index.json               shard list, counts, latent shape, skipped files, settings (written last)

Shard k holds the windows of manifest entries [k * shard_size, (k + 1) * shard_size) whose files are usable (one
per file by default, or N, or all of them: `windows`), each with its `seconds_start`; a bad file yields no latents
(it is listed under `skipped`). Under torchrun each process writes its share of the shards and rank 0 the index.
Every file is written atomically, the json after its safetensors, so a shard is complete when both exist. A killed
run resumes where it stopped and writes identical files; it refuses a folder whose shards were made with another
autoencoder (by fingerprint), dataset or settings. The encoder's batches are fixed per shard (a shard's windows in
order, `batch_size` at a time), so a shard is the same bytes whichever process writes it; a different batch_size
changes latents only by the convolutions' rounding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..checkpoint import atomic_write, save_safetensors
from .dataset import CORE_FIELDS

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_NAME = "index.json"


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def autoencoder_fingerprint(autoencoder: nn.Module) -> str:
    """A short hash of the autoencoder's config, parameter names, shapes, dtypes and 16 sampled values of each
    tensor. The same on every device; changes when any weight tensor is retrained, reshaped or cast."""
    h = hashlib.sha256()
    config = getattr(autoencoder, "config", None)
    h.update((json.dumps(dataclasses.asdict(config), sort_keys=True) if dataclasses.is_dataclass(config)
              else type(autoencoder).__name__).encode())
    for name, tensor in sorted(autoencoder.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        h.update(f"{name}:{list(tensor.shape)}:{tensor.dtype}".encode())
        if flat.numel():
            idx = torch.linspace(0, flat.numel() - 1, min(16, flat.numel())).round().long().to(flat.device)
            h.update(flat[idx].to("cpu", torch.float64).numpy().tobytes())
    return h.hexdigest()[:20]


def _entries_fingerprint(dataset: Any) -> str | None:
    entries = getattr(dataset, "entries", None)
    if entries is None:
        return None
    text = json.dumps([[e["path"], e["caption"]] for e in entries], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def completed_shards(out_dir: str | Path) -> list[int]:
    """Indices of the shards in `out_dir` whose safetensors and json files both exist."""
    out_dir = Path(out_dir)
    done = []
    for meta in sorted(out_dir.glob("shard-*.json")):
        stem = meta.stem
        if stem[6:].isdigit() and (out_dir / f"{stem}.safetensors").is_file():
            done.append(int(stem[6:]))
    return done


def _check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse a folder holding shards or an index made with different settings."""
    for path in [out_dir / INDEX_NAME, *sorted(out_dir.glob("shard-*.json"))]:
        if not path.is_file():
            continue
        try:
            stored = json.loads(path.read_text())["settings"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{str(path)!r} is not a latent shard description ({err}); use an empty folder") from err
        diff = [k for k in sorted(set(settings) | set(stored)) if settings.get(k) != stored.get(k)]
        if diff:
            detail = ", ".join(f"{k}: stored {stored.get(k)!r}, now {settings.get(k)!r}" for k in diff)
            raise ValueError(f"{str(out_dir)!r} holds latents made with different settings ({detail}); refusing to "
                             "resume into it: choose another folder or delete it")


def encode_dataset(autoencoder: nn.Module, dataset: Dataset, out_dir: str | Path, shard_size: int = 256,
                   batch_size: int = 8, device: str | torch.device = "cpu", sample: bool = False,
                   progress: Callable[[int], None] | None = None, model_id: str | None = None,
                   seed: int = 0, windows: int | None = 1, hop: int | None = None, rank: int = 0,
                   world_size: int = 1) -> Path:
    """Encode the windows of every file of an AudioDataset to latents, in resumable shards (see the module
    docstring).

    Args:
        autoencoder: an AudioAutoencoder; it is moved to `device`. Latents are `autoencoder.encode(audio,
            sample=sample)` (B, latent_dim, frames), stored as float32.
        dataset: an AudioDataset (its `window_offsets` and `clip` are used; random_crop does not apply).
        out_dir: the output folder (created if needed; an existing one is resumed).
        shard_size: manifest entries (files) per shard; a shard holds every window of its files.
        batch_size: clips per encoder call.
        sample: store posterior samples (drawn from a generator seeded by (seed, shard)) instead of means.
        progress: called with the number of manifest entries just processed (e.g. `tqdm.update`).
        model_id: a name of the model, stored for information (the fingerprint is what is checked).
        windows: windows per file: 1 (its beginning, the default), N (evenly spread), or None (every window, so a
            long recording contributes all of its audio). Each clip's metadata holds `seconds_start`.
        hop: samples between window starts (default: the dataset's sample_size, windows side by side).
        rank, world_size: under torchrun, process `rank` encodes shards rank, rank + world_size, ...; every process
            then waits for the others (a barrier of the default process group) and rank 0 writes index.json. A
            shard is the same bytes whichever process writes it.

    Returns:
        out_dir, with `index.json` written last.
    """
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be >= 1, got {shard_size} and {batch_size}")
    if windows is not None and (isinstance(windows, bool) or not isinstance(windows, int) or windows < 1):
        raise ValueError(f"windows must be a positive number of windows per file or None (all), got {windows!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    out_dir = Path(out_dir)
    n = len(dataset)
    config = autoencoder.config
    channels, sample_size = getattr(dataset, "channels", None), getattr(dataset, "sample_size", None)
    if channels is not None and channels != config.io_channels:
        raise ValueError(f"the dataset yields {channels}-channel audio but the autoencoder takes {config.io_channels}")
    if sample_size is not None and sample_size % autoencoder.downsampling_ratio:
        raise ValueError(f"the dataset's sample_size {sample_size} is not a multiple of the autoencoder's "
                         f"downsampling ratio {autoencoder.downsampling_ratio}")
    settings = {
        "format_version": FORMAT_VERSION, "fingerprint": autoencoder_fingerprint(autoencoder),
        "dataset_items": n, "dataset_entries": _entries_fingerprint(dataset), "shard_size": shard_size,
        "sample": bool(sample), "sample_seed": seed if sample else None,
        "sample_batch_size": batch_size if sample else None,  # noise is drawn per batch
        "windows": "all" if windows is None else windows, "hop": hop,
        **{k: getattr(dataset, k, None) for k in ("sample_rate", "sample_size", "channels", "min_samples")},
    }
    _check_settings(out_dir, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    autoencoder.to(device)
    num_shards = -(-n // shard_size)
    done = set(completed_shards(out_dir))
    for k in range(rank, num_shards, world_size):
        start, stop = k * shard_size, min(n, (k + 1) * shard_size)
        if k in done:
            logger.debug("reusing %s", shard_name(k))
            if progress is not None:
                progress(stop - start)
        else:
            _encode_shard(autoencoder, dataset, out_dir, k, start, stop, batch_size, device, sample, seed, windows,
                          hop, settings, progress)
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()
        if rank != 0:
            return out_dir
    shards, skipped = [], {}
    for k in range(num_shards):
        meta = json.loads((out_dir / f"{shard_name(k)}.json").read_text())
        shards.append({"name": shard_name(k), "start": meta["start"], "stop": meta["stop"], "count": meta["count"]})
        skipped.update(dict.fromkeys(meta["skipped"]))
    frames = sample_size // autoencoder.downsampling_ratio if sample_size else None
    index = {"format_version": FORMAT_VERSION, "fingerprint": settings["fingerprint"], "model_id": model_id,
             "manifest": getattr(dataset, "manifest_path", None), "num_items": sum(s["count"] for s in shards),
             "num_dataset_items": n, "latent_shape": [config.latent_dim, frames], "num_shards": num_shards,
             "shards": shards, "skipped_count": len(skipped), "skipped": list(skipped), "settings": settings}
    text = json.dumps(index, indent=1, ensure_ascii=False)
    atomic_write(out_dir / INDEX_NAME, lambda tmp: Path(tmp).write_text(text))
    return out_dir


def _encode_shard(autoencoder: nn.Module, dataset: Dataset, out_dir: Path, k: int, start: int, stop: int,
                  batch_size: int, device: str | torch.device, sample: bool, seed: int, windows: int | None,
                  hop: int | None, settings: dict[str, Any], progress: Callable[[int], None] | None) -> None:
    """Encode the windows of manifest entries [start, stop) into shard k (its safetensors, then its json)."""
    from .audio import AudioReadError

    generator = None
    if sample:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0]) >> 1)
    latents, pending, seconds, captions, paths, metadata, indices, skipped = [], [], [], [], [], [], [], []

    def flush() -> None:
        if pending:
            with torch.no_grad():
                z = autoencoder.encode(torch.stack(pending).to(device), sample=sample, generator=generator)
            latents.append(z.float().cpu())
            pending.clear()

    for i in range(start, stop):
        entry = dataset.entries[i]
        try:
            clips = [(offset, *dataset.clip(i, offset)) for offset in dataset.window_offsets(i, windows, hop)]
        except AudioReadError as err:
            logger.warning("skipping %s", err)
            skipped.append(entry["path"])
            clips = []
        for offset, audio, seconds_total in clips:
            pending.append(audio)
            seconds.append(float(seconds_total))
            captions.append(entry["caption"])
            paths.append(entry["path"])
            extra = {key: v for key, v in entry.items() if key not in CORE_FIELDS}
            metadata.append({**extra, "seconds_start": offset / dataset.sample_rate})
            indices.append(i)
            if len(pending) == batch_size:
                flush()
        if progress is not None:
            progress(1)
    flush()
    if latents:
        stacked = torch.cat(latents)
    else:
        frames = settings["sample_size"] // autoencoder.downsampling_ratio if settings["sample_size"] else 0
        stacked = torch.zeros(0, autoencoder.config.latent_dim, frames)
    save_safetensors(out_dir / f"{shard_name(k)}.safetensors",
                     {"latents": stacked, "seconds_total": torch.tensor(seconds, dtype=torch.float32)},
                     {"format": "pt"})
    meta = {"shard": k, "start": start, "stop": stop, "count": len(captions), "captions": captions, "paths": paths,
            "metadata": metadata, "indices": indices, "skipped": skipped, "settings": settings}
    text = json.dumps(meta, indent=1, ensure_ascii=False)
    atomic_write(out_dir / f"{shard_name(k)}.json", lambda tmp: Path(tmp).write_text(text))
    logger.debug("wrote %s: %d clips, %d skipped", shard_name(k), len(captions), len(skipped))


class LatentDataset(Dataset):
    """The latents written by `encode_dataset`, all loaded into memory at construction (N x C x T x 4 bytes:
    about 64 KiB per clip for Stable Audio Open Small's 64 x 256 latents).

    Item i is a dict: latents (C, T) float32, caption str, seconds_total float, path str, skipped [] (bad files
    were dropped at encoding time; `self.skipped` lists them), plus the item's stored metadata (e.g. attributes).
    """

    def __init__(self, out_dir: str | Path):
        from safetensors.torch import load_file

        self.out_dir = Path(out_dir)
        index_path = self.out_dir / INDEX_NAME
        if not index_path.is_file():
            raise FileNotFoundError(f"{str(index_path)!r} does not exist: encode the dataset first (arcaudio encode); "
                                    "an interrupted encoding has no index.json until it is run again to the end")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{str(index_path)!r} has format version {self.index.get('format_version')!r}; this "
                             f"arcaudio reads version {FORMAT_VERSION}")
        self.latent_shape = tuple(self.index["latent_shape"])
        self.skipped: list[str] = list(self.index["skipped"])
        latents, seconds, self.captions, self.paths, self.metadata = [], [], [], [], []
        for shard in self.index["shards"]:
            base = self.out_dir / shard["name"]
            if not (base.with_suffix(".safetensors").is_file() and base.with_suffix(".json").is_file()):
                raise FileNotFoundError(f"shard {shard['name']} of {str(self.out_dir)!r} is missing; run the "
                                        "encoding again to rewrite it")
            tensors = load_file(str(base.with_suffix(".safetensors")))
            meta = json.loads(base.with_suffix(".json").read_text())
            count = shard["count"]
            if tensors["latents"].shape[0] != count or len(meta["captions"]) != count:
                raise ValueError(f"shard {shard['name']} of {str(self.out_dir)!r} holds "
                                 f"{tensors['latents'].shape[0]} latents and {len(meta['captions'])} captions, "
                                 f"index.json says {count}")
            latents.append(tensors["latents"])
            seconds.append(tensors["seconds_total"])
            self.captions += meta["captions"]
            self.paths += meta["paths"]
            self.metadata += meta["metadata"]
        self.latents = torch.cat(latents) if latents else torch.zeros(0, *self.latent_shape)
        self.seconds_total = torch.cat(seconds) if seconds else torch.zeros(0)

    def __len__(self) -> int:
        return self.latents.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} clips")
        item = dict(self.metadata[i])
        item.update(latents=self.latents[i], caption=self.captions[i], seconds_total=float(self.seconds_total[i]),
                    path=self.paths[i], skipped=[])
        return item
