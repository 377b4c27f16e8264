"""How much of a latent set's variance the procedural captions' attributes explain: a check of an autoencoder's
latents that takes seconds, before a DiT is trained on them.

    .venv/bin/python scripts/latent_semantics.py runs/tiny/latents runs/tiny/synth/manifest.jsonl

For each attribute: 1 - (mean within-class variance) / (total variance), per latent element, over the whole set.
Latents whose variance the attributes barely explain leave a text-conditioned DiT little to learn from the prompt.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np

from arcaudio.data.latents import LatentDataset


def explained_fraction(latents: np.ndarray, labels: list[str]) -> float:
    """latents (N, ...) and one label per item -> share of the per-element variance explained by the labels."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    total = latents.var(0).mean()
    within = sum(latents[idx].var(0).mean() * len(idx) for idx in groups.values()) / len(latents)
    return float(1 - within / total)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("latents")
    p.add_argument("manifest")
    args = p.parse_args()
    ds = LatentDataset(args.latents)
    rows = [json.loads(line) for line in open(args.manifest) if line.strip()]
    x = np.stack([ds[i]["latents"].numpy() for i in range(len(ds))])  # (N, C, T)
    attrs = [r["attributes"] for r in rows[: len(x)]]
    print(f"{len(x)} latents {x.shape[1:]}; per-channel std min/median/max "
          f"{x.std((0, 2)).min():.3f}/{np.median(x.std((0, 2))):.3f}/{x.std((0, 2)).max():.3f}")
    for name in ["kind", "loudness", "pan", "envelope", "pitch", "colour", "tempo", "direction", "waveform"]:
        labels = [str(a.get(name, "-")) for a in attrs]
        print(f"{name:<10} explains {100 * explained_fraction(x, labels):5.1f} % "
              f"(time-averaged latents: {100 * explained_fraction(x.mean(2), labels):5.1f} %)")


if __name__ == "__main__":
    main()
