"""Throughput of the `code` reward on HumanEval's canonical solutions: this tree vs an older one.

Each side imports r1zero from its own tree in a fresh subprocess (so two versions of the package
never meet in one interpreter), scores 16 solutions as a warm-up (the sandbox probe, page cache),
then all 164 canonical solutions `--rounds` times; the sides alternate round by round so that a
busy machine slows both alike. Prints completions per second per side (median round) and the
ratio new / old.

    git worktree add /tmp/r1z-old <commit>        # the "before" tree (do not switch branches here)
    .venv/bin/python bench/bench_code_reward.py --before /tmp/r1z-old [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".." / "shared" / "data" / "humaneval" / "HumanEval.jsonl"

_ROUND = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from r1zero.rewards import get
rows = [json.loads(line) for line in open(sys.argv[2])]
limit, workers = int(sys.argv[3]), int(sys.argv[4])
rows = rows[:limit] if limit else rows
completions = [f"<answer>```python\n{r['prompt']}{r['canonical_solution']}```</answer>" for r in rows]
columns = {"test": [r["test"] for r in rows], "entry_point": [r["entry_point"] for r in rows]}
start = time.perf_counter()
scores = get("code", workers=workers)(["Q"] * len(rows), completions, **columns)
print(json.dumps({"seconds": time.perf_counter() - start, "n": len(rows), "passed": scores.count(1.0)}))
"""


def one_round(tree: Path, limit: int, workers: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _ROUND, str(tree), str(DATA), str(limit), str(workers)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="tree of the older version")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sides = {"before": args.before.resolve(), "after": REPO}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for side, tree in sides.items():
        one_round(tree, 16, args.workers)
    for k in range(args.rounds):
        for side, tree in sides.items():
            result = one_round(tree, 0, args.workers)
            rates[side].append(result["n"] / result["seconds"])
            print(f"round {k}: {side:<6} {result['n'] / result['seconds']:6.2f} completions/s "
                  f"({result['passed']}/{result['n']} pass, {result['seconds']:.1f} s)", flush=True)
    before, after = (statistics.median(rates[side]) for side in sides)
    print(f"code reward on HumanEval canonical ({args.workers} workers): before {before:.2f}/s, "
          f"after {after:.2f}/s, after/before {after / before:.2f}")


if __name__ == "__main__":
    main()
