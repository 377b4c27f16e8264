"""Pair two arms of a training ablation by training seed: `arcaudio adherence --json` reports of models trained
with and without a change (same seeds, same prompts and generation seeds), the mean of each arm, the paired
difference with its standard error over training seeds, the change per attribute, and summed confusion tables.

    for s in 0 1 2; do
      arcaudio adherence runs/lc_s$s/model.safetensors --n 256 --style paraphrase --seed 0 1000 2000 3000 \\
          --batch-size 64 --json > runs/lc_s$s.json          # and the same for runs/nolc_s$s
    done
    python scripts/paired_adherence.py --arm runs/lc_s{0,1,2}.json --base runs/nolc_s{0,1,2}.json --confusion colour

The i-th --arm report is paired with the i-th --base report (so list them in the same seed order).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from arcaudio.eval.adherence import merge_confusions


def load_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: {path}: not a readable `arcaudio adherence --json` report ({err})") from err
    missing = [k for k in ("accuracy", "mean_accuracy", "confusion") if k not in report]
    if missing:
        raise SystemExit(f"error: {path}: lacks {missing}; write it with `arcaudio adherence ... --json`")
    return report


def paired(arm: list[dict], base: list[dict]) -> dict:
    """Mean of each arm, paired differences (arm - base) of the mean accuracy and of each attribute shared by all."""
    if len(arm) != len(base) or not arm:
        raise SystemExit(f"error: --arm has {len(arm)} reports and --base {len(base)}; give one per training seed, "
                         "the same number for each")
    diffs = [a["mean_accuracy"] - b["mean_accuracy"] for a, b in zip(arm, base)]
    names = [k for k in arm[0]["accuracy"] if all(k in r["accuracy"] for r in arm + base)]
    per_attribute = {k: statistics.mean(a["accuracy"][k] - b["accuracy"][k] for a, b in zip(arm, base))
                     for k in names}
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    return {"arm": statistics.mean(r["mean_accuracy"] for r in arm),
            "base": statistics.mean(r["mean_accuracy"] for r in base),
            "difference": statistics.mean(diffs), "standard_error": se, "differences": diffs,
            "per_attribute": per_attribute}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arm", type=Path, nargs="+", required=True, help="reports of the arm, one per training seed")
    p.add_argument("--base", type=Path, nargs="+", required=True, help="reports of the arm it is paired against")
    p.add_argument("--confusion", nargs="*", default=[], metavar="ATTRIBUTE",
                   help="print each arm's summed confusion (asked -> read) for these attributes")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    arm, base = [load_report(f) for f in args.arm], [load_report(f) for f in args.base]
    result = paired(arm, base)
    summed = {label: merge_confusions([r["confusion"] for r in reports])
              for label, reports in (("arm", arm), ("base", base))}
    result["confusion"] = {name: {label: table.get(name, {}) for label, table in summed.items()}
                           for name in args.confusion}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(arm)} training seeds: arm {result['arm']:.3f}, base {result['base']:.3f}, paired difference "
          f"{result['difference']:+.3f} +- {result['standard_error']:.3f} "
          f"[{' '.join(f'{d:+.3f}' for d in result['differences'])}]")
    changes = sorted(result["per_attribute"].items(), key=lambda kv: kv[1])
    print("per attribute: " + ", ".join(f"{k} {v:+.3f}" for k, v in changes))
    for name, arms in result["confusion"].items():
        for label, rows in arms.items():
            print(f"{name} ({label}): " + "; ".join(
                f"{asked} -> " + ", ".join(f"{found} {n}" for found, n in sorted(row.items(), key=lambda kv: -kv[1]))
                for asked, row in sorted(rows.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
