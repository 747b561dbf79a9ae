"""The R1 paper's comparisons, answered from one run's folder: each states the paper's claim, the figures
on the same held-out problems, and whether the claim held here (the `report` stage's `claims`).

A claim's `held` is a plain comparison of the two figures the claim is about; where a difference is
smaller than two standard errors of the paired per-problem difference, the report says it is within
sampling noise (it still says which way it went). What each comparison reads, by stage id:

- `r1_zero_vs_r1`: {r1_zero: eval, r1: eval, stages: [evals of R1's intermediate models]}: sampled
  pass@1, mean response length, readability share (rewards/readability.py) (paper sec. 2.3, 3.2).
- `distillation_vs_rl`: {base: eval, distilled: [sft, eval], rl: [rl, eval]}: the student's accuracy after
  each, and the training FLOPs and CPU seconds each cost (budget.json) (paper table 6).
- `ppo_vs_grpo`: {grpo: [rl, eval], ppo: [rl, eval]}: accuracy, CPU seconds per step, peak resident memory
  (budget.json) (DeepSeekMath sec. 4.1: GRPO drops PPO's critic).
- `test_time`: {votes: eval, budget_forcing: [evals with max_think_tokens]}: cons@k against pass@1, and
  accuracy against the mean thinking tokens (paper table 2's cons@64; s1's budget forcing).

Writes claims.json (every figure and verdict) and claims.png; returns the markdown section.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from r1zero.budget.meter import fmt_count, markdown_table
from r1zero.train.logs import read_jsonl


def load(run_dir: Path, sid: str, name: str) -> dict:
    path = run_dir / sid / name
    return json.loads(path.read_text()) if path.is_file() else {}


def paired_se(run_dir: Path, a: str, b: str) -> float | None:
    """Standard error of mean(pass@1 of b - pass@1 of a) over the problems both evals scored."""
    paths = [run_dir / sid / "items.jsonl" for sid in (a, b)]
    if not all(p.is_file() for p in paths):
        return None
    first = {it["id"]: it["pass@1"] for it in read_jsonl(paths[0]) if it.get("split") != "hard"}
    diffs = [it["pass@1"] - first[it["id"]] for it in read_jsonl(paths[1]) if it["id"] in first
             and it.get("split") != "hard"]
    if len(diffs) < 2:
        return None
    mean = sum(diffs) / len(diffs)
    return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))


def verdict(claim: str, better: float, worse: float, se: float | None = None, lower_is_better: bool = False) -> dict:
    """{claim, held, margin, note}: held when `better` beats `worse` (lower, if `lower_is_better`)."""
    margin = (worse - better) if lower_is_better else (better - worse)
    note = ""
    if se is not None:
        note = f"difference {margin:+.3f}, standard error {se:.3f}" + (
            ": within sampling noise" if abs(margin) < 2 * se else "")
    return {"claim": claim, "held": margin > 0, "margin": margin, "note": note}


def verdict_lines(verdicts: list[dict]) -> list[str]:
    return [f"- **{'held' if v['held'] else 'did not hold'}**: {v['claim']}" + (f" ({v['note']})" if v["note"] else "")
            for v in verdicts]


def r1_zero_vs_r1(run_dir: Path, spec: dict) -> tuple[list[str], dict]:
    evals = [spec["r1_zero"], *spec.get("stages", []), spec["r1"]]
    results = {sid: load(run_dir, sid, "eval.json") for sid in evals}
    rows = [[sid, f"{r['sampled_pass@1']:.3f}", f"{r.get('greedy_pass@1', float('nan')):.3f}",
             f"{r['mean_length']:.1f}", f"{r['readability_share']:.3f}", f"{r['format_rate']:.3f}"]
            for sid, r in results.items()]
    zero, r1 = results[spec["r1_zero"]], results[spec["r1"]]
    se = paired_se(run_dir, spec["r1_zero"], spec["r1"])
    verdicts = [verdict("R1's pipeline makes completions more readable than R1-Zero's (readability share)",
                        r1["readability_share"], zero["readability_share"]),
                verdict("R1's pipeline reaches at least R1-Zero's accuracy (sampled pass@1)",
                        r1["sampled_pass@1"], zero["sampled_pass@1"], se)]
    figures = {sid: {k: r[k] for k in ("sampled_pass@1", "mean_length", "readability_share", "format_rate")}
               for sid, r in results.items()}
    parts = ["### 1. R1-Zero vs R1\n",
             ("The paper: R1-Zero reasons well but reads badly (mixed languages, poor readability); R1's cold start, "
             "readability reward, rejection sampling and second RL stage fix readability and match or beat its "
             "accuracy. Readable = `rewards/readability.py`'s rule.\n"),
             markdown_table(["model", "sampled pass@1", "greedy pass@1", "mean length (tokens)", "readable share",
                             "format rate"], rows), "", *verdict_lines(verdicts), ""]
    return parts, {"figures": figures, "verdicts": verdicts}


def training_cost(run_dir: Path, sid: str) -> dict:
    budget = load(run_dir, sid, "budget.json")
    return {"flops": budget.get("flops_total", 0.0), "cpu_seconds": budget.get("cpu_seconds", 0.0)}


def distillation_vs_rl(run_dir: Path, spec: dict) -> tuple[list[str], dict]:
    (distill, eval_distill), (rl, eval_rl) = spec["distilled"], spec["rl"]
    base = load(run_dir, spec["base"], "eval.json")
    figures = {"base": {"sampled_pass@1": base["sampled_pass@1"], "flops": 0.0, "cpu_seconds": 0.0}}
    for name, train, ev in (("distilled", distill, eval_distill), ("rl", rl, eval_rl)):
        figures[name] = {"sampled_pass@1": load(run_dir, ev, "eval.json")["sampled_pass@1"],
                         "greedy_pass@1": load(run_dir, ev, "eval.json").get("greedy_pass@1"),
                         **training_cost(run_dir, train)}
    rows = [[f"{name} ({sid})", f"{f['sampled_pass@1']:.3f}", fmt_count(f["flops"]) if f["flops"] else "-",
             f"{f['cpu_seconds']:.0f}" if f["cpu_seconds"] else "-"]
            for (name, f), sid in zip(figures.items(), (spec["base"], eval_distill, eval_rl))]
    flops = figures["distilled"]["flops"] and figures["rl"]["flops"]
    compute = (f"RL used {figures['rl']['flops'] / figures['distilled']['flops']:.2f}x the distillation's FLOPs"
               if flops else "FLOPs not metered for both")
    verdicts = [verdict("distilling the RL teacher's verified traces beats RL on the smaller student at about equal "
                        f"training compute ({compute})",
                        figures["distilled"]["sampled_pass@1"], figures["rl"]["sampled_pass@1"],
                        paired_se(run_dir, eval_rl, eval_distill))]
    parts = ["### 2. Distillation vs RL on a smaller model\n",
             ("The paper (table 6): a smaller model distilled from R1 beats the same model trained by large-scale RL. "
             "Here the student is pretrained like the base at a smaller size; the teacher's sampling is not "
             "counted in the distillation's FLOPs (as in the paper).\n"),
             markdown_table(["student", "sampled pass@1", "training FLOPs", "training CPU s"], rows), "",
             *verdict_lines(verdicts), ""]
    return parts, {"figures": figures, "verdicts": verdicts}


def ppo_vs_grpo(run_dir: Path, spec: dict) -> tuple[list[str], dict]:
    figures = {}
    for name, (rl, ev) in (("grpo", spec["grpo"]), ("ppo", spec["ppo"])):
        budget = load(run_dir, rl, "budget.json")
        steps = len(read_jsonl(run_dir / rl / "metrics.jsonl")) if (run_dir / rl / "metrics.jsonl").is_file() else 0
        figures[name] = {"sampled_pass@1": load(run_dir, ev, "eval.json")["sampled_pass@1"], "steps": steps,
                         "seconds_per_step": budget.get("cpu_seconds", 0.0) / max(steps, 1),
                         "peak_rss_bytes": budget.get("peak_rss_bytes"), "flops": budget.get("flops_total", 0.0)}
    rows = [[name.upper(), f"{f['sampled_pass@1']:.3f}", str(f["steps"]), f"{f['seconds_per_step']:.2f}",
             f"{f['peak_rss_bytes'] / 2**20:.0f} MB" if f["peak_rss_bytes"] else "-", fmt_count(f["flops"])]
            for name, f in figures.items()]
    grpo, ppo = figures["grpo"], figures["ppo"]
    verdicts = [verdict("GRPO reaches PPO's accuracy on the same RL budget (sampled pass@1)",
                        grpo["sampled_pass@1"], ppo["sampled_pass@1"], paired_se(run_dir, spec["ppo"][1], spec["grpo"][1])),
                verdict("GRPO takes less time per step than PPO (no critic to run and train)",
                        grpo["seconds_per_step"], ppo["seconds_per_step"], lower_is_better=True)]
    if grpo["peak_rss_bytes"] and ppo["peak_rss_bytes"]:
        verdicts.append(verdict("GRPO needs less memory than PPO (peak resident memory of the stage)",
                                grpo["peak_rss_bytes"], ppo["peak_rss_bytes"], lower_is_better=True))
    parts = ["### 3. Why GRPO: no critic\n",
             ("DeepSeekMath (which R1 follows): PPO's value model is another model as large as the policy to run "
             "and train; GRPO replaces it by the mean reward of a group of samples. Same steps, prompts and group "
             "size; PPO's advantages come from its critic by GAE (`advantage: gae`). Peak memory is the process's "
             "peak resident set during the stage (interpreter and torch included).\n"),
             markdown_table(["algorithm", "sampled pass@1", "steps", "CPU s per step", "peak memory", "FLOPs"], rows),
             "", *verdict_lines(verdicts), ""]
    return parts, {"figures": figures, "verdicts": verdicts}


def scaling_at_test_time(run_dir: Path, spec: dict, png: Path) -> tuple[list[str], dict]:
    votes = load(run_dir, spec["votes"], "eval.json")
    ks = sorted(int(k.split("@")[1]) for k in votes if k.startswith("cons@"))
    cons = {k: votes[f"cons@{k}"] for k in ks}
    forcing = []
    for sid in spec.get("budget_forcing", []):
        r = load(run_dir, sid, "eval.json")
        cfg = load_stage_config(run_dir, sid)
        forcing.append({"stage": sid, "max_think_tokens": cfg.get("max_think_tokens", 0),
                        "mean_think_length": r["mean_think_length"], "sampled_pass@1": r["sampled_pass@1"]})
    forcing.sort(key=lambda f: f["mean_think_length"])
    n = votes.get("samples", ks[-1] if ks else 0)
    verdicts = [verdict(f"majority voting over {n} samples beats a single sample (cons@{n} vs pass@1)",
                        cons[n], votes["sampled_pass@1"])] if n in cons else []
    if len(forcing) >= 2:
        verdicts.append(verdict("more thinking tokens (budget forcing) give higher accuracy: the largest budget "
                                "against the smallest", forcing[-1]["sampled_pass@1"], forcing[0]["sampled_pass@1"]))
    curve_png(cons, votes["sampled_pass@1"], forcing, png)
    rows = [[str(k), f"{cons[k]:.3f}", f"{votes.get(f'pass@{k}', float('nan')):.3f}"] for k in ks]
    force_rows = [[f["stage"], str(f["max_think_tokens"] or "none"), f"{f['mean_think_length']:.1f}",
                   f"{f['sampled_pass@1']:.3f}"] for f in forcing]
    parts = ["### 4. Test-time scaling\n",
             (f"The paper: R1-Zero's AIME pass@1 71.0 rises to 86.7 with majority voting over 64 samples. Here "
             f"{votes['problems']} held-out problems, {n} samples each, pass@1 {votes['sampled_pass@1']:.3f}; cons@k "
             "is one vote over the first k samples, pass@k the unbiased chance that one of k is right.\n"),
             f"![cons@k and budget forcing]({png.name})\n",
             markdown_table(["k", "cons@k", "pass@k"], rows), "",
             "Budget forcing (s1): thinking is cut at `max_think_tokens` and the answer forced.\n",
             markdown_table(["stage", "max thinking tokens", "mean thinking tokens", "sampled pass@1"], force_rows), "",
             *verdict_lines(verdicts), ""]
    return parts, {"figures": {"cons": cons, "pass@1": votes["sampled_pass@1"], "budget_forcing": forcing},
                   "verdicts": verdicts}


def load_stage_config(run_dir: Path, sid: str) -> dict:
    import yaml

    return (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get(sid, {})


def curve_png(cons: dict, pass1: float, forcing: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.8, 3.3))
    axes[0].plot(list(cons), list(cons.values()), marker="o", label="cons@k (majority vote)")
    axes[0].axhline(pass1, color="C1", ls="--", label="pass@1")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("samples k")
    axes[0].set_title("majority voting")
    axes[0].legend(fontsize=7)
    axes[1].plot([f["mean_think_length"] for f in forcing], [f["sampled_pass@1"] for f in forcing], marker="o")
    axes[1].set_xlabel("mean thinking tokens")
    axes[1].set_title("budget forcing: sampled pass@1")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def claims_section(run_dir: Path, claims: dict, stage_dir: Path) -> list[str]:
    """The markdown of every comparison in `claims` (by name, in the order above); writes claims.json."""
    builders = {"r1_zero_vs_r1": r1_zero_vs_r1, "distillation_vs_rl": distillation_vs_rl, "ppo_vs_grpo": ppo_vs_grpo}
    parts, record = ["## The paper's claims in miniature\n"], {}
    for name, spec in claims.items():
        if name == "test_time":
            section, record[name] = scaling_at_test_time(run_dir, spec, stage_dir / "test_time.png")
        elif name in builders:
            section, record[name] = builders[name](run_dir, spec)
        else:
            from r1zero.errors import UserError

            raise UserError(f"report.claims: unknown comparison {name!r}; expected some of: "
                            f"{', '.join([*builders, 'test_time'])}")
        parts += section
    (stage_dir / "claims.json").write_text(json.dumps(record, indent=1))
    return parts
