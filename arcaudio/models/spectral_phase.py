"""Phase from magnitudes: a coherent STFT phase for a magnitude spectrogram, with no learned parameters.

A decoder that learns a phase per bin and frame gets it wrong by small, frame-to-frame random amounts, and a
partial's energy then spreads into sidebands (a 165 Hz sawtooth came back with +-43 Hz sidebands). Here the phase
is derived from the magnitudes, the way a phase vocoder with identity phase locking (Laroche and Dolson, 1999)
propagates it:

1. every local maximum of a frame's log-magnitude (within `floor_db` of the frame's strongest bin) is a partial;
   its frequency, in bins, is the vertex of the parabola through the log-magnitudes of the peak bin and its two
   neighbours (exact to ~0.01 bin for a Hann window's main lobe);
2. every bin belongs to its nearest peak and advances its phase, per hop, at that partial's frequency
   (2 pi f hop / n_fft rad), not at its own centre frequency: the partial stays one sinusoid across frames;
3. partials that start from silence get a fixed spread of initial phases (pi k^2 / bins), so that the first
   frame is not an impulse;
4. within a peak's region the bins are locked to the peak bin's phase, offset by pi (f - k) (the phase of a
   Hann-windowed sinusoid at f seen by bin k of an STFT whose frames start, not centre, at the frame position)
   and by pi per sidelobe of the window's transform between f and k (its sign alternates from lobe to lobe);
5. a peak continues the partial of the previous frame's nearest peak (so a sweep moving from bin to bin, or a
   partial half-way between two bins whose peak flips between them, stays one sinusoid): its phase is that
   partial's, advanced at the mean of the two frequencies. This recursion runs frame by frame;
6. transients: a bin that rose by ONSET_RISE_DB since the previous frame is given the phase of an impulse at the
   frame's centre (-pi k), and a partial starting there continues from that phase. Without this, a drum hit's
   energy is spread evenly over the whole window (93 ms at n_fft 4096) and its onset is lost.

Bins with no peak in their frame (silence) advance at their own centre frequency. The result is not
differentiable (peaks are picked); decoders compute it from detached magnitudes.

Measured on the true magnitudes of a 165 Hz band-limited sawtooth (STFT 2048 / hop 512): the first 10 partials
within 0.2 % of their frequencies, every sideband at least 40 dB below its partial; the analytic probes read
every attribute of 100 procedural clips re-synthesised this way as they read the originals except chord quality
(0.79) and pitch (0.95).

Shapes: magnitude (..., bins, frames) -> phase (..., bins, frames), radians, same dtype.
"""

from __future__ import annotations

import math

import torch

PEAK_FLOOR_DB = -70.0  # peaks this far below the frame's strongest bin are ignored (noise floor, silence)
ONSET_RISE_DB = 9.0  # a bin this much louder than two frames earlier starts a transient (phase reset)...
ONSET_PEAK_DB = 3.0  # ... and the next frame is not louder by this much (the rise ends here)
ONSET_FLOOR_DB = -60.0  # levels are floored this far below the clip's strongest bin
_LOG_EPS = 1e-9


