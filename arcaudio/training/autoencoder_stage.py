"""Oobleck VAE training on random crops: L1 + multi-resolution STFT + KL, an optional log frame-energy term, and an
optional adversarial term
(multi-scale waveform discriminator, hinge loss, feature matching) with its own optimizer.

The exported model carries `autoencoder.latent_scale` = the RMS of the posterior means seen in training, so the
latents a DiT is trained on have about unit variance.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import save_model
from ..models.audio_discriminator import (
    MultiScaleDiscriminator,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from ..models.autoencoder import AudioAutoencoder, vae_kl
from ..models.text_to_audio import TextToAudioModel
from .audio_losses import log_energy_l1, log_envelope_loss, multi_resolution_stft_loss, spectral_loss
from .autoencoder_init import data_dependent_init
from .config import TrainConfig
from .distributed import DistInfo, wrap_ddp
from .ema import EMA, swapped_in
from .optim import build_optimizer, build_scheduler


class AutoencoderObjective(nn.Module):
    """audio (B, C, L), noise (B, latent_dim, L / ratio) -> reconstruction, KL, posterior means. The
    reconstruction is the audio (B, C, L), or in the "magnitude" domain the decoded |STFT| (B, C, bins, frames)."""

    def __init__(self, autoencoder: AudioAutoencoder, domain: str = "waveform"):
        super().__init__()
        self.autoencoder, self.domain = autoencoder, domain

    def forward(self, audio: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, std = self.autoencoder.encode_moments(audio)
        z = mean + std * noise
        recon = self.autoencoder.decoder.magnitudes(z) if self.domain == "magnitude" else self.autoencoder.decoder(z)
        return recon, vae_kl(mean, std), mean.detach()


class AutoencoderStage:
    """Optimizers and EMA of an autoencoder run. `from_scratch`: the weights are fresh, so with
    `autoencoder.data_init` the first step first rescales the conv gains on its batch (`data_dependent_init`;
    Oobleck only: the spectral autoencoder is normalised by construction)."""

    def __init__(self, model: TextToAudioModel, config: TrainConfig, info: DistInfo, from_scratch: bool = False):
        self.model, self.config, self.info = model, config, info
        self.data_init = (from_scratch and config.autoencoder.data_init
                          and model.config.autoencoder.type == "oobleck")
        ac = config.autoencoder
        ratio = model.config.autoencoder.downsampling_ratio
        if ac.crop_samples % ratio:
            raise ValueError(f"autoencoder.crop_samples {ac.crop_samples} must be a multiple of the downsampling "
                             f"ratio {ratio}")
        if ac.envelope_weight > 0 and (not ac.envelope_hops or max(ac.envelope_hops) > ac.crop_samples
                                       or min(ac.envelope_hops) < 1):
            raise ValueError(f"autoencoder.envelope_hops {ac.envelope_hops} must be frame sizes in "
                             f"[1, crop_samples={ac.crop_samples}]")
        if ac.domain == "magnitude":
            ae_config = model.config.autoencoder
            if ae_config.type != "spectral" or ae_config.phase != "peak-locked":
                raise ValueError("autoencoder.domain=magnitude trains decoders whose phase follows from their "
                                 "magnitudes (autoencoder type 'spectral', phase 'peak-locked'); this one is "
                                 f"type {ae_config.type!r}" + (f", phase {ae_config.phase!r}"
                                                               if ae_config.type == "spectral" else ""))
            if ac.adversarial_weight > 0:
                raise ValueError("autoencoder.domain=magnitude has no waveform for the discriminator; set "
                                 "autoencoder.adversarial_weight=0 or autoencoder.domain=waveform")
        model.to(info.device)
        model.requires_grad_(False)
        ae = model.autoencoder.requires_grad_(True).train()
        self.objective = wrap_ddp(AutoencoderObjective(ae, ac.domain), info)
        self.optimizer = build_optimizer(ae.parameters(), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.steps, config.optim)
        self.ema = EMA(model, config.ema_decay, config.ema_warmup_power) if config.ema_decay > 0 else None
        self.discriminator = self.d_optimizer = None
        if ac.adversarial_weight > 0:
            disc = MultiScaleDiscriminator(model.config.audio_channels).to(info.device)
            self.discriminator = disc
            self.d_module = wrap_ddp(disc, info)
            self.d_optimizer = build_optimizer(disc.parameters(), config.optim, lr=ac.discriminator_lr)
        self.latent_sq = torch.zeros((), dtype=torch.float64)  # running mean of the posterior means' square
        self.latent_count = 0

    def train_step(self, batch: dict[str, Any], step: int, generator: torch.Generator) -> dict[str, float]:
        ac, device = self.config.autoencoder, self.info.device
        audio = batch["audio"].to(device)
        if step == 0 and self.data_init:
            self._initialise(audio)
        ratio = self.model.config.autoencoder.downsampling_ratio
        noise = torch.randn(audio.shape[0], self.model.config.autoencoder.latent_dim, audio.shape[-1] // ratio,
                            generator=generator).to(device)
        adversarial = self.discriminator is not None and step >= ac.adversarial_start
        bf16 = self.config.precision == "bf16"
        metrics: dict[str, float] = {}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            recon, kl, mean = self.objective(audio, noise)
        recon = recon.float()
        if ac.domain == "magnitude":
            target = self.model.autoencoder.encoder.magnitudes(audio)  # (B, C, bins, F)
            l1 = recon.new_zeros(())
            stft = spectral_loss(recon, target, eps=ac.stft_log_eps)
        else:
            l1 = F.l1_loss(recon, audio)
            stft = multi_resolution_stft_loss(recon, audio, ac.stft_sizes, eps=ac.stft_log_eps)
        loss = ac.l1_weight * l1 + ac.stft_weight * stft + ac.kl_weight * kl
        if ac.envelope_weight > 0:
            envelope = (log_energy_l1(recon.pow(2).sum(2), target.pow(2).sum(2)) if ac.domain == "magnitude"
                        else log_envelope_loss(recon, audio, ac.envelope_hops))  # frame energies (B, C, F)
            loss = loss + ac.envelope_weight * envelope
            metrics["envelope"] = float(envelope.detach())
        if adversarial:
            self.discriminator.requires_grad_(False)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                fake_out, real_out = self.d_module(recon), self.d_module(audio)
            gen_adv = hinge_generator_loss(fake_out)
            fm = feature_matching_loss(real_out, fake_out)
            loss = loss + ac.adversarial_weight * (gen_adv + ac.feature_matching_weight * fm)
            metrics.update({"gen_adv": float(gen_adv.detach()), "feature_matching": float(fm.detach())})
        loss.backward()
        clip = self.config.optim.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.autoencoder.parameters(),
                                                   clip if clip > 0 else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if adversarial:
            self.discriminator.requires_grad_(True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                d_loss = hinge_discriminator_loss(self.d_module(audio), self.d_module(recon.detach()))
            d_loss.backward()
            self.d_optimizer.step()
            self.d_optimizer.zero_grad(set_to_none=True)
            metrics["dis_loss"] = float(d_loss.detach())
        if self.ema is not None:
            self.ema.update(self.model)
        self.latent_sq += mean.double().pow(2).mean().cpu()
        self.latent_count += 1
        metrics.update({"loss": float(loss.detach()), "l1": float(l1.detach()), "stft": float(stft.detach()),
                        "kl": float(kl.detach()),
                        "grad_norm": float(grad_norm), "lr": self.scheduler.get_last_lr()[0]})
        return metrics

    def _initialise(self, audio: torch.Tensor) -> None:
        """Data-dependent init on rank 0's batch, broadcast to every rank; the EMA restarts from the result."""
        data_dependent_init(self.model.autoencoder, audio, residual_gain=self.config.autoencoder.residual_gain)
        if self.info.enabled:
            import torch.distributed as dist

            for p in self.model.autoencoder.parameters():
                dist.broadcast(p.data, src=0)
        if self.ema is not None:
            self.ema = EMA(self.model, self.config.ema_decay, self.config.ema_warmup_power)

    def latent_scale(self) -> float:
        """RMS of the posterior means over training so far (1.0 before any step)."""
        return math.sqrt(float(self.latent_sq) / self.latent_count) if self.latent_count else 1.0

    def state_dict(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "ema": self.ema.state_dict() if self.ema is not None else {},
                 "latent_sq": self.latent_sq, "latent_count": self.latent_count}
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["d_optimizer"] = self.d_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.latent_sq, self.latent_count = state["latent_sq"].double(), int(state["latent_count"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])

    def export(self, path: Path) -> Path:
        """Save the model (EMA autoencoder weights) with latent_scale set from the training latents."""
        ae_config = self.model.config.autoencoder
        stored = ae_config.latent_scale
        ae_config.latent_scale = self.latent_scale()
        try:
            with swapped_in(self.ema, self.model):
                return save_model(self.model, path)
        finally:
            ae_config.latent_scale = stored
