"""Mutation score per module from a `mutmut run` (what `make mutation` prints at the end).

Reads mutmut's per-file results (mutants/<path>.meta: the test run's exit code for every mutant) and prints, per
mutated module, how many mutants the tests killed, how many survived, and the score killed / (killed + survived)
(mutants no test reaches count as survivors; timeouts count as killed). Survivors are listed by name; `mutmut show
NAME` prints a survivor's diff.

    .venv/bin/python scripts/mutation_report.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, -24, 24, 152, 255, 37}  # test failure, pytest internal error, timeouts, type check
SURVIVED = {0, 5, 33}  # tests pass, or no test reached the mutant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args()
    metas = sorted(Path("mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/; run `make mutation` first")
        return 1
    table = {}
    for meta in metas:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to("mutants"))[: -len(".meta")]
        kinds = Counter("killed" if c in KILLED else "survived" if c in SURVIVED else
                        "not checked" if c is None else "other" for c in codes.values())
        decided = kinds["killed"] + kinds["survived"]
        table[module] = {"mutants": len(codes), **kinds, "score": kinds["killed"] / decided if decided else None,
                         "survivors": sorted(k for k, c in codes.items() if c in SURVIVED)}
    print(f"{'module':42s} {'mutants':>7s} {'killed':>6s} {'survived':>8s} {'other':>5s} {'score':>6s}")
    for module, row in table.items():
        other = row["mutants"] - row.get("killed", 0) - row.get("survived", 0)
        score = "-" if row["score"] is None else f"{row['score']:.3f}"
        print(f"{module:42s} {row['mutants']:7d} {row.get('killed', 0):6d} {row.get('survived', 0):8d} {other:5d} "
              f"{score:>6s}")
    for module, row in table.items():
        if row["survivors"]:
            print(f"\nsurvivors in {module}:\n  " + "\n  ".join(row["survivors"]))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
