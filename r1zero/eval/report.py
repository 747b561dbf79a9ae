"""The evaluation report: a side-by-side table (terminal and markdown) and a pass@k-vs-k plot.

One column per model folder (base vs RL vs distilled), evaluated on the same items. The plot draws
unbiased pass@k (solid) and cons@k (dashed) against k on a log2 axis, one colour per model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

SKIP = ("model", "examples", "seconds", "problems", "samples", "task", "split", "template", "reward")


def model_label(model: str) -> str:
    """A short name: `runs/x/rl/model` -> `rl`, `runs/x/final` -> `final`."""
    p = Path(model)
    return (p.parent.name if p.name == "model" and p.parent.name else p.name) or str(model)


def unique_labels(models: list[str]) -> list[str]:
    labels: list[str] = []
    for m in models:
        label, i = model_label(m), 2
        while label in labels:
            label, i = f"{model_label(m)}-{i}", i + 1
        labels.append(label)
    return labels


def table_keys(results: list[dict]) -> list[str]:
    """Metric rows: pass@k and cons@k only at 1 and n (the curves are in the plot and eval.json)."""
    n = results[0].get("samples", 1)
    keys = []
    for key in results[0]:
        m = re.fullmatch(r"(pass|cons)@(\d+)", key)
        if key in SKIP or (m and int(m.group(2)) not in (1, n)) or key == "pass@1":
            continue  # pass@1 is sampled_pass@1
        keys.append(key)
    return keys


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def print_table(results: list[dict], title: str = "eval") -> None:
    table = Table(title=title, title_justify="left") if len(title) < 40 else Table()
    table.add_column("metric")
    for label in unique_labels([r["model"] for r in results]):
        table.add_column(label, justify="right")
    for key in table_keys(results):
        table.add_row(key, *[fmt(r.get(key)) for r in results])
    console = Console()
    if len(title) >= 40:  # a rich title wraps to the table's width
        console.print(title)
    console.print(table)


def curves(result: dict, prefix: str) -> tuple[list[int], list[float]]:
    points = sorted((int(k.split("@")[1]), v) for k, v in result.items() if k.startswith(prefix + "@")
                    and k.split("@")[1].isdigit())
    return [k for k, _ in points], [v for _, v in points]


def plot_pass_at_k(results: list[dict], path: Path) -> Path | None:
    """pass@k (solid) and cons@k (dashed) vs k, one colour per model; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (r, label) in enumerate(zip(results, unique_labels([r["model"] for r in results]))):
        color = f"C{i}"
        ax.plot(*curves(r, "pass"), marker="o", color=color, label=f"{label} pass@k")
        ax.plot(*curves(r, "cons"), marker="s", linestyle="--", color=color, label=f"{label} cons@k")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("solved")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_report(results: list[dict], settings: dict, plot: str | None, items_files: list[str]) -> str:
    labels = unique_labels([r["model"] for r in results])
    lines = ["# Evaluation", "", ", ".join(f"{k}: `{v}`" for k, v in settings.items()), "",
             "| metric | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {key} | " + " | ".join(fmt(r.get(key)) for r in results) + " |" for key in table_keys(results)]
    lines += ["", "Models: " + ", ".join(f"{label} = `{r['model']}`" for label, r in zip(labels, results))]
    if plot:
        lines += ["", f"![pass@k and cons@k vs k]({plot})"]
    lines += ["", "Per-item results (answers, votes, correctness): " + ", ".join(f"`{f}`" for f in items_files)]
    for label, r in zip(labels, results):
        lines += ["", f"## {label}: first answers", ""]
        for ex in r.get("examples", [])[:3]:
            lines += [f"- `{ex['prompt'][-80:]}` gold `{ex['answer']}`: `{ex['sample']}`"]
    return "\n".join(lines) + "\n"


def write_report(results: list[dict], items: list[list[dict]], out_dir: Path, settings: dict) -> dict[str, Path]:
    """eval.json, items jsonl per model, passk.png and report.md in `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = unique_labels([r["model"] for r in results])
    names = ["items.jsonl"] if len(results) == 1 else [f"items-{label}.jsonl" for label in labels]
    for name, rows in zip(names, items):
        with (out_dir / name).open("w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    (out_dir / "eval.json").write_text(json.dumps({**results[0], "models": results}, indent=2))
    plot = plot_pass_at_k(results, out_dir / "passk.png")
    report = markdown_report(results, settings, plot.name if plot else None, names)
    (out_dir / "report.md").write_text(report)
    paths = {"eval": out_dir / "eval.json", "report": out_dir / "report.md"}
    if plot:
        paths["plot"] = plot
    return paths
