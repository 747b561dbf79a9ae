"""The `reasoning_gym` reward on entries the reasoning-gym library generated."""

import json

import pytest

from r1zero.errors import UserError
from r1zero.rewards import get

reasoning_gym = pytest.importorskip("reasoning_gym")


def entries(task: str, n: int = 5) -> list[dict]:
    return list(reasoning_gym.create_dataset(task, size=n, seed=7))


def score(completions, rows, **columns):
    return get("reasoning_gym")(["Q"] * len(completions), completions, rg_entry=rows, **columns)


@pytest.mark.parametrize("task", ["basic_arithmetic", "chain_sum"])
def test_arithmetic_tasks(task):
    rows = entries(task)
    right = score([f"<think>...</think><answer>{r['answer']}</answer>" for r in rows], rows)
    wrong = score([f"<answer>{int(r['answer']) + 1}</answer>" for r in rows], rows, rg_task=[task] * len(rows))
    missing = score(["I give up"] * len(rows), rows)
    assert right == [1.0] * len(rows)
    assert wrong == missing == [0.0] * len(rows)


def test_countdown_entries_and_our_countdown_reward_agree():
    rows = entries("countdown")
    right = score([f"<answer>{r['answer']}</answer>" for r in rows], rows)
    wrong = score([f"<answer>{r['metadata']['numbers'][0]}</answer>" for r in rows], rows)
    assert right == [1.0] * len(rows)
    assert all(s < 1.0 for s in wrong)  # reasoning-gym's countdown gives 0.05 to a wrong equation
    ours = get("countdown", use_all_numbers=True)(
        ["Q"] * len(rows), [f"<answer>{r['answer']}</answer>" for r in rows],
        nums=[r["metadata"]["numbers"] for r in rows], target=[r["metadata"]["target"] for r in rows])
    assert ours == [1.0] * len(rows)


def test_entry_as_json_and_missing_entries():
    row = entries("basic_arithmetic", 1)[0]
    as_json = json.dumps(row, default=list)
    assert score([f"<answer>{row['answer']}</answer>", "x"], [as_json, None]) == [1.0, None]


def test_unknown_task():
    row = entries("basic_arithmetic", 1)[0]
    with pytest.raises(UserError, match="unknown reasoning-gym dataset 'no_such_task'"):
        score(["<answer>1</answer>"], [row], rg_task=["no_such_task"])
