"""`r1zero plan RECIPE [key=value ...] [--device NAME --memory GB --peak-tflops T --price USD]`.

Prints, per stage, the memory estimate and whether it fits, the time and the cost, then the
memory components and the settings that would make a stage fit. Exit status 0 when every stage
fits, 1 when one does not (2 for a user error, as every r1zero command).
"""

from __future__ import annotations

import json

from r1zero.budget.memory import GB
from r1zero.budget.meter import fmt_count, markdown_table
from r1zero.budget.workload import ZERO_VARIANCE_SHARE

MEMORY_ROWS = ["baseline", "weights", "gradients", "optimizer", "activations", "activations_checkpointed",
               "activations_no_checkpointing", "reference", "critic", "kv_cache", "generation_logits"]


def add_commands(sub) -> None:
    p = sub.add_parser("plan", help="estimate each stage's memory, time and cost before running, and whether it fits")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value, as for `r1zero run`")
    p.add_argument("--device", default="cpu", help="cpu, t4, l4, a10g, rtx4090, a100-40gb, a100-80gb, h100, h200, "
                                                  "mi300x, or any name with --memory and --peak-tflops")
    p.add_argument("--memory", type=float, help="device memory in GB (default: the device's; cpu: system RAM)")
    p.add_argument("--peak-tflops", type=float, help="peak TFLOP/s (default: the device's; cpu: the matmul probe)")
    p.add_argument("--price", type=float, help="USD per device-hour (defaults: r1zero/budget/devices.py)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], help="weights (default: float32 on cpu, else bf16)")
    p.add_argument("--zero-variance-share", type=float, default=ZERO_VARIANCE_SHARE,
                   help="rl dynamic sampling: assumed share of groups whose rewards are all equal")
    p.add_argument("--no-probe", action="store_true", help="cpu: roofline at the probed peak, no kernel timing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--against", metavar="RUN_DIR", help="a run folder of this recipe: each stage's predicted "
                                                         "seconds beside the seconds it measured")
    p.set_defaults(func=run_plan)


def run_plan(args) -> int:
    from r1zero.budget.devices import get_device
    from r1zero.budget.plan import plan_recipe
    from r1zero.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if recipe.threads > 0:
        import torch

        torch.set_num_threads(recipe.threads)
    device = get_device(args.device, args.memory, args.peak_tflops, args.price, threads=recipe.threads or None)
    dtype = args.dtype or ("float32" if device.is_cpu else "bfloat16")
    plans = plan_recipe(recipe, device, dtype, probe=not args.no_probe, zero_share=args.zero_variance_share)
    if args.json:
        print(json.dumps({"device": device.name, "memory_gb": device.memory_gb, "dtype": dtype,
                          "price_per_hour": device.price_per_hour, "stages": [p.to_dict() for p in plans]}, indent=1))
    else:
        print(plan_tables(recipe.name, plans, device, dtype))
    if args.against:
        print("\n" + against_table(plans, args.against))
    return 0 if all(p.fits for p in plans) else 1


def measured_seconds(stage_dir, processes: int = 1) -> tuple[float, str] | None:
    """(what a finished stage took, "CPU" or "wall"): its process CPU seconds (budget.json; the wall time of
    an idle machine at one thread, as the plan predicts), else its wall seconds (done.json), else None. A
    stage that computed on several processes is measured by its wall seconds (budget.json's `seconds`):
    its own process's CPU time leaves out the others'."""
    from pathlib import Path

    sources = [("budget.json", "seconds", "wall")] if processes > 1 else [("budget.json", "cpu_seconds", "CPU")]
    for name, key, how in [*sources, ("done.json", "seconds", "wall")]:
        path = Path(stage_dir) / name
        if path.is_file() and key in (record := json.loads(path.read_text())):
            return float(record[key]), how
    return None


def against_table(plans, run_dir) -> str:
    """Predicted against measured seconds per stage of a run of the plan's recipe, with the error."""
    from pathlib import Path

    rows = []
    for p in plans:
        got, how = measured_seconds(Path(run_dir) / p.stage, getattr(p, "processes", 1)) or (None, "-")
        error = f"{p.total_seconds / got - 1:+.0%}" if got else "-"
        rows.append([p.stage, f"{p.total_seconds:.1f}", "-" if got is None else f"{got:.1f}", error, how])
    return (f"predicted against {run_dir} (measured: a stage's CPU seconds where it metered them on one process, "
            "else its wall seconds):\n\n"
            + markdown_table(["stage", "predicted s", "measured s", "error", "measured"], rows))


def fmt_bytes(n: float) -> str:
    """GB and MB are binary (2^30, 2^20 bytes), as peak RSS and GPU memory are reported."""
    if n >= GB / 10:
        return f"{n / GB:.2f} GB"
    mb = n / 2**20
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB" if mb >= 0.1 else f"{n / 1024:.0f} kB"


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def plan_tables(name: str, plans, device, dtype: str) -> str:
    """The plan as markdown: stages, memory components, then notes and suggestions."""
    rows = []
    for p in plans:
        params = f"{fmt_count(p.params)} / {fmt_count(p.active_params)}" if p.params else "-"
        rows.append([p.stage, p.kind, params, fmt_count(p.tokens), fmt_count(sum(p.flops.values())),
                     fmt_bytes(p.memory.peak), "yes" if p.fits else "**no**", fmt_seconds(p.total_seconds),
                     f"${p.cost:.4f}"])
    rows.append(["total", "", "", fmt_count(sum(p.tokens for p in plans)),
                 fmt_count(sum(sum(p.flops.values()) for p in plans)), fmt_bytes(max(p.memory.peak for p in plans)),
                 "yes" if all(p.fits for p in plans) else "**no**", fmt_seconds(sum(p.total_seconds for p in plans)),
                 f"${sum(p.cost for p in plans):.4f}"])
    title = (f"plan: {name} on {device.name} ({device.memory_gb:.1f} GB, {dtype}, "
             f"${device.price_per_hour:.2f} per device-hour)\n")
    header = ["stage", "kind", "params / active", "tokens", "FLOPs", "peak memory", "fits", "time", "cost"]
    parts = [title, markdown_table(header, rows), "",
             "memory by component (the peak holds one phase: training or generation):\n", memory_table(plans), ""]
    for p in plans:
        parts += [f"- {p.stage}: {line}" for line in p.notes]
        if not p.fits:
            parts.append(f"- {p.stage} does not fit; to fit: {' '.join(p.suggestions)}" if p.suggestions else
                         f"- {p.stage} does not fit with any setting tried: a device with more memory, or a "
                         "smaller model")
    parts += [f"- {line}" for line in dict.fromkeys(p.kv_cache for p in plans if p.kv_cache)]
    return "\n".join(parts)


def memory_table(plans) -> str:
    rows = [(p, {**p.memory.components(), **p.memory.alternatives}) for p in plans]
    shown = [r for r in MEMORY_ROWS if any(c.get(r) for _, c in rows)]
    return markdown_table(["stage", *[h.replace("_", " ") for h in shown]],
                          [[p.stage, *[fmt_bytes(c[r]) if c.get(r) else "-" for r in shown]] for p, c in rows])
