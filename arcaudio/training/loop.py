"""The training loop shared by every stage: deterministic data order, atomic resumable checkpoints, logs.

A run folder holds `config.json` (train + model config), `checkpoint.pt` (everything needed to resume: weights,
optimizer, scheduler, EMA, step), `model.safetensors` (the exported model, EMA weights, arcaudio format),
`log.csv`, and `summary.json` at the end.

Resuming is exact: batch k of the run is a pure function of (seed, k) (epoch permutation, rank shard, crop
offsets), and every random draw of step k comes from a generator seeded with (seed, k, rank), so a killed run
resumed from its last checkpoint ends with the same weights as an uninterrupted one. A streamed dataset (tar
shards, data/streaming.py) has no index to permute: the checkpoint records, per stream consumer, the last sample
trained on, and the resumed stream starts after it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from ..checkpoint import atomic_write
from ..models.text_to_audio import TextToAudioModel
from .config import TrainConfig
from .distributed import DistInfo, barrier, gather_objects, gather_sets, mean_across
from .sharding import distribute_state_dict, full_tensors, is_sharded
from .throughput import Throughput

log = logging.getLogger(__name__)


class Stage(Protocol):
    """One kind of training: owns its modules, optimizers and EMA, and does one optimizer step per batch."""

    model: TextToAudioModel

    def train_step(self, batch: dict[str, Any], step: int, generator: torch.Generator) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def export(self, path: Path) -> Path: ...


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The generator for every random draw of one step on one process."""
    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, info: DistInfo) -> list[list[int]]:
    """This process's index batches for one epoch: a seeded permutation, cut into global batches of
    batch_size * world_size (the incomplete tail is dropped), each shared out by rank."""
    global_batch = batch_size * info.world_size
    if n < global_batch:
        raise ValueError(f"the dataset has {n} items, fewer than one global batch of {global_batch} "
                         f"({batch_size} per process x {info.world_size} processes)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
    start = info.rank * batch_size
    return [perm[b * global_batch + start: b * global_batch + start + batch_size] for b in range(n // global_batch)]


def batches_from(dataset: Dataset, config: TrainConfig, info: DistInfo, start_step: int, collate,
                 stream_state: dict[str, Any] | None = None):
    """Yield (step, batch) from `start_step` on, forever, in the run's deterministic order (for a streamed
    dataset: from the consumers' recorded cursors, `stream_state`)."""
    if isinstance(dataset, IterableDataset):
        dataset.configure(info.rank, info.world_size, config.num_workers, start_step,
                          _stream_cursors(info, config, stream_state))
        loader = DataLoader(dataset, batch_size=config.batch_size, collate_fn=collate, num_workers=config.num_workers)
        yield from enumerate(loader, start=start_step)  # the stream never ends: training counts steps
        return
    per_epoch = len(dataset) // (config.batch_size * info.world_size)
    step = start_step
    epoch, offset = divmod(start_step, max(per_epoch, 1))
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), config.batch_size, config.seed, epoch, info)[offset:]
        loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=config.num_workers)
        for batch in loader:
            yield step, batch
            step += 1
        epoch, offset = epoch + 1, 0


def _stream_cursors(info: DistInfo, config: TrainConfig, state: dict[str, Any] | None) -> dict[int, list[int]]:
    """The recorded cursors of a streamed run ({} for a fresh one); refuses another process x worker split."""
    if not state:
        return {}
    consumers = info.world_size * max(1, config.num_workers)
    if state["consumers"] != consumers:
        raise ValueError(f"this run streamed its data to {state['consumers']} consumers (processes x loader "
                         f"workers); it resumes only with the same split, not {consumers} ({info.world_size} x "
                         f"{max(1, config.num_workers)}): keep the number of processes and --set num_workers")
    return {int(c): v for c, v in state["cursors"].items()}


