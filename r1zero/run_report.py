"""Stage `report`: the run's before/after story in `report.md` plus PNG curves.

In the order a reader of the R1 paper looks for it: the figure (accuracy, mean response length and
re-check share against RL step, smoothed, with the evaluations marked: the paper's figure 3 and its
"aha moment" in miniature); the table of every eval stage side by side (greedy and sampled pass@1,
pass@k, the hard split, how often completions re-check and whether re-checks pay, accuracy per
difficulty); before/after completions in which a re-check catches and fixes a slip; a legend for the
notation; the budget. The terminal gets the table and the report's path.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from r1zero.eval.metrics import has_correction
from r1zero.train.logs import read_jsonl

ROWS = [("greedy_pass@1", "greedy pass@1"), ("sampled_pass@1", "sampled pass@1"), ("pass@k", "pass@k"),
        ("hard/sampled_pass@1", "hard split: sampled pass@1"), ("hard/pass@k", "hard split: pass@k"),
        ("recheck_share", "completions that re-check"), ("correction_share", "completions that correct a step"),
        ("faithful_corrections", "corrected completions that end right"),
        ("accuracy_with_recheck", "accuracy with a re-check"),
        ("accuracy_without_recheck", "accuracy without a re-check"),
        ("hard/recheck_share", "hard split: completions that re-check"),
        ("tool_call_share", "completions that call a tool"), ("greedy_tool_call_share", "greedy answers that call a tool"),
        ("accuracy_with_tool", "accuracy with a tool call"), ("accuracy_without_tool", "accuracy without a tool call"),
        ("format_rate", "format rate"), ("reasoning_share", "reasons step by step"),
        ("mean_length", "mean response length (tokens)"), ("hard/mean_length", "hard split: mean length")]

LEGEND = """## How to read a solution

A problem is `a op b=`; the model thinks inside `<think>...</think>` and answers inside
`<answer>...</answer>`. The thinking works the columns from the last digit, the way one does on paper,
one column per `;`:

- `3+9+0=12>2` adds the column's digits and the carry (`0`), gets `12`, and keeps the partial result
  after `>` (`2`, carrying the `1` into the next column).
- `13-5-0=8>8` subtracts; a leading `1` (`13`) marks a borrow from the next column.
- `8*4=32+3=35>5` multiplies one digit (`8*4=32`) and adds the carry (`+3=35`).
- `~` starts a re-check: the column's value is worked out again in place. `9+5+0=15~14!>4` found that
  `15` was wrong (`!`) and went on from `14`; `9+5+0=14~14>4` confirmed the step.
- `<think></think>` (empty) answers directly, without working.

A model pretrained with `answer_first` (the demo) writes a quick answer first, restating the problem:
`<think>123+59=181</think><answer>181</answer>` is a guess, not worked out. After `~` it verifies the
guess by working it out, each step after what is left of the problem (`12+5:` is `123+59` with its last
column done), and marks a disagreement with `!` before answering what the work gave:

    123+59=<think>123+59=181~123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182!</think><answer>182</answer>
