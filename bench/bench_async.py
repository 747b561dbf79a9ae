"""RL steps/s with `async_level` 0 (generate, then train) vs 1 and 2 (generation overlapping the update).

    python bench/bench_async.py [--base DIR] [--levels 0 1 2] [--steps 12] [--rounds 1] [--threads 1]

The demo's RL stage as recipes/tiny-zero.yaml sets it (arithmetic, B=16, G=8, 80 new tokens, dapo,
dynamic sampling, lr 1e-4) from the demo's pretrained base (`--base`, default runs/tiny-zero/pretrain/model,
written by `make demo`), `--steps` steps, no checkpoints, one torch thread per process. Each level runs
in its own subprocess, one after the other (`--rounds` > 1 alternates them again); async levels add the
rollout worker process (one thread too). Per level it prints, from metrics.jsonl, the median over steps
3..N of seconds_step (wall time between step ends), generation and train seconds, and the process CPU
time of the whole run (learner and worker); then steps/s as a ratio to level 0.

Step 1 pays for the worker's start (imports, model load) and step 2 may still be catching up, hence the
median from step 3. The runs learn differently (the batches of a lagged run come from older policies),
so their completion lengths, and with them the work per step, drift apart over long runs; the table shows
the mean completion length of the timed steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def demo_rl_settings() -> dict:
    return yaml.safe_load((REPO / "recipes" / "tiny-zero.yaml").read_text())["rl"]


def worker(args) -> None:
    """One level: the RL stage in this process, as the CLI runs it."""
    import torch

    from r1zero.config import RLConfig, build_section
    from r1zero.stages import StageContext
    from r1zero.train.rl import run_rl

    torch.set_num_threads(args.threads)
    settings = {**demo_rl_settings(), "steps": args.steps, "checkpoint_every": 0, "async_level": args.worker}
    cfg = build_section("rl", "rl", RLConfig, settings)
    run_rl(cfg, StageContext(args.out, args.out / "rl", "rl", 0, args.base, resume=False))


def launch(level: int, args, work: Path) -> dict:
    out = work / f"level{level}-{len(list(work.iterdir()))}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, __file__, "--worker", str(level), "--out", str(out), "--base", str(args.base),
           "--steps", str(args.steps), "--threads", str(args.threads)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker's, grandchildren waited for, in too
    rows = [json.loads(line) for line in (out / "rl" / "metrics.jsonl").read_text().splitlines()]
    timed = rows[2:]
    median = lambda key: statistics.median(r[key] for r in timed)
    return {"level": level, "s_step": median("seconds_step"), "s_gen": median("seconds_generation"),
            "s_train": median("seconds_train"), "lag": max(r["policy_lag"] for r in rows),
            "len": statistics.mean(r["response_length"] for r in timed),
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "step1_s": rows[0]["seconds_step"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=Path, default=REPO / "runs" / "tiny-zero" / "pretrain" / "model")
    p.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        return worker(args)
    if not (args.base / "config.json").is_file():
        sys.exit(f"no model folder at {args.base}: run `make demo` first, or pass --base DIR")
    if args.steps < 4:
        sys.exit("--steps: at least 4 (the median is over steps 3..N)")
    with tempfile.TemporaryDirectory(prefix="bench-async-") as tmp:
        results = [launch(level, args, Path(tmp)) for _ in range(args.rounds) for level in args.levels]
    sync = statistics.median(r["s_step"] for r in results if r["level"] == 0) if 0 in args.levels else None
    print(f"demo RL settings, {args.steps} steps, base {args.base}, {args.threads} thread(s) per process")
    print("| async_level | policy lag | s/step (median 3..N) | steps/s | vs level 0 | gen s | train s "
          "| mean len | step 1 s | CPU s (run) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ratio = f"{sync / r['s_step']:.2f}x" if sync else "-"
        print(f"| {r['level']} | {r['lag']} | {r['s_step']:.3f} | {1 / r['s_step']:.2f} | {ratio} | {r['s_gen']:.3f} "
              f"| {r['s_train']:.3f} | {r['len']:.1f} | {r['step1_s']:.1f} | {r['cpu_s']:.1f} |")


if __name__ == "__main__":
    main()