class _StreamTracker:
    """The cursor of the last item trained on, per stream consumer, gathered from every process at checkpoints."""

    def __init__(self, state: dict[str, Any] | None):
        self.cursors: dict[int, list[int]] = {int(c): v for c, v in (state or {}).get("cursors", {}).items()}

    def update(self, batch: dict[str, Any]) -> None:
        from ..data.streaming import CURSOR_FIELD

        for consumer, *cursor in batch.get(CURSOR_FIELD) or []:
            self.cursors[consumer] = cursor

    def state(self, info: DistInfo, consumers: int) -> dict[str, Any]:
        merged: dict[int, list[int]] = {}
        for cursors in gather_objects(info, self.cursors):
            merged.update(cursors)
        return {"consumers": consumers, "cursors": {str(c): v for c, v in sorted(merged.items())}}


@dataclass
class TrainSummary:
    steps: int
    seconds: float
    steps_per_second: float
    last_metrics: dict[str, float]
    skipped_files: list[str] = field(default_factory=list)
    resumed_from: int = 0
    rank_weight_digests: list[str] = field(default_factory=list)  # one per process: equal when DDP kept sync
    throughput: dict[str, float] = field(default_factory=dict)  # the last log window's samples/s, TFLOP/s, MFU


class _Log:
    """CSV log (and TensorBoard, if asked) of metrics every `log_every` steps, on the main process."""

    def __init__(self, run_dir: Path, start_step: int, tensorboard: bool):
        self.path = run_dir / "log.csv"
        rows = []
        if self.path.exists():  # drop rows after the checkpoint we resume from: they will be logged again
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        self.fields = list(rows[0]) if rows else []
        self.rows = rows
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ImportError("tensorboard logging needs the tensorboard package: pip install tensorboard") from err
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: f"{v:.6g}" for k, v in metrics.items()}}
        self.rows.append(row)
        self.fields = list(dict.fromkeys([*self.fields, *row]))
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def flush(self) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.fields)
                w.writeheader()
                w.writerows(self.rows)

        if self.rows:
            atomic_write(self.path, write)
        if self.writer is not None:
            self.writer.flush()


def _configs(model: TextToAudioModel, config: TrainConfig) -> dict[str, Any]:
    return {"train": config.to_dict(), "model": model.config.to_dict()}


def _differences(stored: Any, given: Any, where: str = "") -> list[str]:
    """Each leaf where two config dicts differ, as "train.data: 'a' in the run, 'b' now"."""
    if isinstance(stored, dict) and isinstance(given, dict):
        return [line for key in sorted(set(stored) | set(given), key=str)
                for line in _differences(stored.get(key, "(absent)"), given.get(key, "(absent)"),
                                         f"{where}.{key}".lstrip("."))]
    return [] if stored == given else [f"{where}: {stored!r} in the run, {given!r} now"]


def _comparable(configs: dict[str, Any]) -> dict[str, Any]:
    # through TrainConfig, so that a field added since the run started compares as its default
    train = dict(TrainConfig.from_dict(configs["train"]).to_dict(), steps=None, log_every=None,
                 checkpoint_every=None, num_workers=None, tensorboard=None)
    return {"train": train, "model": configs["model"]}


def save_checkpoint(run_dir: Path, stage: Stage, config: TrainConfig, step: int, skipped: set[str],
                    stream_state: dict[str, Any] | None = None, write: bool = True) -> None:
    """Write checkpoint.pt and the exported model. Under FSDP every process calls it (the sharded tensors are
    gathered whole) and only the one with `write` writes."""
    state = {"step": step, "model": full_tensors(stage.model.state_dict()), "stage": full_tensors(stage.state_dict()),
             "configs": json.dumps(_configs(stage.model, config)), "skipped": sorted(skipped)}
    if stream_state is not None:
        state["stream"] = json.dumps(stream_state)
    if write:
        atomic_write(run_dir / "checkpoint.pt", lambda tmp: torch.save(state, tmp))
    stage.export(run_dir / "model.safetensors")


def load_checkpoint(run_dir: Path, stage: Stage, config: TrainConfig) -> tuple[int, set[str], dict | None]:
    """Restore a run; returns (step to continue from, skipped files so far, the stream's cursors or None).
    Refuses a different config."""
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    stored = json.loads(state["configs"])
    differences = _differences(_comparable(stored), _comparable(_configs(stage.model, config)))
    if differences:
        raise ValueError(f"{str(run_dir)!r} holds a run with a different config ({'; '.join(differences[:5])}"
                         f"{'; ...' if len(differences) > 5 else ''}); resume it with the same config (only steps, "
                         "log_every, checkpoint_every, num_workers may change) or use a new folder")
    stage.model.load_state_dict(distribute_state_dict(state["model"], stage.model))
    stage.load_state_dict(state["stage"])
    return int(state["step"]), set(state["skipped"]), json.loads(state["stream"]) if "stream" in state else None


