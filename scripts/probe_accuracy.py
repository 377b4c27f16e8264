"""Per-attribute accuracy of the analytic probes on synthesised clips, next to chance (a uniform guess among the
classes the clip's kind allows).

    .venv/bin/python scripts/probe_accuracy.py            # 1000 clean clips
    .venv/bin/python scripts/probe_accuracy.py --degrade  # white noise at -30 dB re the signal + 8 kHz low-pass
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from arcaudio.procedural.probes import probe_all
from arcaudio.procedural.synth import ATTRIBUTE_VALUES, SAMPLE_RATE, allowed_values, make_clip, probed_attributes


def degrade(audio: np.ndarray, sample_rate: int, rng: np.random.Generator, snr_db: float = 30.0,
            cutoff_hz: float = 8000.0) -> np.ndarray:
    """Add independent white noise per channel at `snr_db` below the clip's mean power, then a zero-phase
    2nd-order Butterworth-magnitude low-pass at `cutoff_hz`."""
    x = np.asarray(audio, dtype=np.float64)
    noise_power = np.mean(x**2) * 10.0 ** (-snr_db / 10)
    x = x + rng.standard_normal(x.shape) * np.sqrt(noise_power)
    freq = np.fft.rfftfreq(x.shape[-1], 1.0 / sample_rate)
    response = 1.0 / np.sqrt(1.0 + (freq / cutoff_hz) ** 4)
    return np.fft.irfft(np.fft.rfft(x, axis=-1) * response, x.shape[-1], axis=-1)


def evaluate(job: tuple[int, int, bool]) -> tuple[dict, dict]:
    seed, index, degraded = job
    audio, attributes, _ = make_clip(seed, index)
    if degraded:
        audio = degrade(audio, SAMPLE_RATE, np.random.default_rng([seed, index, 1]))
    return attributes, probe_all(audio, SAMPLE_RATE, probed_attributes(attributes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="number of clips")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--degrade", action="store_true", help="add -30 dB white noise and an 8 kHz low-pass")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--errors", type=int, default=0, help="print up to this many misreadings per attribute")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    jobs = [(args.seed, i, args.degrade) for i in range(args.n)]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(evaluate, jobs, chunksize=16))
    right, total, chance = collections.Counter(), collections.Counter(), collections.Counter()
    confusions = collections.defaultdict(collections.Counter)
    for (attributes, found), (_, index, _) in zip(results, jobs):
        for name, value in found.items():
            total[name] += 1
            chance[name] += 1 / len(allowed_values(attributes["kind"], name))
            right[name] += value == attributes[name]
            if value != attributes[name]:
                confusions[name][(attributes[name], value)] += 1
                if sum(confusions[name].values()) <= args.errors:
                    print(f"  clip {index}: {name} {attributes[name]!r} read as {value!r}  {attributes}")
    title = "degraded (-30 dB white noise, 8 kHz low-pass)" if args.degrade else "clean"
    print(f"probe accuracy on {args.n} {title} clips (seed {args.seed}), {time.perf_counter() - t0:.1f} s")
    print(f"{'attribute':<11}{'clips':>7}{'accuracy':>10}{'chance':>8}  most common confusions (true -> read)")
    for name in ATTRIBUTE_VALUES:
        if total[name]:
            common = ", ".join(f"{t}->{r} x{c}" for (t, r), c in confusions[name].most_common(3))
            print(f"{name:<11}{total[name]:>7}{right[name] / total[name]:>10.1%}"
                  f"{chance[name] / total[name]:>8.1%}  {common}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
