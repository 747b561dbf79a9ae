"""reasoning-gym by name: Examples with the columns the `reasoning_gym` reward reads, scored by the library."""

from __future__ import annotations

import json
import random

import pytest

from r1zero import tasks
from r1zero.errors import UserError

reasoning_gym = pytest.importorskip("reasoning_gym")


@pytest.mark.parametrize("name", ["basic_arithmetic", "chain_sum", "countdown", "letter_counting"])
def test_rg_task_examples_score_with_the_library(name):
    task = tasks.get(f"rg:{name}")
    assert task.name == f"rg:{name}" and task.rewards == ("reasoning_gym", "format") and not task.finite
    examples = task.examples("train", n=4, seed=0)
    assert len(examples) == 4
    score = reasoning_gym.get_score_answer_fn(name)
    for ex in examples:
        assert ex.meta["rg_task"] == name and ex.meta["task"] == f"rg:{name}"
        entry = ex.meta["rg_entry"]
        assert ex.prompt == entry["question"] and ex.answer == entry["answer"]
        json.dumps(entry)  # JSON-serialisable as generated
        assert score(ex.answer, entry) == 1.0
        assert score("definitely not it", entry) < 1.0
        assert score(None, entry) < 1.0


def test_rg_is_reproducible_and_splits_differ():
    task = tasks.get("rg:chain_sum")
    a, b = task.examples("train", n=5, seed=3), task.examples("train", n=5, seed=3)
    assert [ex.prompt for ex in a] == [ex.prompt for ex in b]
    assert [ex.prompt for ex in a] != [ex.prompt for ex in task.examples("test", n=5, seed=3)]
    assert task.sample(random.Random(0)).meta["rg_task"] == "chain_sum"
    stream = task.stream(seed=0)
    assert len({next(stream).meta["id"] for _ in range(3)}) == 3


def test_rg_options_reach_the_dataset_config():
    task = tasks.get("rg:countdown", min_numbers=3, max_numbers=3)
    assert all(len(ex.meta["rg_entry"]["metadata"]["numbers"]) == 3 for ex in task.examples(n=5))
    with pytest.raises(UserError, match="bad options"):
        tasks.get("rg:countdown", no_such_option=1)
    with pytest.raises(UserError, match="unknown reasoning-gym task 'no_such_task'.*chain_sum"):
        tasks.get("rg:no_such_task")
