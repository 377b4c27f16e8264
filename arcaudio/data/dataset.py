"""Captioned audio clips for training: `AudioDataset` and its `collate` function.

A bad file (unreadable, empty, non-finite, or shorter than `min_seconds`) never stops training: the dataset logs
one warning per path per process, moves on to the next index (wrapping around) and lists the skipped paths in the
item's `skipped` field, so a training loop can count unique skipped files, also across DataLoader workers and
DDP ranks (gather the lists and take the union).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .audio import (
    AudioReadError,
    audio_frames,
    crop_or_pad,
    read_audio,
    read_audio_window,
    resample,
    to_channels,
)
from .manifest import read_manifest

logger = logging.getLogger(__name__)

MIN_SAMPLES = 1024  # default shortest usable file, in samples at the dataset's sample rate
RESAMPLE_MARGIN_S = 0.05  # decoded either side of a window whose file is resampled: the filter's edge settles
CORE_FIELDS = ("audio", "caption", "seconds_total", "path", "skipped")
_warned: set[str] = set()  # paths already warned about in this process
_UNREAD = object()  # a file header not read yet


class AudioDataset(Dataset):
    """Clips of `sample_size` samples from the files of a manifest.

    Item i is a dict:
        audio (channels, sample_size) float32, resampled to `sample_rate` and converted with `to_channels`;
        caption str; seconds_total float (seconds of real, non-padded audio in the window); path str;
        skipped list[str] (bad files passed over to produce this item, usually empty);
        plus the manifest entry's other fields (e.g. `seconds`, `attributes`), which never override the above.

    The crop offset is drawn from `np.random.default_rng([seed, epoch, i])`, so it depends only on (seed, epoch, i)
    (not on worker, process or call order); with `random_crop=False` it is 0. Only the window is decoded (its
    frames sought in the file, plus RESAMPLE_MARGIN_S either side when the file's rate differs, resampled and cut),
    so an item costs the same from an hour-long file as from a short one; files whose header gives no length are
    decoded whole.

    Args:
        manifest: a CSV / JSONL manifest path (see `read_manifest`) or a list of its entries.
        sample_rate, sample_size, channels: the clips' format.
        random_crop: a random window of longer files (else their beginning).
        seed: non-negative integer seed of the crop offsets.
        min_seconds: files shorter than this (after resampling) are skipped; None: MIN_SAMPLES samples.
    """

    def __init__(self, manifest: str | Path | Sequence[dict[str, Any]], sample_rate: int, sample_size: int,
                 channels: int, random_crop: bool = True, seed: int = 0, min_seconds: float | None = None):
        for name, value in (("sample_rate", sample_rate), ("sample_size", sample_size), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if min_seconds is not None and not min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0 or None, got {min_seconds!r}")
        self.manifest_path = None if not isinstance(manifest, (str, Path)) else str(Path(manifest).resolve())
        self.entries = read_manifest(manifest) if isinstance(manifest, (str, Path)) else [dict(e) for e in manifest]
        if not self.entries:
            raise ValueError("the manifest holds no entries")
        for i, entry in enumerate(self.entries):
            if not isinstance(entry.get("path"), str) or not isinstance(entry.get("caption"), str):
                raise ValueError(f"manifest entry {i} needs string 'path' and 'caption' fields, got {entry!r}")
        self.sample_rate, self.sample_size, self.channels = sample_rate, sample_size, channels
        self.random_crop, self.seed, self.epoch = random_crop, seed, 0
        self.min_samples = MIN_SAMPLES if min_seconds is None else max(1, round(min_seconds * sample_rate))
        self._bad: dict[int, str] = {}  # index -> reason, learnt in this process

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        """Select the crop offsets of this epoch (call before each epoch, as with DistributedSampler)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def crop_offset(self, i: int, num_samples: int) -> int:
        """The window start for item i of a file of `num_samples` samples: a function of (seed, epoch, i)."""
        max_offset = num_samples - self.sample_size
        if not self.random_crop or max_offset <= 0:
            return 0
        return int(np.random.default_rng([self.seed, self.epoch, i]).integers(0, max_offset + 1))

    def load(self, index: int) -> torch.Tensor:
        """The whole file of entry `index` as (channels, L) at the dataset's rate; AudioReadError if unusable."""
        path = self.entries[index]["path"]
        audio, rate = read_audio(path)
        audio = to_channels(resample(audio, rate, self.sample_rate), self.channels)
        if audio.shape[-1] < self.min_samples:
            raise AudioReadError(path, f"too short: {audio.shape[-1]} samples at {self.sample_rate} Hz, "
                                       f"the minimum is {self.min_samples}")
        return audio

    def file_samples(self, index: int, header: tuple[int, int] | None | object = _UNREAD) -> int:
        """The length of entry `index`'s file at the dataset's rate, from its header (`audio_frames`, read here unless
        given; decoded when the header does not say); AudioReadError if unusable or shorter than min_samples."""
        path = self.entries[index]["path"]
        header = audio_frames(path) if header is _UNREAD else header
        total = self.load(index).shape[-1] if header is None else round(header[0] * self.sample_rate / header[1])
        if total < self.min_samples:
            raise AudioReadError(path, f"too short: {total} samples at {self.sample_rate} Hz, the minimum is "
                                       f"{self.min_samples}")
        return total

    def window_offsets(self, index: int, per_file: int | None = None, hop: int | None = None) -> list[int]:
        """Window starts (samples at the dataset's rate) covering entry `index`'s whole file: 0, hop, 2 hop, ...
        while a window still holds at least min_samples of real audio (the last one is padded); with `per_file`,
        at most that many of them, evenly spread over the file (per_file=1: the beginning only).

        Args:
            per_file: None for every window, else a positive count.
            hop: samples between window starts; None: sample_size (windows side by side).
        """
        hop = self.sample_size if hop is None else hop
        if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
            raise ValueError(f"hop must be a positive number of samples, got {hop!r}")
        if per_file is not None and (isinstance(per_file, bool) or not isinstance(per_file, int) or per_file < 1):
            raise ValueError(f"per_file must be a positive integer or None (every window), got {per_file!r}")
        total = self.file_samples(index)
        offsets = [0, *range(hop, total - self.min_samples + 1, hop)]
        if per_file is not None and len(offsets) > per_file:
            picks = np.linspace(0, len(offsets) - 1, per_file).round().astype(int)
            offsets = [offsets[k] for k in picks]
        return offsets

    def clip(self, index: int, offset: int,
             header: tuple[int, int] | None | object = _UNREAD) -> tuple[torch.Tensor, float]:
        """The window [offset, offset + sample_size) of entry `index`'s file at the dataset's rate, decoded alone
        (the frames sought, plus RESAMPLE_MARGIN_S either side when the file's rate differs): (window (channels,
        sample_size), seconds_total of real audio in it; the rest is zeros). AudioReadError if unusable. `header`:
        the file's `audio_frames`, when the caller has read it already."""
        path = self.entries[index]["path"]
        header = audio_frames(path) if header is _UNREAD else header
        if header is None:  # no length in the header: decode whole
            audio = self.load(index)[:, offset: offset + self.sample_size]
        else:
            frames, rate = header
            total = round(frames * self.sample_rate / rate)
            length = max(0, min(self.sample_size, total - offset))
            if rate == self.sample_rate:
                audio, _ = read_audio_window(path, offset, length)
                audio = to_channels(audio, self.channels)
            else:
                margin = round(RESAMPLE_MARGIN_S * rate)
                start = max(0, math.floor(offset * rate / self.sample_rate) - margin)
                step = rate // math.gcd(rate, self.sample_rate)  # a start on this grid lands on a whole output sample
                start -= start % step
                stop = min(frames, math.ceil((offset + length) * rate / self.sample_rate) + margin)
                audio, _ = read_audio_window(path, start, stop - start)
                audio = to_channels(resample(audio, rate, self.sample_rate), self.channels)
                first = start * self.sample_rate // rate  # where the decoded piece starts at the dataset's rate (exact)
                audio = audio[:, offset - first: offset - first + length]
        window = torch.nn.functional.pad(audio, (0, self.sample_size - audio.shape[-1]))
        return window, audio.shape[-1] / self.sample_rate

    def window(self, index: int, item: int) -> tuple[torch.Tensor, float] | None:
        """The crop of entry `index` for item `item` decoded alone: (window (channels, sample_size), seconds_total),
        as `crop_or_pad` of the whole file would give; None when the header gives no length (decode whole)."""
        header = audio_frames(self.entries[index]["path"])  # read once per item
        if header is None:
            return None
        return self.clip(index, self.crop_offset(item, self.file_samples(index, header)), header)

    def __getitem__(self, i: int) -> dict[str, Any]:
        n = len(self.entries)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} clips")
        i %= n
        skipped: list[str] = []
        for step in range(n):
            j = (i + step) % n
            if j not in self._bad:
                try:
                    cropped = self.window(j, i)
                    audio = self.load(j) if cropped is None else None
                    break
                except AudioReadError as err:
                    self._bad[j] = err.reason
                    if err.path not in _warned:
                        _warned.add(err.path)
                        logger.warning("skipping %s", err)
            skipped.append(self.entries[j]["path"])
        else:
            reasons = "; ".join(f"{self.entries[k]['path']}: {r}" for k, r in sorted(self._bad.items())[:5])
            raise ValueError(f"none of the {n} files of the dataset is usable ({reasons}"
                             f"{'; ...' if len(self._bad) > 5 else ''})")
        entry = self.entries[j]
        if cropped is not None:
            window, seconds_total = cropped
        else:
            window, seconds_total = crop_or_pad(audio, self.sample_size, self.crop_offset(i, audio.shape[-1]),
                                                self.sample_rate)
        item = {k: v for k, v in entry.items() if k not in CORE_FIELDS}
        item.update(audio=window.float(), caption=entry["caption"], seconds_total=seconds_total, path=entry["path"],
                    skipped=skipped)
        return item


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items (of AudioDataset or LatentDataset).

    Returns a dict with `audio` and/or `latents` stacked to (B, C, L) / (B, C, T), `seconds_total` a float32
    tensor (B,), `skipped` one flat list of the items' skipped paths, and every other field as a list of B values
    (None where an item lacks it), e.g. `caption` and `path`.
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    keys = list(dict.fromkeys(k for item in items for k in item))
    batch: dict[str, Any] = {}
    for key in keys:
        values = [item.get(key) for item in items]
        if key in ("audio", "latents"):
            if any(not isinstance(v, torch.Tensor) for v in values):
                raise ValueError(f"every item needs a tensor {key!r} to be batched")
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack {key!r} of different shapes {sorted(shapes)}")
            batch[key] = torch.stack(values)
        elif key == "seconds_total":
            batch[key] = torch.tensor([float(v) for v in values], dtype=torch.float32)
        elif key == "skipped":
            batch[key] = [path for v in values for path in (v or [])]
        else:
            batch[key] = values
    return batch
