"""The partials codec: an autoencoder with no learned weights, for the built-in model's sound world.

A learned spectral decoder has to draw each partial as a sharp peak at an exact frequency out of a few dozen latent
numbers; trained for CPU minutes it did not (a 165 Hz sawtooth came back 30 % off in pitch, chord quality at
chance). This codec writes what a tone is made of into the latent directly, as a parametric audio coder does
(sinusoids + noise, as in MPEG-4 HILN), and the DiT learns to generate those parameters:

- analysis, per STFT frame (Hann, n_fft, hop; one latent frame per STFT frame): the mid spectrum
  sqrt(|L|^2 + |R|^2) (a panned mono source's own spectrum, with constant-power pans);
  - the `partials` strongest spectral peaks standing PROMINENCE_DB above their band's median, each as a
    frequency (the vertex of the parabola through the log-magnitudes around the peak bin) and the vertex magnitude,
    listed in order of frequency (unused slots: silent, at the last used slot's frequency);
  - the noise floor: the median power of `noise_bands` log-spaced bands (a median ignores the partials in them),
    divided by ln 2 (the median of an exponential distribution);
  - the stereo balance: the frame's left / right energy ratio in dB;
- synthesis: the same spectrum redrawn (each partial as the Hann window's main lobe and first sidelobes around its
  frequency, the noise floor interpolated over log-frequency between band centres), its phase from the partials'
  frequencies integrated over frames (a partial is one sinusoid from frame to frame) and from a fixed pseudo-random
  table for noise bins, reset to an impulse where the noise floor jumps (drum hits); the channels are the mid
  spectrum under constant-power gains from the balance; inverse STFT.

- the fine envelope: the level of each of `envelope_blocks` blocks per hop; the decoded audio is rescaled block by
  block to it (an STFT frame smears a drum hit over its whole window; this puts the onset back).

Latent channels (each about unit scale): [partial frequencies (log2(f / 440 Hz) / 2) x partials,
partial magnitudes ((ln |S| - 2) / 3) x partials, noise levels ((ln |S| - 0) / 3) x noise_bands, balance (dB / 15),
block levels ((dB + 30) / 20) x envelope_blocks].
Shapes: audio (B, 2, L), L a multiple of hop -> latents (B, 2 * partials + noise_bands + 1 + envelope_blocks,
L / hop) and back.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..config import AutoencoderConfig
from .spectral_phase import _sidelobe_sign_flips

PROMINENCE_DB = 14.0  # a partial stands this far above its band's median power (noise rarely does: p ~ e^-17)
FLOOR_MAGNITUDE = 1e-3  # |S| below this is silence
BAND_EDGES_HZ = (40.0, 20000.0)  # noise bands split this range evenly in log-frequency
SIDE_DB_MAX = 30.0  # balance clipped to +-30 dB
KERNEL_BINS = 4  # a partial is drawn over +-4 bins around its frequency (main lobe +-2, first sidelobes)
ONSET_RISE_DB = 9.0  # a noise bin this much louder than a frame before starts a hit: its phase is an impulse
FREQ_SCALE, AMP_CENTRE, AMP_SCALE, NOISE_SCALE, BALANCE_SCALE = 2.0, 2.0, 3.0, 3.0, 15.0
LEVEL_FLOOR_DB, LEVEL_CENTRE_DB, LEVEL_SCALE_DB = -80.0, -30.0, 20.0  # fine envelope: floor, and its scaling
GAIN_RANGE_DB = 40.0  # the fine envelope moves the decoded audio's level by at most this
_TINY = 1e-12


def latent_layout(config: AutoencoderConfig) -> dict[str, slice]:
    """Which latent channels hold what."""
    k, b, e = config.partials, config.noise_bands, config.envelope_blocks
    return {"frequency": slice(0, k), "magnitude": slice(k, 2 * k), "noise": slice(2 * k, 2 * k + b),
            "balance": slice(2 * k + b, 2 * k + b + 1), "envelope": slice(2 * k + b + 1, 2 * k + b + 1 + e)}


def block_levels(audio: torch.Tensor, blocks_per_hop: int, hop: int) -> torch.Tensor:
    """audio (B, C, L) -> level in dB of each of the hop's `blocks_per_hop` blocks (mean square over the channels),
    (B, L / hop, blocks_per_hop); the fine envelope that onsets and decays are restored from."""
    b, _, length = audio.shape
    size = hop // blocks_per_hop
    energy = audio.float().pow(2).mean(1).reshape(b, length // size, size).mean(-1)  # (B, blocks)
    return 10 * torch.log10(energy + 1e-10).reshape(b, length // hop, blocks_per_hop)


def _band_edges(config: AutoencoderConfig, sample_rate: float) -> list[int]:
    """Bin edges of the noise bands (noise_bands + 1 values; the first band starts at bin 0, the last ends at
    Nyquist)."""
    lo, hi = BAND_EDGES_HZ
    bins = config.n_fft // 2 + 1
    hz = [lo * (hi / lo) ** (i / config.noise_bands) for i in range(config.noise_bands + 1)]
    edges = [min(bins, max(1, round(f * config.n_fft / sample_rate))) for f in hz]
    edges[0], edges[-1] = 0, bins
    return edges


def hann_kernel(distance: torch.Tensor) -> torch.Tensor:
    """|W(d)| / W(0) of a Hann window's transform at `distance` bins: |sinc(d) / (1 - d^2)|."""
    d = distance.abs()
    near_one = (d - 1).abs() < 1e-4  # 0 / 0 there; the limit is 1/2
    at_zero = d < 1e-6  # sinc(0) = 1, written out: ONNX exporters turn torch.sinc into sin(x) / x, NaN at 0
    angle = math.pi * torch.where(at_zero, torch.ones_like(d), d)
    sinc = torch.where(at_zero, torch.ones_like(d), torch.sin(angle) / angle)
    value = sinc / torch.where(near_one, torch.ones_like(d), 1 - d**2)
    return torch.where(near_one, torch.full_like(d, 0.5), value.abs())


