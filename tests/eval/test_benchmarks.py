"""GSM8K and MATH-500 from the shared data folder, end to end with a tiny (untrained) model and k=2.

Scores are near zero (an untrained model); what is tested is the pipeline: every item processed,
per-item jsonl written, answers extracted. The full sets (1319 + 500 items) are marked slow
(about 2 minutes on 2 busy cores with one torch thread); the default suite runs the first 40 of each.
"""

from __future__ import annotations

import json

import pytest

from r1zero.config import EvalConfig
from r1zero.eval.stage import run_eval
from r1zero.stages import StageContext


def run_benchmark(task, problems, model, data, tmp_path) -> list[dict]:
    cfg = EvalConfig(task=task, problems=problems, samples=2, max_new_tokens=16, batch_size=256)
    cfg.greedy, cfg.task_options, cfg.temperature, cfg.top_p = False, {"data_dir": str(data)}, 0.6, 0.95
    run_eval(cfg, StageContext(tmp_path, tmp_path / task, task, 0, model, False))
    items = [json.loads(line) for line in (tmp_path / task / "items.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / task / "eval.json").read_text())
    assert summary["problems"] == len(items) and summary["samples"] == 2
    assert [it["index"] for it in items] == list(range(len(items)))
    assert len({it["id"] for it in items}) == len(items)
    for it in items:
        assert len(it["answers"]) == len(it["correct"]) == len(it["completions"]) == 2 and it["gold"]
        assert max(it["lengths"]) <= 16
    return items


@pytest.mark.parametrize("task", ["gsm8k", "math500"])
def test_first_items_of_each_benchmark(task, tiny_model, shared_data, tmp_path):
    items = run_benchmark(task, 40, tiny_model, shared_data, tmp_path)
    assert len(items) == 40


@pytest.mark.slow
@pytest.mark.parametrize(("task", "size"), [("gsm8k", 1319), ("math500", 500)])
def test_whole_benchmark(task, size, tiny_model, shared_data, tmp_path):
    items = run_benchmark(task, 0, tiny_model, shared_data, tmp_path)
    assert len(items) == size
