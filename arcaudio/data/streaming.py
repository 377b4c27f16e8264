"""`StreamingDataset`: training samples read from tar shards as they stream (datasets larger than local disk).

Order. Epoch e permutes the shard list with a generator seeded by (seed, e). There are `world_size x num_workers`
consumers (one per DataLoader worker per process; a process without workers is one consumer); consumer c reads
shards c, c + consumers, ... of that permutation, so within an epoch no sample is read twice, and then goes on
to its share of epoch e + 1 (the stream never ends; training counts steps). Within a shard, samples pass through a
shuffle buffer seeded by (seed, e, shard); an audio sample's crop offset is drawn from (seed, e, shard, k).

Resuming. Every item carries `stream_cursor` = [consumer, epoch, position in the consumer's shard list, samples of
that shard consumed]. The training loop records the cursor of the last item of each consumer it trained on and
stores them in its checkpoint; `configure(..., cursors=...)` starts every consumer right after its cursor (the
shard is opened again and the consumed samples passed over without decoding). A DataLoader takes batch k from
worker k mod num_workers; `configure(step=...)` rotates the workers so that the resumed loader's first batch comes
from the consumer whose turn it is. The same step, cursors and settings give the same batches as an uninterrupted
run.

A sample that cannot be decoded (bad audio, no caption) is passed over and named in the `skipped` field of the
next item; a shard that cannot be opened or read is passed over the same way, with a warning.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .audio import AudioReadError, crop_or_pad, read_audio_bytes, resample, to_channels
from .dataset import CORE_FIELDS, MIN_SAMPLES
from .tar_shards import AUDIO_EXTENSIONS, CAPTION_KEYS, LATENTS_EXTENSION, read_tar_samples, sample_caption
from .urls import open_url, shard_urls

logger = logging.getLogger(__name__)

CURSOR_FIELD = "stream_cursor"


def looks_like_shards(data: str) -> bool:
    """Whether a training `data` setting names tar shards (a .tar, a brace pattern, pipe: or a URL, or a folder of
    shards) rather than a manifest or a latents folder."""
    if data.startswith("pipe:") or "://" in data or "{" in data or "::" in data or data.endswith(".tar"):
        return True
    folder = Path(data)
    return folder.is_dir() and not (folder / "index.json").exists() and any(folder.glob("*.tar"))


class StreamingDataset(IterableDataset):
    """Items from tar shards (tar_shards.py layout), in the deterministic, resumable order of the module docstring.

    Items: latents samples give `latents` (C, T) float32 and the json's `seconds_total`; audio samples give `audio`
    (channels, sample_size) float32, a random window (or the beginning, random_crop=False) resampled to
    `sample_rate`, with the seconds of real audio in it as `seconds_total`. Both give `caption`, `path`
    (shard#key), `skipped`, `stream_cursor` and the json's other fields (e.g. `attributes`, `seconds_start`).

    Args:
        source: shard addresses: a list, a brace pattern (`data/shard-{000000..000099}.tar`, `pipe:curl -s
            https://host/shard-{0..9}.tar`, `s3://bucket/shard-{00..99}.tar`), or a local folder of .tar files.
        sample_rate, sample_size, channels: the audio window's format (needed for audio shards only).
        seed: the order's seed. shuffle_buffer: samples held per shard for shuffling (0: stored order).
    """

    def __init__(self, source: str | Path | list[str], sample_rate: int | None = None, sample_size: int | None = None,
                 channels: int | None = None, seed: int = 0, shuffle_buffer: int = 0, random_crop: bool = True):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) or shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be a non-negative integer, got {shuffle_buffer!r}")
        self.urls = shard_urls(source)
        self.sample_rate, self.sample_size, self.channels = sample_rate, sample_size, channels
        self.seed, self.shuffle_buffer, self.random_crop = seed, shuffle_buffer, random_crop
        self.rank, self.world_size, self.num_workers, self.rotation = 0, 1, 0, 0
        self.cursors: dict[int, tuple[int, int, int]] = {}

    @property
    def consumers(self) -> int:
        return self.world_size * max(1, self.num_workers)

    def configure(self, rank: int = 0, world_size: int = 1, num_workers: int = 0, step: int = 0,
                  cursors: dict[int, list[int]] | None = None) -> StreamingDataset:
        """Set this process's place among the consumers, the step the loader starts at and the recorded cursors
        ({consumer: [epoch, position, consumed]}, as `state` of the training loop stores them)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        if len(self.urls) < self.consumers:
            raise ValueError(f"{len(self.urls)} shard(s) for {self.consumers} consumers ({world_size} process(es) x "
                             f"{max(1, num_workers)} loader worker(s)): every consumer needs a shard of its own; "
                             "write more, smaller shards (arcaudio pack --shard-size) or use fewer workers")
        self.rotation = step % max(1, num_workers)
        self.cursors = {int(c): tuple(v) for c, v in (cursors or {}).items()}
        return self

    def shards_of(self, consumer: int, epoch: int) -> list[int]:
        """The shard indices consumer `consumer` reads in epoch `epoch`, in order."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.urls))
        return perm[consumer::self.consumers].tolist()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers = max(1, self.num_workers)
        if (1 if info is None else info.num_workers) != workers:
            raise RuntimeError(f"configured for {self.num_workers} loader workers, iterated by "
                               f"{0 if info is None else info.num_workers}; call configure() with the DataLoader's "
                               "num_workers")
        worker = 0 if info is None else info.id
        consumer = self.rank * workers + (worker + self.rotation) % workers
        epoch, position, consumed = self.cursors.get(consumer, (0, 0, 0))
        skipped: list[str] = []
        while True:
            shards = self.shards_of(consumer, epoch)
            while position < len(shards):
                for item in self._shard_items(shards[position], epoch, consumed, skipped):
                    item["skipped"], skipped = skipped, []
                    item[CURSOR_FIELD] = [consumer, epoch, position, item.pop("_consumed")]
                    yield item
                position, consumed = position + 1, 0
            epoch, position = epoch + 1, 0

    def _shard_items(self, shard: int, epoch: int, consumed: int, skipped: list[str]) -> Iterator[dict[str, Any]]:
        url = self.urls[shard]
        rng = np.random.default_rng([self.seed, epoch, shard])
        try:
            with open_url(url) as stream:
                for k, (key, members) in enumerate(_shuffled(read_tar_samples(stream), self.shuffle_buffer, rng)):
                    if k < consumed:
                        continue  # trained on before the resume
                    name = f"{url}#{key}"
                    try:
                        item = self.decode(name, members, np.random.default_rng([self.seed, epoch, shard, k]))
                    except (AudioReadError, ValueError, KeyError) as err:
                        logger.warning("skipping sample %s: %s", name, err)
                        skipped.append(name)
                        continue
                    item["_consumed"] = k + 1
                    yield item
        except (OSError, tarfile.TarError, EOFError) as err:
            logger.warning("skipping the rest of shard %s: %s", url, err)
            skipped.append(url)

    def decode(self, name: str, members: dict[str, bytes], rng: np.random.Generator) -> dict[str, Any]:
        """One sample's members -> an item (without its cursor and skipped fields)."""
        meta = json.loads(members["json"]) if "json" in members else {}
        if not isinstance(meta, dict):
            raise ValueError(f"its json is a {type(meta).__name__}, not an object")
        caption = sample_caption(meta, name)
        item = {k: v for k, v in meta.items() if k not in CORE_FIELDS and k not in CAPTION_KEYS}
        if LATENTS_EXTENSION in members:
            latents = np.load(io.BytesIO(members[LATENTS_EXTENSION]), allow_pickle=False)
            if latents.ndim != 2 or not np.isfinite(latents).all():
                raise ValueError(f"latents must be finite (channels, frames), got shape {latents.shape}")
            if "seconds_total" not in meta:
                raise ValueError("a latents sample's json needs seconds_total")
            item.update(latents=torch.from_numpy(latents.astype(np.float32)),  # (C, T)
                        seconds_total=float(meta["seconds_total"]))
        else:
            ext = next((e for e in AUDIO_EXTENSIONS if e in members), None)
            if ext is None:
                raise ValueError(f"no audio ({list(AUDIO_EXTENSIONS)}) or {LATENTS_EXTENSION} member; it has "
                                 f"{sorted(members)}")
            if None in (self.sample_rate, self.sample_size, self.channels):
                raise ValueError("audio shards need the dataset's sample_rate, sample_size and channels")
            audio, rate = read_audio_bytes(members[ext], name)
            audio = to_channels(resample(audio, rate, self.sample_rate), self.channels)  # (channels, L)
            if audio.shape[-1] < MIN_SAMPLES:
                raise AudioReadError(name, f"too short: {audio.shape[-1]} samples at {self.sample_rate} Hz")
            top = max(0, audio.shape[-1] - self.sample_size)
            offset = int(rng.integers(0, top + 1)) if self.random_crop else 0
            window, seconds_total = crop_or_pad(audio, self.sample_size, offset, self.sample_rate)
            item.update(audio=window.float(), seconds_total=seconds_total)
        item.update(caption=caption, path=name)
        return item


def _shuffled(samples: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """A shuffle buffer of `size` samples (0: the stream as it is), its draws from `rng`."""
    if size <= 0:
        yield from samples
        return
    buffer: list = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        j = int(rng.integers(len(buffer)))
        buffer[j], sample = sample, buffer[j]
        yield sample
    while buffer:
        yield buffer.pop(int(rng.integers(len(buffer))))