def weight_digest(module: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes, in name order."""
    h = hashlib.sha256()
    for name, p in sorted(full_tensors(dict(module.named_parameters())).items()):  # FSDP: gathered whole
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_training(stage: Stage, dataset: Dataset, config: TrainConfig, run_dir: str | Path, info: DistInfo,
                 collate, progress: bool = True) -> TrainSummary:
    """Train `stage` for config.steps optimizer steps, resuming from run_dir/checkpoint.pt if it exists."""
    run_dir = Path(run_dir)
    start_step, skipped, stream_state = 0, set(), None
    if (run_dir / "checkpoint.pt").exists():
        start_step, skipped, stream_state = load_checkpoint(run_dir, stage, config)
        if info.is_main:
            log.info("resuming %s from step %d", run_dir, start_step)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_configs(stage.model, config), indent=2)
        atomic_write(run_dir / "config.json", lambda tmp: Path(tmp).write_text(text))
    logger = _Log(run_dir, start_step, config.tensorboard) if info.is_main else None
    bar = None
    if progress and info.is_main and start_step < config.steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start_step, desc=f"train {config.stage}", dynamic_ncols=True)
    metrics: dict[str, float] = {}
    t0, last_log_t, last_log_step = time.perf_counter(), time.perf_counter(), start_step
    step = start_step
    streamed = isinstance(dataset, IterableDataset)
    sharded = is_sharded(stage.model)
    tracker = _StreamTracker(stream_state) if streamed else None
    throughput = Throughput(config.batch_size, info.world_size, info.device, config.precision)
    consumers = info.world_size * max(1, config.num_workers)
    if start_step < config.steps:
        for step, batch in batches_from(dataset, config, info, start_step, collate, stream_state):
            skipped.update(batch.get("skipped", []))
            if tracker is not None:
                tracker.update(batch)
            if throughput.step_flops is None and hasattr(stage, "step_flops"):
                throughput.step_flops = stage.step_flops(batch)  # counted on a side computation, once
            metrics = stage.train_step(batch, step, step_generator(config.seed, step, info.rank))
            done = step + 1
            if done % config.log_every == 0 or done == config.steps:
                metrics = mean_across(info, metrics)
                now = time.perf_counter()
                metrics["steps_per_s"] = (done - last_log_step) / max(now - last_log_t, 1e-9)
                metrics.update(throughput.figures(metrics["steps_per_s"]))
                last_log_t, last_log_step = now, done
                if logger is not None:
                    logger.write(done, metrics)
                    logger.flush()
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "steps_per_s"})
            if bar is not None:
                bar.update(1)
            if done % config.checkpoint_every == 0 or done == config.steps:
                all_skipped = gather_sets(info, skipped)
                stream = tracker.state(info, consumers) if tracker is not None else None
                if info.is_main or sharded:  # rows logged past this checkpoint are dropped again on resume
                    save_checkpoint(run_dir, stage, config, done, all_skipped, stream, write=info.is_main)
                barrier(info)
            if done >= config.steps:
                break
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    skipped = gather_sets(info, skipped)
    ran = max(0, config.steps - start_step)
    digests = gather_objects(info, weight_digest(stage.model))
    summary = TrainSummary(steps=config.steps, seconds=elapsed, steps_per_second=ran / max(elapsed, 1e-9),
                           last_metrics=metrics, skipped_files=sorted(skipped), resumed_from=start_step,
                           rank_weight_digests=digests,
                           throughput={k: metrics[k] for k in ("samples_per_s", "tflops", "mfu") if k in metrics})
    if info.is_main:
        if not (run_dir / "checkpoint.pt").exists():
            save_checkpoint(run_dir, stage, config, config.steps, skipped)
        text = json.dumps(summary.__dict__, indent=2)
        atomic_write(run_dir / "summary.json", lambda tmp: Path(tmp).write_text(text))
    return summary