def _peaks(log_mag: torch.Tensor, floor_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log-magnitudes (..., bins), bins last -> (is_peak, frequency in fractional bins), same shape."""
    k = torch.arange(log_mag.shape[-1], device=log_mag.device, dtype=log_mag.dtype)
    below = torch.cat([log_mag[..., :1] - 1.0, log_mag[..., :-1]], dim=-1)  # neighbour k - 1
    above = torch.cat([log_mag[..., 1:], log_mag[..., -1:] - 1.0], dim=-1)  # neighbour k + 1
    floor = log_mag.amax(dim=-1, keepdim=True) + floor_db / 20 * math.log(10)
    is_peak = (log_mag >= below) & (log_mag > above) & (log_mag > floor)
    curvature = below - 2 * log_mag + above
    offset = (0.5 * (below - above) / curvature.clamp(max=-1e-6)).clamp(-0.5, 0.5)
    return is_peak, torch.where(is_peak & (curvature < 0), k + offset, k.expand_as(offset))


def peak_frequencies(magnitude: torch.Tensor, floor_db: float = PEAK_FLOOR_DB) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., bins, frames) magnitudes -> (is_peak bool, frequency in fractional bins) of the same shape.

    `frequency` is the parabolic-interpolated partial frequency at peak bins and the bin index elsewhere."""
    is_peak, frequency = _peaks(torch.log(magnitude + _LOG_EPS).transpose(-1, -2), floor_db)
    return is_peak.transpose(-1, -2), frequency.transpose(-1, -2)


def _owners(is_peak: torch.Tensor) -> torch.Tensor:
    """(..., bins) bool, bins last -> index of the nearest peak bin (ties: the lower one), -1 where none."""
    bins = is_peak.shape[-1]
    k = torch.arange(bins, device=is_peak.device).expand(is_peak.shape)
    none = torch.full_like(k, -1)
    lower = torch.cummax(torch.where(is_peak, k, none), dim=-1).values  # last peak at or below k, -1 if none
    mirrored = torch.where(is_peak, bins - 1 - k, none).flip(-1)
    upper = bins - 1 - torch.cummax(mirrored, dim=-1).values.flip(-1)  # first peak at or above k, `bins` if none
    to_lower = torch.where(lower >= 0, k - lower, 2 * bins)
    to_upper = torch.where(upper < bins, upper - k, 2 * bins)
    owner = torch.where(to_lower <= to_upper, lower, upper)
    return torch.where(torch.minimum(to_lower, to_upper) < 2 * bins, owner, none)


def _nearest_peak(is_peak: torch.Tensor) -> torch.Tensor:
    """(..., bins, frames) bool -> index of the nearest peak bin (ties: the lower one), or -1 in peakless frames."""
    return _owners(is_peak.transpose(-1, -2)).transpose(-1, -2)


def _sidelobe_sign_flips(distance: torch.Tensor) -> torch.Tensor:
    """How many times the Hann window's transform W(x) = sin(pi x) / (pi x (1 - x^2)) changed sign between 0 and
    `distance` bins: none in the main lobe (|x| < 2), then one more per sidelobe."""
    return (distance.abs().floor() - 1).clamp(min=0)


def _onsets(level: torch.Tensor, hops_per_window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """levels (M, F, bins) in dB -> (onset bool (M, F, bins): a hit's best frame, ahead long (M, F, bins): hops
    from each earlier frame that reaches the hit to the hit, 0 for none)."""
    level = level.maximum(level.amax(dim=(1, 2), keepdim=True) + ONSET_FLOOR_DB)  # floored
    earlier = torch.cat([level[:, :1].expand(-1, 2, -1), level[:, :-2]], dim=1)  # t - 2
    later = torch.cat([level[:, 1:], level[:, -1:]], dim=1)  # t + 1
    # the frame where a rise ends: the window that sees a hit best, not the first one to catch its start
    onset = (level - earlier > ONSET_RISE_DB) & (later - level < ONSET_PEAK_DB)
    # the earlier frames whose windows reach the hit see it late in their windows: the same impulse, j hops after
    # their centres; phased so, their share of the hit adds up at the hit instead of smearing before it
    ahead = torch.zeros(level.shape, dtype=torch.long, device=level.device)
    for j in range(max(1, hops_per_window // 2 - 1), 0, -1):
        ahead[:, :-j] = torch.where(onset[:, j:], j, ahead[:, :-j])
    return onset, torch.where(onset, 0, ahead)


def peak_locked_phase(magnitude: torch.Tensor, n_fft: int, hop_length: int,
                      floor_db: float = PEAK_FLOOR_DB) -> torch.Tensor:
    """Phase (radians) for STFT magnitudes (..., bins, frames) of a Hann-windowed STFT of size n_fft and hop
    hop_length (torch.stft's convention), as described in the module docstring."""
    shape, bins, frames = magnitude.shape, magnitude.shape[-2], magnitude.shape[-1]
    if bins != n_fft // 2 + 1:
        raise ValueError(f"magnitude has {bins} bins; an STFT of size {n_fft} has {n_fft // 2 + 1}")
    # work frame by frame with bins last and contiguous: (M, F, bins)
    log_mag = torch.log(magnitude.detach().reshape(-1, bins, frames).transpose(1, 2).contiguous() + _LOG_EPS)
    is_peak, frequency = _peaks(log_mag, floor_db)
    owner = _owners(is_peak)  # (M, F, bins), -1 in peakless frames
    has_owner = owner >= 0
    owner = owner.clamp(min=0)
    k = torch.arange(bins, device=magnitude.device, dtype=frequency.dtype)
    partial = torch.where(has_owner, torch.gather(frequency, 2, owner), k)  # (M, F, bins): owning partial, in bins
    distance = partial - k
    offset = math.pi * (distance + _sidelobe_sign_flips(distance))  # (M, F, bins): a locked bin's phase vs its peak
    onset, ahead = _onsets(20 / math.log(10) * log_mag, n_fft // hop_length)
    rate = 2 * math.pi * hop_length / n_fft  # rad per hop per bin of frequency
    start = math.pi * k**2 / bins  # (bins,) phases of partials that begin from silence
    click = -math.pi * k  # (bins,) the phases of an impulse at the frame's centre
    k_int = torch.arange(bins, device=magnitude.device)
    # bin centres advance exactly (integer arithmetic): the phase of bins no partial owns; an impulse j hops late
    centre = start + 2 * math.pi / n_fft * torch.remainder(
        k_int * (torch.arange(1, frames + 1, device=magnitude.device)[:, None] * hop_length), n_fft).to(k.dtype)
    early = click - 2 * math.pi / n_fft * torch.remainder(k_int * hop_length * ahead, n_fft).to(k.dtype)
    fixed = torch.where(onset, click, torch.where(ahead > 0, early, centre.expand_as(early)))  # (M, F, bins)
    use_fixed = onset | (ahead > 0) | ~has_owner
    out = torch.empty_like(partial)
    psi = start + rate * partial[:, 0]  # (M, bins): phase of the partial at each peak bin, this frame
    for t in range(frames):
        if t > 0:
            # each peak continues the previous frame's partial nearest to it, at the mean of the two frequencies
            previous = torch.gather(psi, 1, owner[:, t - 1]) + rate * 0.5 * (partial[:, t] + partial[:, t - 1])
            fresh = centre[t] + rate * distance[:, t]
            psi = torch.remainder(torch.where(has_owner[:, t - 1], previous, fresh), 2 * math.pi)
        locked = torch.gather(psi, 1, owner[:, t]) + offset[:, t]
        out[:, t] = torch.where(use_fixed[:, t], fixed[:, t], locked)
        psi = torch.where(onset[:, t] & is_peak[:, t], click, psi)  # a partial born in a transient
    return out.transpose(1, 2).reshape(shape)
