"""ARC post-training (Adversarial Relativistic-Contrastive): a pre-trained rectified flow becomes a few-step
generator of clean latents, with no teacher, no distillation and no CFG.

- Generator G(x_t, t, c) = x_t - t v(x_t, t, c): the pre-trained DiT, reparameterised to predict x0; EMA'd.
- Discriminator D: a second copy of the pre-trained DiT cut after ~75 % of its blocks plus a conv head scoring
  patches (models/arc_discriminator.py).
- Even steps update G, odd steps update D, each with its own optimizer (one optimizer step per batch, as the
  reference); optionally D alone for the first `arc.discriminator_warmup` steps, so that G's first steps meet
  a D that has already learned something. Real x0 and generated x0_hat are re-noised to the same level s with
  the same noise and scored with the same prompt; the losses are in arc_losses.py.
- The text and seconds conditioners stay frozen: both players see the conditioning the pre-trained flow makes.

Every discriminator evaluation of a step is one batched call (real, generated, mismatched prompts, penalty
probes concatenated), so under DDP each module runs forward once per backward. Under FSDP (`strategy="fsdp"`) both
players are sharded block by block, each with its own optimizer over its shards; D's weights are frozen during
G's step (their gradients never computed nor reduced), and exports are written from a whole copy on rank 0.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import save_model, save_sao
from ..flow import add_noise, sample_t
from ..models.arc_discriminator import ARCDiscriminator, resolve_exit_layer
from ..models.text_to_audio import Conditioning, TextToAudioModel
from .accumulation import gradient_sync, micro_batches
from .arc_losses import (
    conflicting_prompts,
    contrastive_loss,
    finite_difference_penalty,
    prompt_derangement,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
)
from .config import TrainConfig
from .distributed import DistInfo, wrap_ddp
from .ema import EMA, swapped_in
from .flow_stage import batch_latents, recaptioned
from .optim import build_optimizer, build_scheduler, decay_groups
from .sharding import (
    as_float,
    distribute_optimizer_state,
    distribute_state_dict,
    gathered,
    local_share,
    shard_model,
    whole_copy,
)
from .throughput import counted_flops

log = logging.getLogger(__name__)


class Denoiser(nn.Module):
    """G: x_t (B, C, T), t (B,) -> x0_hat = x_t - t v(x_t, t, c) (B, C, T)."""

    def __init__(self, model: TextToAudioModel):
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cross: torch.Tensor, global_cond: torch.Tensor):
        v = self.model.dit(x_t, t, cross, global_cond)  # (B, C, T)
        return x_t - t[:, None, None].to(v.dtype) * v


class ARCStage:
    """Generator (`model`, trained in place) and discriminator, their optimizers, schedulers and G's EMA."""

    def __init__(self, model: TextToAudioModel, config: TrainConfig, info: DistInfo):
        self.model, self.config, self.info = model, config, info
        ac = config.arc
        depth = model.config.dit.depth
        self.exit_layer = resolve_exit_layer(depth, ac.exit_layer, ac.depth_fraction)
        fsdp = config.strategy == "fsdp" and info.enabled
        model.train()
        model.requires_grad_(False)
        model.dit.requires_grad_(True)
        model.dit.grad_checkpointing = config.grad_checkpointing
        with torch.random.fork_rng(devices=[]):  # the head's init depends on the seed only
            torch.manual_seed(config.seed + 1)
            self.discriminator = ARCDiscriminator(model.config.dit, self.exit_layer, ac.soft_clip_scale,
                                                  contrastive_head=ac.contrastive_head == "separate")
        self.discriminator.trunk.load_state_dict(model.dit.state_dict())  # the pre-trained flow's weights
        self.discriminator.train()
        self.discriminator.trunk.grad_checkpointing = config.grad_checkpointing
        self.export_model = None  # under FSDP: a whole copy on rank 0 (CPU) that exports are written from
        if fsdp:  # each player sharded block by block; the frozen parts (autoencoder, conditioners) stay whole
            self.export_model = whole_copy(model, info)
            self.generator = shard_model(Denoiser(model), info, model.dit.transformer.layers)
            trunk_blocks = self.discriminator.trunk.transformer.layers[:self.exit_layer + 1]
            heads = [h for h in (self.discriminator.head, self.discriminator.contrastive_head) if h is not None]
            self.d_module = shard_model(self.discriminator, info, [*trunk_blocks, *heads])
            model.to(info.device)
            self.discriminator.to(info.device)
            for name, player in (("generator", model.dit), ("discriminator", self.discriminator)):
                held, total = local_share(player)
                log.info("fsdp: process %d holds %d of the %d trainable %s weight values (%.1f %%)", info.rank,
                         held, total, name, 100 * held / max(total, 1))
        else:
            model.to(info.device)
            self.discriminator.to(info.device)
            self.generator = wrap_ddp(Denoiser(model), info)
            self.d_module = wrap_ddp(self.discriminator, info)
        self.d_params = [p for p in self.discriminator.parameters() if p.requires_grad]  # sharded ones under FSDP
        self.g_params = [p for p in model.dit.parameters() if p.requires_grad]
        # D alone during its warm-up, then G and D alternate: each schedule maps its player's steps onto the run's
        self.optimizer = build_optimizer(self.g_params, config.optim, lr=ac.generator_lr)
        self.scheduler = build_scheduler(self.optimizer, config.steps, config.optim, self.generator_run_step)
        self.d_optimizer = build_optimizer(self._discriminator_groups(), config.optim)
        self.d_scheduler = build_scheduler(self.d_optimizer, config.steps, config.optim, self.discriminator_run_step)
        self.ema = EMA(model, config.ema_decay, config.ema_warmup_power) if config.ema_decay > 0 else None
        keys = ["loss", "g_grad_norm", "lr", "d_loss", "d_relativistic", "d_real_minus_fake", "d_contrastive",
                "d_contrastive_used", "d_grad_norm"] + [k for k in ("r1", "r2") if getattr(ac, f"{k}_weight") > 0]
        self.metrics = dict.fromkeys(keys, float("nan"))

    # -- whose turn: the first `arc.discriminator_warmup` run steps are D's alone, then G and D alternate ----------

    def generator_turn(self, step: int) -> bool:
        warmup = self.config.arc.discriminator_warmup
        return step >= warmup and (step - warmup) % 2 == 0

    def generator_run_step(self, k: int) -> int:
        """The run step of G's k-th optimizer step."""
        return self.config.arc.discriminator_warmup + 2 * k

    def discriminator_run_step(self, k: int) -> int:
        """The run step of D's k-th optimizer step."""
        warmup = self.config.arc.discriminator_warmup
        return k if k < warmup else warmup + 2 * (k - warmup) + 1

    def _discriminator_groups(self) -> list[dict]:
        """D's AdamW groups: the trunk at `arc.discriminator_lr`, the head (both heads with
        `arc.contrastive_head="separate"`) at `arc.discriminator_head_lr` when set (one rate for all otherwise, the
        reference's setting)."""
        ac = self.config.arc
        if ac.discriminator_head_lr is None:
            return decay_groups(self.d_params, lr=ac.discriminator_lr)
        d = self.discriminator
        head = {id(p) for h in (d.head, d.contrastive_head) if h is not None for p in h.parameters()}
        return (decay_groups([p for p in self.d_params if id(p) not in head], lr=ac.discriminator_lr)
                + decay_groups([p for p in self.d_params if id(p) in head], lr=ac.discriminator_head_lr))

    # -- one step -------------------------------------------------------------------------------------------------

    def _draws(self, batch: dict[str, Any], generator: torch.Generator, generator_step: bool):
        """Every random draw of a step, for the whole batch: (x0 (B, C, T), conditioning, G's conditioning (with
        prompt dropout on generator steps), x_t (B, C, T) at G's time t (B,), the re-noise level s (B,) and its
        noise (B, C, T)). Real x0 and G's x0_hat are later re-noised to s with that one noise."""
        device, ac = self.info.device, self.config.arc
        x0 = batch_latents(self.model, batch, device, generator)  # (B, C, T)
        b = x0.shape[0]
        with torch.no_grad():
            cond = self.model.condition(batch["caption"], batch["seconds_total"].tolist())
        t = sample_t(ac.generator_time, b, generator).to(device)
        x_t = add_noise(x0, torch.randn(x0.shape, generator=generator).to(device), t)  # (B, C, T)
        g_cond = cond
        if generator_step and ac.cfg_dropout > 0:
            g_cond = cond.dropped(torch.rand(b, generator=generator) < ac.cfg_dropout)
        s = sample_t(ac.discriminator_time, b, generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        return x0, cond, g_cond, x_t, t, s, noise

    def train_step(self, batch: dict[str, Any], step: int, generator: torch.Generator) -> dict[str, float]:
        """D's warm-up steps, then alternately G and D (`generator_turn`). Returns the latest metrics of both
        players (NaN before each one's first step), always with the same keys, so logs at any step and averages
        across processes line up."""
        if self.config.arc.recaption:
            captions, named = recaptioned(batch, generator, self.config.arc.short_caption_share, named=True)
            batch = {**batch, "caption": captions, "named_attributes": named}
        if self.generator_turn(step):
            self.metrics.update(self._generator_step(batch, generator))
        else:
            self.metrics.update(self._discriminator_step(batch, generator))
        return dict(self.metrics)

    def _autocast(self):
        return torch.autocast(self.info.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    def _generator_loss(self, g: nn.Module, d: nn.Module, x0, cond, g_cond, x_t, t, s, noise) -> torch.Tensor:
        """G's loss on (a micro-batch of) a step's draws: x0_hat = g(x_t, t, g_cond), then real x0 and x0_hat
        re-noised to s with the same noise, scored by d with the true prompt (one batched call)."""
        x0_hat = g(x_t, t, g_cond.cross_attn_cond, g_cond.global_cond)  # (b, C, T)
        real_s, fake_s = add_noise(x0, noise, s), add_noise(x0_hat, noise, s)
        scores = d(torch.cat([real_s, fake_s]), s.repeat(2), Conditioning.cat([cond, cond]))
        real, fake = scores.float().chunk(2)  # (b, 1, P) each
        return self.config.arc.generator_weight * relativistic_generator_loss(real, fake)

    def _discriminator_forward(self, g: nn.Module, d: nn.Module, x0, cond, wrong, x_t, t, s, noise,
                               probes) -> tuple[torch.Tensor, dict]:
        """D's loss and its terms on (a micro-batch of) a step's draws: g's x0_hat (no gradient), then every score
        map d makes in one batched call: [real, generated, real with wrong prompts (if `wrong`), R1/R2 probes]."""
        ac = self.config.arc
        with torch.no_grad():
            x0_hat = g(x_t, t, cond.cross_attn_cond, cond.global_cond)  # (b, C, T)
        real_s, fake_s = add_noise(x0, noise, s), add_noise(x0_hat, noise, s)
        xs, conds = [real_s, fake_s], [cond, cond]
        if wrong is not None:
            xs.append(real_s)
            conds.append(wrong)
        for name, x in (("r1", real_s), ("r2", fake_s)):
            if name in probes:
                xs.append(x + ac.penalty_sigma * probes[name])
                conds.append(cond)
        b = real_s.shape[0]
        if ac.contrastive_head == "separate":  # L_C on the second head: its [real, wrong] rows
            scores, second = d(torch.cat(xs), s.repeat(len(xs)), Conditioning.cat(conds), both_heads=True)
            second = second.float().split(b)
            loss, metrics = self._discriminator_loss(scores.float().split(b),
                                                     (second[0], second[2]) if wrong is not None else None)
            # without wrong prompts this step the second head still joins the graph (DDP expects every gradient)
            return (loss if wrong is not None else loss + second[0].sum() * 0), metrics
        scores = d(torch.cat(xs), s.repeat(len(xs)), Conditioning.cat(conds)).float().split(b)
        return self._discriminator_loss(scores, (scores[0], scores[2]) if wrong is not None else None)

    @contextlib.contextmanager
    def _discriminator_frozen(self) -> Iterator[None]:
        """D's weights take no gradient inside (G's step: gradients flow through D to G only)."""
        self.discriminator.requires_grad_(False)
        try:
            yield
        finally:
            for p in self.d_params:
                p.requires_grad_(True)

    def _generator_step(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, float]:
        total = 0.0
        with self._discriminator_frozen():
            with self._autocast():
                x0, cond, g_cond, x_t, t, s, noise = self._draws(batch, generator, generator_step=True)
            parts = micro_batches(x0.shape[0], self.config.grad_accum)
            for k, (rows, share) in enumerate(parts):
                with gradient_sync(self.generator, k == len(parts) - 1), self._autocast():
                    loss = self._generator_loss(self.generator, self.discriminator, x0[rows], cond.rows(rows),
                                                g_cond.rows(rows), x_t[rows], t[rows], s[rows], noise[rows])
                    (loss * share).backward()
                total += float(loss.detach()) * share
        grad_norm = self._step(self.g_params, self.optimizer, self.scheduler, self.config.optim.grad_clip)
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": total, "g_grad_norm": grad_norm, "lr": self.scheduler.get_last_lr()[0]}

    def _discriminator_step(self, batch: dict[str, Any], generator: torch.Generator) -> dict[str, float]:
        ac = self.config.arc
        with self._autocast():
            x0, cond, _, x_t, t, s, noise = self._draws(batch, generator, generator_step=False)
        wrong = self._wrong_conditioning(batch, cond, generator) if ac.contrastive else None
        probes = {name: torch.randn(x0.shape, generator=generator).to(x0.device)  # (B, C, T), drawn as before
                  for name in ("r1", "r2") if getattr(ac, f"{name}_weight") > 0}
        sums: dict[str, float] = {}
        parts = micro_batches(x0.shape[0], self.config.grad_accum)
        for k, (rows, share) in enumerate(parts):
            with gradient_sync(self.d_module, k == len(parts) - 1), self._autocast():
                wrong_rows = wrong.rows(rows) if wrong is not None else None
                loss, metrics = self._discriminator_forward(
                    self.generator, self.d_module, x0[rows], cond.rows(rows), wrong_rows, x_t[rows], t[rows],
                    s[rows], noise[rows], {name: probe[rows] for name, probe in probes.items()})
                (loss * share).backward()
            for key, value in {**metrics, "d_loss": float(loss.detach())}.items():
                sums[key] = sums.get(key, 0.0) + value * share
        sums["d_contrastive_used"] = float(wrong is not None)
        sums["d_grad_norm"] = self._step(self.d_params, self.d_optimizer, self.d_scheduler, ac.discriminator_grad_clip)
        return sums

    def step_flops(self, batch: dict[str, Any]) -> float:
        """The model FLOPs of one run step on `batch`, the mean of a generator and a discriminator step (they
        alternate; throughput.py): each player's losses as its step computes them and their backward to its
        weights, counted on a side computation (own draws, gradients thrown away, no state touched): backward
        passes, as FlowStage.step_flops, through the players without DDP's wrappers (no all-reduce). During
        `arc.discriminator_warmup` only D steps run, so the logged TFLOP/s there use this mean, not D's own count."""
        ac, generator = self.config.arc, torch.Generator().manual_seed(0)
        g, d = (getattr(m, "module", m) for m in (self.generator, self.d_module))

        def draws() -> tuple:
            with self._autocast():
                return self._draws(batch, generator, generator_step=False)

        def generator_step() -> None:
            with self._discriminator_frozen():
                x0, cond, _, x_t, t, s, noise = draws()
                with self._autocast():
                    loss = self._generator_loss(g, d, x0, cond, cond, x_t, t, s, noise)
                loss.backward()

        def discriminator_step() -> None:
            x0, cond, _, x_t, t, s, noise = draws()
            b = x0.shape[0]
            wrong = cond.with_prompts_permuted(torch.arange(b).roll(-1)) if ac.contrastive and b > 1 else None
            probes = {name: torch.randn(x0.shape, generator=generator).to(x0.device)
                      for name in ("r1", "r2") if getattr(ac, f"{name}_weight") > 0}
            with self._autocast():
                loss, _ = self._discriminator_forward(g, d, x0, cond, wrong, x_t, t, s, noise, probes)
            loss.backward()

        flops = (counted_flops(generator_step)[1] + counted_flops(discriminator_step)[1]) / 2
        self.optimizer.zero_grad(set_to_none=True)  # the side computation's gradients
        self.d_optimizer.zero_grad(set_to_none=True)
        return flops

    def _discriminator_loss(self, scores: tuple[torch.Tensor, ...],
                            contrastive: tuple[torch.Tensor, torch.Tensor] | None):
        """D's loss and its terms from the score maps (b, 1, P) of [real, generated, real with wrong prompts if
        contrastive, R1 probes, R2 probes (those asked for)]. `contrastive`: the (right prompt, wrong prompt) score
        maps of the contrastive term (from the first head or the second), None without one this step."""
        ac = self.config.arc
        real, fake = scores[0], scores[1]
        l_r = relativistic_discriminator_loss(real, fake)
        loss = ac.discriminator_weight * l_r
        metrics = {"d_relativistic": float(l_r.detach()), "d_real_minus_fake": float((real - fake).mean().detach())}
        k = 2
        if contrastive is not None:
            l_c = contrastive_loss(*contrastive)
            loss = loss + ac.contrastive_weight * l_c
            metrics["d_contrastive"] = float(l_c.detach())
            k += 1  # past the wrong-prompt rows
        for name, weight, base in (("r1", ac.r1_weight, real), ("r2", ac.r2_weight, fake)):
            if weight > 0:
                penalty = finite_difference_penalty(scores[k], base, ac.penalty_sigma)
                loss = loss + weight * penalty
                metrics[name] = float(penalty.detach())
                k += 1
        return loss, metrics

    def _wrong_conditioning(self, batch: dict[str, Any], cond: Conditioning, generator: torch.Generator
                            ) -> Conditioning | None:
        """The conditioning of each item's wrong prompt (`arc.contrastive_shuffle`), or None (no contrastive term
        this step). "edited" (recaptioned procedural batches): item i gets its own caption with one named attribute
        moved to another class (`captions.contradicting_caption`: "a plucked minor chord" -> "a plucked major chord"),
        encoded afresh, so D must read that attribute; the other shuffles hand it another item's prompt
        (`_wrong_prompts`)."""
        if self.config.arc.contrastive_shuffle != "edited":
            perm = self._wrong_prompts(batch, generator)
            return cond.with_prompts_permuted(perm) if perm is not None else None
        import numpy as np

        from ..procedural.captions import contradicting_caption

        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        wrong = [contradicting_caption(attributes, named, rng)[0]
                 for attributes, named in zip(batch["attributes"], batch["named_attributes"])]
        with torch.no_grad():
            return self.model.condition(wrong, batch["seconds_total"].tolist())

    def _wrong_prompts(self, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor | None:
        """The index (B,) of each item's wrong prompt (the permuting shuffles of `arc.contrastive_shuffle`), or None
        (no contrastive term this step) when a derangement is asked for and the batch has none, e.g. one caption
        repeated.

        "conflicting" (recaptioned procedural batches): item i gets a prompt drawn among the batch's captions that
        name some attribute clip i does not have ("on the left" for a clip on the right, "A4" for noise), never one
        that merely names fewer attributes ("a sine note" is true of a left-panned sine at A4, and D must not learn
        to score it low); an item without such a caption in the batch is paired with its own prompt, which gives
        its contrastive term no gradient. "within_kind": among those, only prompts that contradict the clip inside
        its kind (`conflicting_prompts(within_kind=True)`)."""
        captions, shuffle = batch["caption"], self.config.arc.contrastive_shuffle
        if shuffle == "roll":
            return torch.arange(len(captions)).roll(-1) if len(captions) > 1 else None
        if shuffle in ("conflicting", "within_kind"):
            return conflicting_prompts(batch["attributes"], batch["named_attributes"], generator,
                                       within_kind=shuffle == "within_kind")
        try:
            return prompt_derangement(captions, generator)
        except ValueError:
            return None

    @staticmethod
    def _step(params: list[nn.Parameter], optimizer, scheduler, clip: float) -> float:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return as_float(grad_norm)

    # -- state and export -----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "discriminator": self.discriminator.state_dict(), "d_optimizer": self.d_optimizer.state_dict(),
                "d_scheduler": self.d_scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(distribute_optimizer_state(state["optimizer"], self.optimizer))
        self.scheduler.load_state_dict(state["scheduler"])
        self.discriminator.load_state_dict(distribute_state_dict(state["discriminator"], self.discriminator))
        self.d_optimizer.load_state_dict(distribute_optimizer_state(state["d_optimizer"], self.d_optimizer))
        self.d_scheduler.load_state_dict(state["d_scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])

    def export(self, path: Path) -> Path:
        """The EMA generator as a post-trained model (objective `rf_denoiser`: ping-pong, 8 steps, no CFG by
        default), in arcaudio format at `path` and, for models with stable-audio-tools' external T5, also in its
        key names in `path.parent / "sao"` (model_config.json + model.safetensors)."""
        with swapped_in(self.ema, self.model):
            whole = gathered(self.model, self.export_model)  # under FSDP: rank 0's whole copy (None elsewhere)
            if whole is None:
                return Path(path)
            config = whole.config
            stored = config.objective
            config.objective = "rf_denoiser"
            try:
                if not config.conditioning.prompt.builtin:
                    save_sao(whole, Path(path).parent / "sao")
                return save_model(whole, path)
            finally:
                config.objective = stored
