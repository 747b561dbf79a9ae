"""`r1zero plan` against measurement: each stage of a short tiny-zero run, alone under /usr/bin/time.

    .venv/bin/python bench/bench_plan.py [--out /tmp/bench-plan] [--steps 60 --rl-steps 10 --problems 50]
                                         [--variants]

Runs build -> pretrain -> eval -> rl as single-stage commands with threads=1 (peak RSS is per
process), plans the same settings with `r1zero.budget.plan`, and prints a markdown table:
estimated vs measured peak RSS and time, with the error in percent. Time is compared with the
process's CPU time (user + sys): with one thread that is the wall time of an idle machine, and
on a shared machine it is what still measures this process rather than its neighbours. Wall
time and the load average (`uptime`) are shown alongside.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
R1ZERO = [sys.executable, "-m", "r1zero.cli"]


def timed(cmd: list[str]) -> dict:
    """Run `cmd` under /usr/bin/time -v; its peak RSS (bytes), CPU seconds, wall seconds, load."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")

    def field(name: str) -> float:
        return float(re.search(rf"{name}: ([\d.]+)", proc.stderr).group(1))

    return {"rss": field(r"Maximum resident set size \(kbytes\)") * 1024,
            "cpu": field(r"User time \(seconds\)") + field(r"System time \(seconds\)"), "wall": wall,
            "load": (load_before + os.getloadavg()[0]) / 2}


# RL variants (`--variants`): the memory paths the default recipe does not take.
VARIANTS = {
    "rl+checkpointing": ["gradient_checkpointing=true"],
    "rl+kl (reference model)": ["loss=grpo", "loss_options={beta: 0.04}"],
    "rl+lora+kl": ["lora=true", "loss=grpo", "loss_options={beta: 0.04}"],
}


def commands(out: Path, steps: int, rl_steps: int, problems: int, variants: bool) -> dict[str, list[str]]:
    common = ["threads=1", "--overwrite"]
    model, base = out / "build" / "build" / "model", out / "pretrain" / "pretrain" / "model"
    rl = [*R1ZERO, "rl", "--model", str(base), f"steps={rl_steps}", "checkpoint_every=0", *common]
    runs = {
        "build": [*R1ZERO, "build", "--out", str(out / "build"), *common],
        "pretrain": [*R1ZERO, "pretrain", "--model", str(model), "--out", str(out / "pretrain"),
                     f"steps={steps}", "checkpoint_every=0", *common],
        "eval_base": [*R1ZERO, "eval", "--model", str(base), "--out", str(out / "eval"), f"problems={problems}",
                      *common],
        "rl": [*rl, "--out", str(out / "rl")],
    }
    for i, (name, extra) in enumerate(VARIANTS.items() if variants else []):
        runs[name] = [*rl, "--out", str(out / f"rl-variant-{i}"), *extra]
    return runs


def measure(runs: dict[str, list[str]]) -> dict[str, dict]:
    results = {}
    for stage, cmd in runs.items():
        results[stage] = r = timed(cmd)
        print(f"{stage}: {r['rss'] / 2**20:.0f} MiB, {r['cpu']:.1f} s CPU, {r['wall']:.1f} s wall, "
              f"load {r['load']:.1f}", file=sys.stderr)
    return results


def plan(steps: int, rl_steps: int, problems: int, variants: bool) -> dict[str, object]:
    """The plan of the same settings: the tiny-zero recipe cut to the measured stages."""
    import torch

    from r1zero.budget.devices import get_device
    from r1zero.budget.plan import plan_recipe
    from r1zero.recipe import load_recipe

    torch.set_num_threads(1)
    device = get_device("cpu", threads=1)
    common = ["threads=1", f"pretrain.steps={steps}", "pretrain.checkpoint_every=0", f"eval_base.problems={problems}",
              f"rl.steps={rl_steps}", "rl.checkpoint_every=0",
              # the single-stage commands run on one process, without the recipe's hard split
              "pretrain.processes=1", "eval_base.processes=1", "eval_base.hard_problems=0", "rl.async_level=0"]
    recipe = load_recipe(REPO / "recipes" / "tiny-zero.yaml", ["stages=[build, pretrain, eval_base, rl]", *common])
    plans = {p.stage: p for p in plan_recipe(recipe, device, "float32")}
    for name, extra in VARIANTS.items() if variants else []:
        recipe = load_recipe(REPO / "recipes" / "tiny-zero.yaml",
                             ["stages=[build, pretrain, rl]", *common, *[f"rl.{o}" for o in extra]])
        plans[name] = next(p for p in plan_recipe(recipe, device, "float32") if p.stage == "rl")
    return plans


def table(measured: dict[str, dict], plans: dict[str, object]) -> str:
    def err(est: float, real: float) -> str:
        return f"{100 * (est - real) / real:+.0f}%"

    lines = ["| stage | memory est. | peak RSS | error | time est. | CPU time | error | wall | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for stage, m in measured.items():
        p = plans[stage]
        mem, secs = p.memory.peak, p.total_seconds
        lines.append(f"| {stage} | {mem / 2**20:.0f} MiB | {m['rss'] / 2**20:.0f} MiB | {err(mem, m['rss'])} "
                     f"| {secs:.1f} s | {m['cpu']:.1f} s | {err(secs, m['cpu'])} | {m['wall']:.0f} s "
                     f"| {m['load']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/bench-plan")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rl-steps", type=int, default=10)
    ap.add_argument("--problems", type=int, default=50)
    ap.add_argument("--variants", action="store_true", help="also rl with checkpointing, a KL reference, LoRA")
    args = ap.parse_args()
    os.environ["R1ZERO_CACHE"] = str(Path(args.out) / "cache")  # probe now, in the same conditions
    measured = measure(commands(Path(args.out), args.steps, args.rl_steps, args.problems, args.variants))
    plans = plan(args.steps, args.rl_steps, args.problems, args.variants)
    for stage in measured:
        p = plans[stage]
        print(f"{stage}: " + ", ".join(f"{k} {v:.1f}s" for k, v in p.seconds.items()) + "; "
              + ", ".join(f"{k} {v / 2**20:.0f}MiB" for k, v in p.memory.components().items()), file=sys.stderr)
    print(table(measured, plans))


if __name__ == "__main__":
    main()
