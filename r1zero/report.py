"""Stage `report`: the run's before/after story in `report.md` plus PNG curves.

A table of every eval stage side by side (greedy pass@1, sampled pass@1, pass@k, format rate,
share of completions that reason step by step, mean response length), the RL curves (reward,
accuracy, mean response length: the R1 paper's figure 3 in miniature, and the reasoning share),
and a few completions before and after. The terminal gets the table and the report's path.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from r1zero.train.metrics import plot_curves, read_jsonl

ROWS = [("greedy_pass@1", "greedy pass@1"), ("sampled_pass@1", "sampled pass@1"), ("pass@k", "pass@k"),
        ("format_rate", "format rate"), ("reasoning_share", "reasons step by step"),
        ("mean_length", "mean response length (tokens)")]


def stages_of(run_dir: Path, kind: str) -> list[str]:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return [sid for sid in config["stages"] if config.get(sid, {}).get("kind", sid) == kind]


def metric(result: dict, key: str):
    if key == "pass@k":
        key = f"pass@{result.get('samples', 8)}"
    return result.get(key)


def table_rows(results: dict[str, dict]) -> list[list[str]]:
    rows = []
    for key, label in ROWS:
        if key == "pass@k":
            label = f"pass@{next(iter(results.values())).get('samples', 'k')}"
        rows.append([label, *[fmt(metric(r, key)) for r in results.values()]])
    return rows


def fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def run_report(cfg, ctx) -> None:
    run_dir = ctx.run_dir
    evals = cfg.evals or stages_of(run_dir, "eval")
    results = {sid: json.loads((run_dir / sid / "eval.json").read_text()) for sid in evals
               if (run_dir / sid / "eval.json").is_file()}
    rl = cfg.rl or next(iter(stages_of(run_dir, "rl")[-1:]), "")
    parts = [f"# Report: {run_dir.name}\n"]
    header = ["metric", *results]
    rows = table_rows(results) if results else []
    if results:
        first = next(iter(results.values()))
        parts += [f"Held-out problems: {first.get('problems')}, {first.get('samples')} samples each.\n",
                  markdown_table(header, rows), ""]
    if rl and (run_dir / rl / "metrics.jsonl").is_file():
        curves = plot_curves(read_jsonl(run_dir / rl / "metrics.jsonl"),
                             ["reward", "accuracy", "response_length", "reasoning_share"],
                             ctx.stage_dir / "rl_curves.png", f"RL ({rl})")
        parts += ["## During RL\n", f"![RL curves]({curves.relative_to(ctx.stage_dir)})\n"]
    for sid, r in results.items():
        if r.get("examples"):
            parts.append(f"## Sample completions: {sid}\n")
            parts += [f"- `{e['prompt']}` (answer {e['answer']}): `{e.get('sample', e.get('greedy', ''))}`"
                      for e in r["examples"][:4]]
            parts.append("")
    from r1zero.budget import budget_table

    if budget := budget_table(run_dir):
        parts += ["## Budget\n", budget, ""]
    report = ctx.stage_dir / "report.md"
    report.write_text("\n".join(parts) + "\n")
    (run_dir / "report.md").write_text("\n".join(parts).replace("](rl_curves.png", f"]({ctx.stage_id}/rl_curves.png")
                                       + "\n")
    if results:
        table = Table(title=f"{run_dir.name}: before / after")
        for h in header:
            table.add_column(h, justify="left" if h == "metric" else "right")
        for r in rows:
            table.add_row(*r)
        Console().print(table)
    if budget:
        print(budget)
    print(f"report: {run_dir / 'report.md'}")
