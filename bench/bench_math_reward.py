"""Throughput of the `math` reward: scoring in this process (serial) vs in worker processes (parallel).

Completions are MATH-500-style: each gold answer written as `<think>...</think><answer>gold</answer>`,
plus some wrong ones (another row's answer). They are shuffled and cut into one warm-up slice and
`--rounds` timed slices; each timed slice is scored once serially (`workers=0`) and once in
parallel (`--workers` processes, started and warmed before timing), so each process meets each
answer for the first time (sympy caches would otherwise flatter whichever ran second).

    .venv/bin/python bench/bench_math_reward.py [--workers 2] [--rounds 4] [--wrong-share 0.2]

Prints completions per second for both and the ratio parallel / serial (median over rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from r1zero.rewards import get
from r1zero.rewards.process_pool import shared_pool

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "math500" / "test.jsonl"


def completions_and_golds(path: Path, wrong_share: float, seed: int) -> list[tuple[str, str]]:
    golds = [json.loads(line)["answer"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    items = [(f"<think>Working it out.</think><answer>{gold}</answer>", gold) for gold in golds]
    for i in rng.sample(range(len(golds)), int(wrong_share * len(golds))):
        items.append((f"<answer>{golds[(i + 1) % len(golds)]}</answer>", golds[i]))
    rng.shuffle(items)
    return items


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by this process and the processes `pids`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def measure(items: list[tuple[str, str]], workers: int) -> tuple[float, float]:
    """(completions per second, CPU milliseconds per completion) of the `math` reward on `items`."""
    reward = get("math", workers=workers)
    pids = shared_pool(workers, preload=("math_verify",)).pids() if workers else []
    completions, golds = [c for c, _ in items], [g for _, g in items]
    cpu, start = cpu_seconds(pids), time.perf_counter()
    reward(["Q"] * len(items), completions, answer=golds)
    wall = time.perf_counter() - start
    return len(items) / wall, 1000 * (cpu_seconds(pids) - cpu) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--wrong-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"MATH-500 not found at {args.data.resolve()}: pass --data test.jsonl")

    items = completions_and_golds(args.data, args.wrong_share, args.seed)
    size = len(items) // (args.rounds + 1)
    slices = [items[i * size:(i + 1) * size] for i in range(args.rounds + 1)]
    shared_pool(args.workers, preload=("math_verify",))  # start the workers before any timing
    measure(slices[0], 0)
    measure(slices[0], args.workers)

    runs: dict[str, list[tuple[float, float]]] = {"serial": [], "parallel": []}
    for timed in slices[1:]:
        runs["serial"].append(measure(timed, 0))
        runs["parallel"].append(measure(timed, args.workers))
    rate = {mode: statistics.median(r for r, _ in results) for mode, results in runs.items()}
    cpu = {mode: statistics.median(c for _, c in results) for mode, results in runs.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"math reward, {len(items)} MATH-500 completions ({args.wrong_share:.0%} wrong), "
          f"{args.rounds} timed rounds of {size}; {cores} cores, load average {load}")
    print(f"{'mode':<24} {'completions/s':>13} {'CPU ms/completion':>18}  completions/s per round")
    for mode, label in (("serial", "serial (in process)"), ("parallel", f"parallel ({args.workers} processes)")):
        per_round = " ".join(f"{r:.0f}" for r, _ in runs[mode])
        print(f"{label:<24} {rate[mode]:>13.0f} {cpu[mode]:>18.2f}  {per_round}")
    print(f"ratio parallel / serial: {rate['parallel'] / rate['serial']:.2f}x measured; "
          f"CPU overhead of parallel {cpu['parallel'] / cpu['serial']:.2f}x, so on {args.workers} idle cores "
          f"at most {args.workers * cpu['serial'] / cpu['parallel']:.2f}x")

if __name__ == "__main__":
    main()
