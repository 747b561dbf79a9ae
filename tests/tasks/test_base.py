"""Task resolution: every registered name builds and yields Examples; generators are reproducible."""

from __future__ import annotations

import inspect
import random
import re

import pytest

from r1zero import tasks
from r1zero.errors import UserError
from r1zero.tasks.arithmetic import ArithmeticGenerator
from r1zero.types import Example

DEFAULT_REWARDS = {"arithmetic": ("math", "format"), "countdown": ("countdown", "format"),
                   "countdown_cd3": ("countdown", "format"), "gsm8k": ("math", "format"),
                   "math500": ("math", "format"), "math": ("math", "format"), "humaneval": ("code",),
                   "mbpp": ("code",), "products": ("math", "format")}


@pytest.mark.parametrize("name", tasks.TASKS.names())
def test_every_registered_task_yields_examples(name, request):
    """Data-backed tasks skip when the shared folder (or their file in it) is absent; generators never."""
    if "data_dir" in inspect.signature(tasks.TASKS.get(name)).parameters:
        task = tasks.get(name, data_dir=str(request.getfixturevalue("shared_data")))
    else:
        task = tasks.get(name)
    assert isinstance(task, tasks.Task) and task.name == name and task.rewards == DEFAULT_REWARDS[name]
    split = task.splits[-1]
    try:
        examples = task.examples(split, n=2, seed=0)
    except UserError as e:
        if "data not found" in str(e):
            pytest.skip(str(e))
        raise
    assert len(examples) == 2 and all(isinstance(ex, Example) for ex in examples)
    for ex in examples:
        assert ex.prompt and isinstance(ex.answer, str) and ex.meta["task"] == name and ex.meta["id"]
        if task.levels and "difficulty" in ex.meta:
            assert ex.meta["difficulty"] in task.levels
    assert isinstance(task.sample(random.Random(0), split=split), Example)
    assert isinstance(next(task.stream(split)), Example)


def test_every_name_is_in_the_default_rewards_table():
    assert set(tasks.TASKS.names()) == set(DEFAULT_REWARDS)


def test_arithmetic_test_split_is_the_pretraining_held_out_set():
    task = tasks.get("arithmetic")
    held_out = ArithmeticGenerator().held_out(20)
    assert [ex.prompt for ex in task.examples("test", n=20)] == [f"{p.text}=" for p in held_out]
    assert [ex.answer for ex in task.examples("test", n=20)] == [str(p.answer) for p in held_out]
    deep = task.examples("train", n=30, seed=2, level=6)
    assert all(ex.meta["difficulty"] == 6 for ex in deep)
    assert max(len(a) for ex in deep for a in re.split(r"[-+*]", ex.prompt[:-1])) == 6
    assert {ex.meta["difficulty"] for ex in task.examples("train", n=50)} == {2, 3}
    assert task.examples("train", n=5, seed=1) == task.examples("train", n=5, seed=1)
    assert task.examples("train", n=5, seed=1) != task.examples("train", n=5, seed=2)


def test_dataset_order_shuffle_and_stream(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(f'{{"question": "q{i}", "answer": "{i}"}}\n' for i in range(10)))
    task = tasks.get(str(path))
    assert [ex.answer for ex in task.examples(n=3)] == ["0", "1", "2"]
    shuffled = [ex.answer for ex in task.examples(seed=0)]
    assert sorted(shuffled, key=int) == [str(i) for i in range(10)] and shuffled != sorted(shuffled, key=int)
    stream = task.stream(seed=0)
    two_epochs = [next(stream).answer for _ in range(20)]
    assert sorted(two_epochs[:10]) == sorted(two_epochs[10:]) and two_epochs[:10] != two_epochs[10:]


def test_resolution_errors():
    with pytest.raises(UserError, match="unknown task 'gsm9k'; expected one of: .*gsm8k.*rg:"):
        tasks.get("gsm9k")
    with pytest.raises(UserError, match="task 'gsm8k' has no option 'path'; options: data_dir, on_bad_row"):
        tasks.get("gsm8k", path="x")
    with pytest.raises(UserError, match="is a generator"):
        tasks.get("countdown").examples()
    with pytest.raises(UserError, match="no split 'dev'"):
        tasks.get("arithmetic").examples("dev", n=1)
    with pytest.raises(UserError, match="no difficulty level 9"):
        tasks.get("arithmetic").examples(n=1, level=9)


def test_a_generated_tasks_test_split_does_not_depend_on_the_seed():
    """Two seeds' tables are measured on the same problems, and training (which skips them) too."""
    for name in ("countdown", "arithmetic"):
        task = tasks.get(name)
        assert [e.prompt for e in task.examples("test", n=20, seed=0)] == \
               [e.prompt for e in task.examples("test", n=20, seed=7)]