def _stft(audio: torch.Tensor, config: AutoencoderConfig) -> torch.Tensor:
    """audio (N, L) -> complex STFT (N, bins, L / hop), centred frames (the padding-only last frame dropped)."""
    window = torch.hann_window(config.n_fft, device=audio.device)
    spec = torch.stft(audio.float(), config.n_fft, config.hop_length, window=window, return_complex=True)
    return spec[..., : audio.shape[-1] // config.hop_length]


class PartialsEncoder(nn.Module):
    """audio (B, 2, L) -> (B, 2 * latent_dim, L / hop): the parameters (module docstring) | a tiny posterior scale."""

    def __init__(self, config: AutoencoderConfig, sample_rate: int):
        super().__init__()
        self.config, self.sample_rate = config, sample_rate

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        c = self.config
        b, channels, length = audio.shape
        power = _stft(audio.reshape(b * channels, length), c).abs().pow(2)  # (B * 2, bins, F)
        power = power.reshape(b, channels, *power.shape[1:])
        left, right = power[:, 0], power[:, -1]  # (B, bins, F)
        mid = (left + right).sqrt().transpose(1, 2)  # (B, F, bins): |S| of the source
        noise = self._noise_floor(mid)  # (B, F, bands) |S|
        balance = 10 * torch.log10((left.sum(1) + _TINY) / (right.sum(1) + _TINY))  # (B, F)
        latents = torch.cat([
            *self.peak_channels(mid),
            torch.log(noise.clamp_min(FLOOR_MAGNITUDE)) / NOISE_SCALE,
            balance.clamp(-SIDE_DB_MAX, SIDE_DB_MAX)[..., None] / BALANCE_SCALE,
            (block_levels(audio, c.envelope_blocks, c.hop_length).clamp_min(LEVEL_FLOOR_DB) - LEVEL_CENTRE_DB)
            / LEVEL_SCALE_DB,
        ], dim=-1).transpose(1, 2)  # (B, D, F)
        return torch.cat([latents, torch.full_like(latents, -20.0)], dim=1)  # std = softplus(-20) + 1e-4

    def peak_channels(self, mid: torch.Tensor) -> list[torch.Tensor]:
        """mid |S| (B, F, bins) -> the latent channels of its partials: [frequencies (B, F, K), magnitudes
        (B, F, K)], scaled (module docstring)."""
        frequency, magnitude = self._partials(mid)  # (B, F, K) each
        return [self.frequency_channel(frequency), self.magnitude_channel(magnitude)]

    def frequency_channel(self, frequency: torch.Tensor) -> torch.Tensor:
        """Frequencies in bins -> log2(f / 440 Hz) / FREQ_SCALE."""
        return torch.log2(frequency * self.sample_rate / self.config.n_fft / 440.0) / FREQ_SCALE

    @staticmethod
    def magnitude_channel(magnitude: torch.Tensor) -> torch.Tensor:
        """|S| -> (ln |S| - AMP_CENTRE) / AMP_SCALE, silence (0) at the floor."""
        return (torch.log(magnitude.clamp_min(FLOOR_MAGNITUDE)) - AMP_CENTRE) / AMP_SCALE

    def _band_medians(self, mid: torch.Tensor) -> torch.Tensor:
        """mid |S| (B, F, bins) -> the median power of each noise band (B, F, bands)."""
        edges = _band_edges(self.config, self.sample_rate)
        power = mid.pow(2)
        return torch.stack([power[..., lo:hi].median(dim=-1).values for lo, hi in zip(edges[:-1], edges[1:])], -1)

    def _noise_floor(self, mid: torch.Tensor) -> torch.Tensor:
        return (self._band_medians(mid) / math.log(2)).sqrt()  # (B, F, bands) |S|

    def _partials(self, mid: torch.Tensor, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mid |S| (B, F, bins) -> (frequencies in fractional bins, vertex magnitudes), (B, F, K) each for the
        K = `count` (default config.partials) strongest peaks, in order of frequency; unused slots are silent
        (magnitude 0) at the last used slot's frequency (bin 1 if none)."""
        c = self.config
        count = c.partials if count is None else count
        bins = mid.shape[-1]
        log_mag = torch.log(mid + _TINY)
        below = torch.cat([log_mag[..., :1] - 1, log_mag[..., :-1]], dim=-1)
        above = torch.cat([log_mag[..., 1:], log_mag[..., -1:] - 1], dim=-1)
        edges = _band_edges(c, self.sample_rate)
        band_of_bin = torch.bucketize(torch.arange(bins, device=mid.device),
                                      torch.tensor(edges[1:-1], device=mid.device), right=True)
        median = self._band_medians(mid)[..., band_of_bin]  # (B, F, bins) power
        prominent = 2 * log_mag > torch.log(median + _TINY) + PROMINENCE_DB / 10 * math.log(10)
        is_peak = (log_mag >= below) & (log_mag > above) & prominent & (mid > FLOOR_MAGNITUDE)
        is_peak[..., 0] = False
        curvature = below - 2 * log_mag + above
        offset = (0.5 * (below - above) / curvature.clamp(max=-1e-6)).clamp(-0.5, 0.5)
        vertex = log_mag - 0.25 * (below - above) * offset  # the parabola's peak value
        score = torch.where(is_peak, vertex, torch.full_like(vertex, -1e9))
        top = score.topk(count, dim=-1)  # (B, F, K) strongest first
        used = top.values > -1e8
        k = top.indices.to(mid.dtype)
        frequency = torch.where(used, k + torch.gather(offset, -1, top.indices), torch.full_like(k, 1e9))
        order = frequency.argsort(dim=-1)
        frequency, used = frequency.gather(-1, order), used.gather(-1, order)
        magnitude = torch.where(used, torch.gather(vertex, -1, top.indices).gather(-1, order).exp(),
                                torch.zeros_like(frequency))
        last = torch.where(used, frequency, torch.zeros_like(frequency)).amax(dim=-1, keepdim=True).clamp_min(1.0)
        return torch.where(used, frequency, last.expand_as(frequency)), magnitude


class PartialsDecoder(nn.Module):
    """latents (B, latent_dim, F) -> audio (B, 2, F * hop)."""

    def __init__(self, config: AutoencoderConfig, sample_rate: int):
        super().__init__()
        self.config, self.sample_rate = config, sample_rate

    def magnitudes(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """latents (B, D, F) -> (mid |S| (B, F, bins), partial ownership mask (B, F, bins), partial phase
        (B, F, bins), per-channel gains (B, 2, F))."""
        return self.render(*self.synthesis_parameters(latents))

    def synthesis_parameters(self, latents: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """latents (B, D, F) -> (partial frequencies in bins (B, F, K), their |S| (B, F, K; 0: silent), noise band
        |S| (B, F, bands; 0: silent), stereo balance in dB (B, F))."""
        c = self.config
        layout = latent_layout(c)
        x = latents.float()
        frequency = (440.0 * 2 ** (FREQ_SCALE * x[:, layout["frequency"]]) * c.n_fft / self.sample_rate)  # bins
        magnitude = torch.exp(AMP_SCALE * x[:, layout["magnitude"]] + AMP_CENTRE).transpose(1, 2)  # (B, F, K)
        magnitude = torch.where(magnitude > 1.001 * FLOOR_MAGNITUDE, magnitude, torch.zeros_like(magnitude))
        return frequency.transpose(1, 2), magnitude, self.noise_levels(x), BALANCE_SCALE * x[:, layout["balance"]][:, 0]

    def noise_levels(self, x: torch.Tensor) -> torch.Tensor:
        """latents (B, D, F) -> noise band |S| (B, F, bands), 0 where silent."""
        noise = torch.exp(NOISE_SCALE * x[:, self.layout["noise"]]).transpose(1, 2)  # (B, F, bands) |S|
        return torch.where(noise > 1.001 * FLOOR_MAGNITUDE, noise, torch.zeros_like(noise))

    @property
    def layout(self) -> dict[str, slice]:
        return latent_layout(self.config)

    def render(self, frequency: torch.Tensor, magnitude: torch.Tensor, noise: torch.Tensor, balance: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Partials (frequencies in bins (B, F, K), |S| (B, F, K)), noise bands (B, F, bands) and the balance in dB
        (B, F) -> (mid |S| (B, F, bins), partial ownership mask (B, F, bins), partial phase (B, F, bins),
        per-channel gains (B, 2, F)). Each slot k is one sinusoid from frame to frame."""
        bins = self.config.n_fft // 2 + 1
        hop, n_fft = self.config.hop_length, self.config.n_fft
        frequency = frequency.clamp(0.0, bins - 1.0)  # (B, F, K)
        # partial phases: each slot's frequency integrated over frames (midpoint rule)
        rate = 2 * math.pi * hop / n_fft
        steps = torch.cat([frequency[:, :1], 0.5 * (frequency[:, 1:] + frequency[:, :-1])], dim=1)
        slot_phase = torch.remainder(torch.cumsum(rate * steps, dim=1), 2 * math.pi)  # (B, F, K)
        mid = self._noise_spectrum(noise, bins)  # (B, F, bins)
        power = mid.pow(2)
        base = frequency.floor().long()
        indices, values, phases = [], [], []  # every (offset d, slot) pair's bin, |S| and phase there
        for d in range(-KERNEL_BINS + 1, KERNEL_BINS + 1):
            index = (base + d).clamp(0, bins - 1)  # (B, F, K)
            distance = index.to(frequency.dtype) - frequency
            contribution = magnitude * hann_kernel(distance) * ((base + d >= 0) & (base + d < bins))
            power.scatter_add_(-1, index, contribution.pow(2))
            indices.append(index)
            values.append(contribution)
            phases.append(slot_phase + _hann_sign_phase(distance))
        index, value = torch.cat(indices, -1), torch.cat(values, -1)  # (B, F, P), P = offsets x slots
        # the loudest pair owns a bin (the first in (d, slot) order among equals), in whole-tensor scatters: a loop
        # over slots made a graph the ONNX exporter took minutes to optimise at 48 slots
        best = torch.zeros_like(power).scatter_reduce(-1, index, value, reduce="amax")  # (B, F, bins)
        pairs = value.shape[-1]
        rank = torch.arange(pairs, 0, -1, device=value.device).expand_as(index)  # earlier pair: higher rank
        claims = torch.where(value.eq(best.gather(-1, index)) & (value > 0), rank, torch.zeros_like(rank))
        winner = torch.zeros_like(power, dtype=torch.long).scatter_reduce(-1, index, claims, reduce="amax")
        owned = winner > 0  # (B, F, bins)
        phase = torch.cat(phases, -1).gather(-1, (pairs - winner).clamp(0, pairs - 1))
        phase = torch.where(owned, phase, torch.zeros_like(phase))
        ratio = 10 ** (balance / 20)  # left / right amplitude
        gains = torch.stack([ratio, torch.ones_like(ratio)], 1) / (1 + ratio**2).sqrt()[:, None]  # (B, 2, F)
        return power.sqrt(), owned, phase, gains

    def _noise_spectrum(self, noise: torch.Tensor, bins: int) -> torch.Tensor:
        """Band |S| (B, F, bands) -> per-bin |S| (B, F, bins), interpolated in log-power over log-frequency between
        the bands' centres (flat beyond the outer centres)."""
        c = self.config
        hz = torch.arange(bins, device=noise.device, dtype=noise.dtype) * self.sample_rate / c.n_fft
        lo, hi = BAND_EDGES_HZ
        centres = torch.tensor([lo * (hi / lo) ** ((i + 0.5) / c.noise_bands) for i in range(c.noise_bands)],
                               device=noise.device, dtype=noise.dtype)
        position = ((torch.log(hz.clamp_min(1.0)) - centres.log()[0]) / (centres.log()[1] - centres.log()[0]))
        position = position.clamp(0, c.noise_bands - 1)  # (bins,) fractional band index
        i0 = position.floor().long().clamp(max=c.noise_bands - 2) if c.noise_bands > 1 else position.long()
        if c.noise_bands == 1:
            return noise[..., :1].expand(*noise.shape[:-1], bins)
        w = (position - i0).clamp(0, 1)
        log_power = torch.log(noise.pow(2) + _TINY).clamp_min(math.log(_TINY))  # never -inf (0 x -inf is NaN)
        interpolated = log_power[..., i0] * (1 - w) + log_power[..., i0 + 1] * w
        return torch.where(noise[..., i0].eq(0) & noise[..., i0 + 1].eq(0), torch.zeros_like(interpolated),
                           (0.5 * interpolated).exp())

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        c = self.config
        mid, owned, partial_phase, gains = self.magnitudes(latents)  # (B, F, bins) x3, (B, 2, F)
        b, frames, bins = mid.shape
        k = torch.arange(bins, device=mid.device, dtype=mid.dtype)
        noise_phase = 2 * math.pi * _phase_table(frames, bins).to(mid.device)  # fixed per bin and frame: noise
        level = 20 * torch.log10(mid + _TINY)
        before = torch.cat([torch.full_like(level[:, :1], -400.0), level[:, :-1]], dim=1)
        after = torch.cat([level[:, 1:], level[:, -1:]], dim=1)
        hit = (level - before > ONSET_RISE_DB) & (after - level < 3.0) & ~owned
        click = -math.pi * k  # an impulse at the frame's centre
        # the frame before a hit sees it late in its window: the same impulse, one hop after its centre
        early = click - 2 * math.pi / c.n_fft * torch.remainder(torch.arange(bins, device=mid.device) * c.hop_length,
                                                                 c.n_fft).to(mid.dtype)
        ahead = torch.cat([hit[:, 1:], torch.zeros_like(hit[:, :1])], dim=1) & ~hit & ~owned
        phase = torch.where(owned, partial_phase, torch.where(hit, click, torch.where(ahead, early, noise_phase)))
        parts = []  # the spectrum's real and imaginary parts, kept apart until the inverse FFT (ONNX has no complex)
        for part in (mid * torch.cos(phase), mid * torch.sin(phase)):  # (B, F, bins)
            part = part.transpose(1, 2)[:, None] * gains[:, :, None, :]  # (B, 2, bins, F)
            parts.append(torch.cat([part, part[..., -1:]], dim=-1).reshape(b * 2, bins, frames + 1))
        window = torch.hann_window(c.n_fft, device=mid.device)
        audio = overlap_add_istft(*parts, c.n_fft, c.hop_length, window, frames * c.hop_length)
        return self._shape_envelope(audio.reshape(b, 2, frames * c.hop_length), latents)

    def _shape_envelope(self, audio: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """Rescale audio (B, 2, L) so that its fine envelope (`block_levels`) matches the latents': a gain per block
        (within +-GAIN_RANGE_DB), interpolated linearly between block centres. The STFT frames smear a hit over
        their window (186 ms at n_fft 8192); this puts its onset back within a block (11.6 ms at hop 2048)."""
        c = self.config
        b, _, length = audio.shape
        want = LEVEL_CENTRE_DB + LEVEL_SCALE_DB * latents.float()[:, self.layout["envelope"]]  # (B, E, F) dB
        want = want.transpose(1, 2).reshape(b, -1)  # (B, blocks) in time order
        have = block_levels(audio, c.envelope_blocks, c.hop_length).reshape(b, -1)
        silent = want <= LEVEL_FLOOR_DB + 0.5
        gain_db = torch.where(silent, -GAIN_RANGE_DB, want - have).clamp(-GAIN_RANGE_DB, GAIN_RANGE_DB)
        gain = 10 ** (gain_db / 20)  # (B, blocks)
        size = c.hop_length // c.envelope_blocks
        centres = (torch.arange(gain.shape[1], device=audio.device, dtype=audio.dtype) + 0.5) * size
        t = torch.arange(length, device=audio.device, dtype=audio.dtype)
        position = ((t - centres[0]) / size).clamp(0, gain.shape[1] - 1)
        i0 = position.floor().long().clamp(max=max(gain.shape[1] - 2, 0))
        w = (position - i0)[None]
        per_sample = gain[:, i0] * (1 - w) + gain[:, (i0 + 1).clamp(max=gain.shape[1] - 1)] * w  # (B, L)
        return audio * per_sample[:, None]


@functools.lru_cache(maxsize=8)
def _phase_table(frames: int, bins: int) -> torch.Tensor:
    """The decoder's fixed pseudo-random noise phases (frames, bins) in [0, 1), the same on every call (and a
    constant in an exported graph)."""
    return torch.rand(frames, bins, generator=torch.Generator().manual_seed(1234))


def overlap_add_istft(real: torch.Tensor, imag: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor,
                      length: int) -> torch.Tensor:
    """torch.istft(real + i imag, n_fft, hop, window=window, center=True, length=length) written with an inverse
    real FFT and overlap-add of n_fft / hop shifted segments, which ONNX exporters convert (istft and most complex
    arithmetic they do not). real, imag (N, n_fft // 2 + 1, F) -> (N, length)."""
    if n_fft % hop:
        raise ValueError(f"overlap_add_istft needs n_fft a multiple of hop, got {n_fft} and {hop}")
    _, _, frames = real.shape
    r = n_fft // hop
    spec = torch.complex(real.transpose(1, 2), imag.transpose(1, 2))  # (N, F, bins)
    pieces = torch.fft.irfft(spec, n=n_fft, dim=-1) * window  # (N, F, n_fft)

    def overlap_add(x: torch.Tensor) -> torch.Tensor:  # (N, F, n_fft) -> (N, (F + r - 1) * hop)
        segments = x.reshape(x.shape[0], frames, r, hop)
        total = (frames + r - 1) * hop
        return sum(torch.nn.functional.pad(segments[:, :, j].reshape(x.shape[0], frames * hop),
                                           (j * hop, total - j * hop - frames * hop)) for j in range(r))

    audio = overlap_add(pieces)  # (N, (F + r - 1) * hop)
    envelope = overlap_add(window.pow(2).expand(1, frames, n_fft))  # (1, ...)
    start = n_fft // 2  # center=True: the first frame is centred on sample 0
    audio, envelope = audio[:, start:start + length], envelope[:, start:start + length]
    return audio / torch.where(envelope > 1e-11, envelope, torch.ones_like(envelope))


def _hann_sign_phase(distance: torch.Tensor) -> torch.Tensor:
    """The phase of bin k relative to its partial at f (distance = k - f): pi (f - k) from the frame's start, plus
    pi for each sign change of the Hann transform (one per sidelobe beyond the main lobe)."""
    return -math.pi * distance + math.pi * _sidelobe_sign_flips(distance)