"""


def stages_of(run_dir: Path, kind: str) -> list[str]:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return [sid for sid in config["stages"] if config.get(sid, {}).get("kind", sid) == kind]


def metric(result: dict, key: str):
    if key.endswith("pass@k"):
        prefix = key[: -len("pass@k")]
        key = f"{prefix}pass@{result.get(prefix + 'samples', 8)}"
    return result.get(key)


def table_rows(results: dict[str, dict]) -> list[list[str]]:
    first = next(iter(results.values()))
    keys = ROWS + [(k, f"pass@1 at {k.split('/d')[1]} digits") for k in sorted(first) if k.startswith("accuracy/d")]
    rows = []
    for key, label in keys:
        values = [metric(r, key) for r in results.values()]
        if all(v is None for v in values):
            continue
        if key.endswith("pass@k"):
            label = label.replace("pass@k", f"pass@{first.get(key[: -len('pass@k')] + 'samples', 'k')}")
        rows.append([label, *map(fmt, values)])
    return rows


def fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over `window` points (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def r1_figure(rows: list[dict], marks: dict[str, tuple[int, dict]], out_png: Path) -> Path:
    """Accuracy, mean response length and re-check share against RL step (raw faint, smoothed bold),
    with each evaluation's figure marked at the step it was taken."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("accuracy", "sampled_pass@1", "accuracy"), ("response_length", "mean_length", "mean response length"),
              ("recheck_share", "recheck_share", "re-check share")]
    panels = [p for p in panels if any(p[0] in r for r in rows)]
    window = max(1, len(rows) // 20)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.3), squeeze=False)
    for ax, (key, eval_key, title) in zip(axes[0], panels):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        steps, values = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(steps, values, lw=0.8, alpha=0.3, color="C0")
        ax.plot(steps, smooth(values, window), lw=2, color="C0", label=f"training (mean of {window})")
        for i, (label, (step, result)) in enumerate(marks.items()):
            if result.get(eval_key) is not None:
                ax.scatter([step], [result[eval_key]], color=f"C{i + 1}", zorder=3, label=f"{label} (held-out)")
        ax.set_title(title)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def tool_figure(rows: list[dict], marks: dict[str, tuple[int, dict]], out_png: Path) -> Path:
    """Runs with tools: the share of rollouts that call a tool and their accuracy against RL step (raw
    faint, smoothed bold), with each evaluation's figures marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = max(1, len(rows) // 20)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for color, (key, eval_key, label) in enumerate([("tool_call_share", "tool_call_share", "tool-call share"),
                                                    ("accuracy", "sampled_pass@1", "accuracy")]):
        pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8, alpha=0.3, color=f"C{color}")
        ax.plot([p[0] for p in pts], smooth([p[1] for p in pts], window), lw=2, color=f"C{color}",
                label=f"{label} (training, mean of {window})")
        for i, (sid, (step, result)) in enumerate(marks.items()):
            if result.get(eval_key) is not None:
                ax.scatter([step], [result[eval_key]], color=f"C{color}", marker="os^D"[i % 4], zorder=3,
                           label=f"{label}: {sid} (held-out)")
    ax.set_xlabel("RL step")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def correction_examples(run_dir: Path, before: str, after: str, n: int = 3) -> list[str]:
    """Problems where the `after` model's sampled completion re-checked, found a slip, fixed it and
    ended right, beside the `before` model's first completion of the same problem."""
    paths = [run_dir / sid / "items.jsonl" for sid in (before, after)]
    if not all(p.is_file() for p in paths):
        return []
    base = {it["id"]: it for it in read_jsonl(paths[0])}
    out = []
    for item in read_jsonl(paths[1]):
        fixed = [t for t, ok in zip(item["completions"], item["correct"]) if ok and has_correction(t)]
        if fixed and item["id"] in base:
            out.append(f"- `{item['prompt']}` (answer {item['gold']})\n"
                       f"  - {before}: `{base[item['id']]['completions'][0]}`\n  - {after}: `{fixed[0]}`")
        if len(out) == n:
            break
    return out


def run_report(cfg, ctx) -> None:
    run_dir = ctx.run_dir
    evals = cfg.evals or stages_of(run_dir, "eval")
    results = {sid: json.loads((run_dir / sid / "eval.json").read_text()) for sid in evals
               if (run_dir / sid / "eval.json").is_file()}
    rl = cfg.rl or next(iter(stages_of(run_dir, "rl")[-1:]), "")
    parts = [f"# Report: {run_dir.name}\n"]
    header = ["metric", *results]
    rows = table_rows(results) if results else []
    if rl and (run_dir / rl / "metrics.jsonl").is_file():
        log = read_jsonl(run_dir / rl / "metrics.jsonl")
        order = yaml.safe_load((run_dir / "config.yaml").read_text())["stages"]
        last = log[-1]["step"] if log else 0
        marks = {sid: (0 if order.index(sid) < order.index(rl) else last, r) for sid, r in results.items()}
        figure = r1_figure(log, marks, ctx.stage_dir / "rl_curves.png")
        parts += [f"![accuracy, response length and re-check share during RL]({figure.name})\n",
                  ("RL training rollouts (faint: each step; bold: moving average); dots: the held-out "
                   "evaluations before and after RL.\n")]
        if any("tool_call_share" in r for r in log):
            tools = tool_figure(log, marks, ctx.stage_dir / "tool_curves.png")
            parts += [f"![tool-call share and accuracy during RL]({tools.name})\n",
                      ("Tool use: the share of RL rollouts that call a tool and their accuracy; markers: the "
                       "held-out evaluations, run with the same tools.\n")]
    if results:
        first = next(iter(results.values()))
        hard = f" plus {first['hard/problems']} harder ones, {first['hard/samples']} samples each" \
            if first.get("hard/problems") else ""
        parts += [f"Held-out problems: {first.get('problems')}, {first.get('samples')} samples each{hard}.\n",
                  markdown_table(header, rows), ""]
    if len(results) >= 2:
        before, after = next(iter(results)), list(results)[-1]
        if examples := correction_examples(run_dir, before, after):
            parts += ["## A re-check catches a slip\n", *examples, ""]
    if cfg.claims:
        from r1zero.r1_claims import claims_section

        parts += claims_section(run_dir, cfg.claims, ctx.stage_dir)
    parts.append(LEGEND)
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
                                       .replace("](tool_curves.png", f"]({ctx.stage_id}/tool_curves.png")
                                       .replace("](test_time.png", f"]({ctx.stage_id}/test_time.png")
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
