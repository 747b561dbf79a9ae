"""Evaluating model folders: per-item records, the eval.json summary, side-by-side reports, determinism."""

from __future__ import annotations

import json

import pytest

from r1zero.config import EvalConfig
from r1zero.eval.evaluate import EvalOptions, evaluate_model, summarize
from r1zero.eval.stage import run_eval
from r1zero.stages import StageContext
from tests.conftest import build_tiny

SMALL = {"problems": 5, "samples": 4, "max_new_tokens": 8, "batch_size": 8, "progress": False}


def test_evaluate_model_records_every_item(tiny_model):
    result = evaluate_model(tiny_model, EvalOptions(**SMALL), seed=0)
    assert len(result.items) == 5
    item = result.items[0]
    for key in ("id", "prompt", "gold", "answers", "correct", "votes", "cons_answer", "cons", "lengths",
                "think_lengths", "finish", "completions", "greedy"):
        assert key in item
    assert len(item["answers"]) == len(item["correct"]) == len(item["completions"]) == 4
    assert item["prompt"].endswith("=")  # template plain: the raw `123+45=`
    s = result.summary
    for key in ("greedy_pass@1", "sampled_pass@1", "pass@1", "pass@2", "pass@3", "pass@4", "cons@1", "cons@2",
                "cons@4", "format_rate", "reasoning_share", "readability_share", "mean_length", "mean_think_length",
                "truncation_rate", "answer_rate", "items_per_s"):
        assert key in s, key
    assert s["problems"] == 5 and s["samples"] == 4 and s["mean_length"] <= 8


def test_evaluation_is_deterministic_for_a_seed(tiny_model):
    a = evaluate_model(tiny_model, EvalOptions(**SMALL), seed=1).items
    b = evaluate_model(tiny_model, EvalOptions(**SMALL), seed=1).items
    assert [it["completions"] for it in a] == [it["completions"] for it in b]


def test_summary_from_hand_made_items():
    def item(correct, answers, cons, rechecks, corrections, difficulty):
        return {"correct": correct, "answers": answers, "cons": cons, "formatted": [True] * 2,
                "reasons": [True, False], "readable": [False, True], "lengths": [4, 6], "think_lengths": [2, 2],
                "finish": ["stop", "length"],
                "greedy": {"correct": correct[0]}, "rechecks": rechecks, "corrections": corrections,
                "difficulty": difficulty}

    items = [item([True, False], ["1", "2"], {"1": True, "2": True}, [True, True], [True, False], 2),
             item([False, False], [None, "3"], {"1": False, "2": False}, [True, False], [True, False], 3)]
    s = summarize(items, 2, greedy=True, best_of=False)
    assert s["greedy_pass@1"] == 0.5 and s["sampled_pass@1"] == 0.25 and s["pass@2"] == 0.5
    assert s["cons@2"] == 0.5 and s["answer_rate"] == 0.75 and s["truncation_rate"] == 0.5
    assert s["mean_length"] == 5 and s["reasoning_share"] == 0.5 and s["readability_share"] == 0.5
    # 3 of 4 samples re-check (1 of them right), 2 correct a step (1 of them ends right), 1 does neither
    assert s["recheck_share"] == 0.75 and s["correction_share"] == 0.5 and s["faithful_corrections"] == 0.5
    assert s["accuracy_with_recheck"] == 1 / 3 and s["accuracy_without_recheck"] == 0.0
    assert s["accuracy/d2"] == 0.5 and s["accuracy/d3"] == 0.0


def test_budget_forcing_and_best_of_n_options(tiny_model):
    opts = EvalOptions(**SMALL, max_think_tokens=2, verifier="format")
    result = evaluate_model(tiny_model, opts, seed=0)
    assert all(t <= 2 for it in result.items for t in it["think_lengths"])
    assert "bon@4" in result.summary
    assert all(0 <= it["best_of_n"]["index"] < 4 for it in result.items)


def test_jsonl_task(tiny_model, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"{i}+{i}=", "answer": str(2 * i)}) + "\n" for i in range(3)))
    result = evaluate_model(tiny_model, EvalOptions(**{**SMALL, "problems": 0}, task=str(data)), seed=0)
    assert [it["gold"] for it in result.items] == ["0", "2", "4"]


def test_stage_writes_a_side_by_side_report(tiny_model, tmp_path):
    other = build_tiny(tmp_path / "rl" / "model", hidden_size=32)
    cfg = EvalConfig(problems=3, samples=2, max_new_tokens=6, batch_size=8)
    cfg.models = [str(other)]  # the `models` field (side by side), set as the recipe would
    ctx = StageContext(tmp_path, tmp_path / "eval", "eval", 0, tiny_model, False)
    run_eval(cfg, ctx)
    out = json.loads((tmp_path / "eval" / "eval.json").read_text())
    for key in ("greedy_pass@1", "sampled_pass@1", "pass@2", "format_rate", "reasoning_share", "mean_length"):
        assert key in out
    assert [m["model"] for m in out["models"]] == [str(tiny_model), str(other)]
    names = sorted(p.name for p in (tmp_path / "eval").iterdir())
    assert names == ["budget.json", "eval.json", "items-rl.jsonl", "items-tiny-dsv3.jsonl", "passk.png", "report.md"]
    rows = (tmp_path / "eval" / "items-rl.jsonl").read_text().splitlines()
    assert len(rows) == 3 and json.loads(rows[0])["answers"]
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "| tiny-dsv3 | rl |" in report and "passk.png" in report


def test_cli_eval(tiny_model, tmp_path, capsys):
    from r1zero.cli import main

    status = main(["eval", "--model", str(tiny_model), "--out", str(tmp_path / "ev"), "problems=2", "samples=2",
                   "max_new_tokens=4"])
    assert status == 0
    assert (tmp_path / "ev" / "eval" / "items.jsonl").read_text().count("\n") == 2
    assert "sampled_pass@1" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["no-such-task"])
def test_unknown_task_is_a_user_error(tiny_model, bad):
    from r1zero.errors import UserError

    with pytest.raises(UserError, match="unknown task"):
        evaluate_model(tiny_model, EvalOptions(**SMALL, task=bad), seed=0)


def test_worker_processes_give_the_same_items_and_figures(tiny_model):
    """Chunks generated by two spawned workers (hard split included) are one process's, bit for bit."""
    from r1zero.eval.stage import evaluate_models

    opts = EvalOptions(**{**SMALL, "problems": 12, "batch_size": 8, "hard_problems": 3, "hard_samples": 6,
                          "hard_min_digits": 4, "hard_max_digits": 4})
    alone = evaluate_models([tiny_model], opts, seed=3)[0]
    pooled = evaluate_models([tiny_model], EvalOptions(**{**opts.__dict__, "processes": 2}), seed=3)[0]
    assert len(alone.items) == 15 and [it.get("split") for it in alone.items].count("hard") == 3
    assert [it["completions"] for it in pooled.items] == [it["completions"] for it in alone.items]
    assert [it["greedy"] for it in pooled.items] == [it["greedy"] for it in alone.items]
    timing = ("seconds", "items_per_s", "hard/seconds", "hard/items_per_s")
    assert {k: v for k, v in pooled.summary.items() if k not in timing} == \
        {k: v for k, v in alone.summary.items() if k not in timing}
