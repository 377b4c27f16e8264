"""Which attributes of a prompt an ARC run's discriminator reads (arcaudio/eval/discriminator_reading.py).

    .venv/bin/python scripts/discriminator_reading.py RUN [RUN ...] --data LATENTS [--clips 192] \
        [--levels 0.2 0.5 0.8] [--json out.json]

RUN: an `arcaudio arc` run folder (config.json + checkpoint.pt: the discriminator is read from the checkpoint);
LATENTS: the procedural set's latents (`arcaudio encode` of an `arcaudio synth` manifest), e.g. the run's --data.
Prints, per run and re-noise level, the share of minimal caption pairs (one attribute moved) that D orders right.
`--head contrastive` reads a run's second head instead (`arc.contrastive_head=separate`); by default the head the
generator is trained against.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from arcaudio.data.latents import LatentDataset  # noqa: E402
from arcaudio.eval.discriminator_reading import discriminator_reading, minimal_pairs  # noqa: E402
from arcaudio.loading import load  # noqa: E402
from arcaudio.models.arc_discriminator import ARCDiscriminator, resolve_exit_layer  # noqa: E402
from arcaudio.training.config import TrainConfig  # noqa: E402


def run_discriminator(run: Path) -> tuple[object, ARCDiscriminator]:
    """(the flow the run post-trained, whose frozen conditioners both players use; the run's discriminator)."""
    config = TrainConfig.from_dict(json.loads((run / "config.json").read_text())["train"])
    if config.stage != "arc":
        raise ValueError(f"{run} is a {config.stage!r} run; an ARC run has a discriminator")
    model = load(config.model)
    ac = config.arc
    d = ARCDiscriminator(model.config.dit, resolve_exit_layer(model.config.dit.depth, ac.exit_layer, ac.depth_fraction),
                         ac.soft_clip_scale, contrastive_head=ac.contrastive_head == "separate")
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["stage"]["discriminator"]
    d.load_state_dict(state)
    return model, d.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--clips", type=int, default=192)
    p.add_argument("--levels", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--head", choices=["main", "contrastive"], default="main",
                   help="which head's scores to read (contrastive: runs with arc.contrastive_head=separate)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = LatentDataset(args.data)
    if any("attributes" not in m for m in data.metadata):
        raise SystemExit(f"{args.data}: items without `attributes`; encode a procedural-set manifest (arcaudio synth)")
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(data), min(args.clips, len(data)), replace=False).tolist()
    pairs = minimal_pairs([data.metadata[i]["attributes"] for i in chosen], rng)
    latents, seconds = data.latents[chosen], data.seconds_total[chosen].tolist()
    report = {}
    for run in args.runs:
        model, d = run_discriminator(run)
        if args.head == "contrastive":
            if d.contrastive_head is None:
                raise SystemExit(f"{run}: its discriminator has one head (arc.contrastive_head=shared); "
                                 "use --head main")
            def scorer(x, s, cond, d=d):
                return d(x, s, cond, both_heads=True)[1]
        else:
            scorer = d
        reading = discriminator_reading(scorer, model.condition, latents, seconds, pairs, args.levels,
                                        seed=args.seed)
        report[str(run)] = reading
        print(run)
        for level, by in reading.items():
            shown = "  ".join(f"{name} {acc:.2f} ({n})" for name, (acc, n) in by.items())
            print(f"  s={level:g}  {shown}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
