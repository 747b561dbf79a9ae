"""The report of a run with tools gains the tool-use figure and rows; a run without tools reads as before."""

from __future__ import annotations

import json

import yaml

from r1zero.config import ReportConfig
from r1zero.run_report import run_report
from r1zero.stages import StageContext

BASE = {"problems": 4, "samples": 8, "greedy_pass@1": 0.25, "sampled_pass@1": 0.1, "pass@8": 0.5, "format_rate": 1.0}
TOOLS = {"tool_call_share": 0.06, "tool_calls": 0.06, "accuracy_with_tool": 0.5, "accuracy_without_tool": 0.0,
         "greedy_tool_call_share": 0.0}


def fake_run(tmp_path, tools: bool):
    """A run folder as the pipeline leaves it (config, two eval.json, an RL metrics log), written by hand."""
    run = tmp_path / ("tools" if tools else "plain")
    stages = ["eval_base", "rl", "eval_rl", "report"]
    (run / "report").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"stages": stages, "eval_base": {"kind": "eval"},
                                                     "eval_rl": {"kind": "eval"}}))
    for sid, share, acc in (("eval_base", 0.06, 0.1), ("eval_rl", 0.9, 0.8)):
        (run / sid).mkdir()
        result = {**BASE, "sampled_pass@1": acc, **({**TOOLS, "tool_call_share": share} if tools else {})}
        (run / sid / "eval.json").write_text(json.dumps(result))
    (run / "rl").mkdir()
    rows = [{"step": s, "accuracy": s / 10, "response_length": 20.0, "reward": s / 10,
             **({"tool_call_share": s / 10} if tools else {})} for s in range(1, 11)]
    (run / "rl" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_report(ReportConfig(), StageContext(run, run / "report", "report", 0, None, False))
    return run


def test_a_tool_run_reports_tool_share_and_accuracy_against_step(tmp_path):
    run = fake_run(tmp_path, tools=True)
    report = (run / "report.md").read_text()
    assert "(report/tool_curves.png)" in report and (run / "report" / "tool_curves.png").stat().st_size > 1000
    assert "| completions that call a tool | 0.060 | 0.900 |" in report
    assert "| accuracy with a tool call | 0.500 | 0.500 |" in report


def test_a_run_without_tools_has_no_tool_figure_or_rows(tmp_path):
    run = fake_run(tmp_path, tools=False)
    report = (run / "report.md").read_text()
    assert "tool" not in report and not (run / "report" / "tool_curves.png").exists()
    assert "| sampled pass@1 | 0.100 | 0.800 |" in report
