"""Countdown: every generated instance is solvable, respects its level, and is reproducible."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from r1zero import tasks
from r1zero.errors import UserError
from r1zero.tasks.countdown import solve


def reachable(nums: list[int], target: int) -> bool:
    """Brute force, independent of the package: can all of `nums`, each once, make `target`?"""
    seen: set[tuple[Fraction, ...]] = set()

    def search(values: list[Fraction]) -> bool:
        if len(values) == 1:
            return values[0] == target
        key = tuple(sorted(values))
        if key in seen:
            return False
        seen.add(key)
        for i in range(len(values)):
            for j in range(i + 1, len(values)):
                a, b, rest = values[i], values[j], values[:i] + values[i + 1:j] + values[j + 1:]
                outs = [a + b, a - b, b - a, a * b] + ([a / b] if b else []) + ([b / a] if a else [])
                if any(search(rest + [v]) for v in outs):
                    return True
        return False

    return search([Fraction(n) for n in nums])


def numbers_in(expr: str) -> list[int]:
    return sorted(int(tok) for tok in expr.replace("(", " ").replace(")", " ").split() if tok.isdigit())


@pytest.mark.parametrize("level, count", [(3, 30), (4, 20), (5, 10), (6, 5)])
def test_generated_instances_are_solvable_at_their_level(level, count):
    task = tasks.get("countdown")
    for ex in task.examples("train", n=count, seed=level, level=level):
        nums, target = ex.meta["nums"], ex.meta["target"]
        assert len(nums) == level == ex.meta["difficulty"]
        assert all(isinstance(n, int) and 1 <= n <= 100 for n in nums) and isinstance(target, int)
        assert 1 <= target <= 1000 and target not in nums
        assert numbers_in(ex.answer) == sorted(nums)  # the gold uses each number once
        assert eval(ex.answer) == target  # our own expression
        assert reachable(nums, target)
        assert str(target) in ex.prompt and str(nums) in ex.prompt


def test_default_mix_and_reproducibility():
    task = tasks.get("countdown", min_numbers=4, max_numbers=5)
    first = task.examples("train", n=40, seed=1)
    assert {ex.meta["difficulty"] for ex in first} == {4, 5}
    assert [ex.meta["id"] for ex in first] == [ex.meta["id"] for ex in task.examples("train", n=40, seed=1)]
    test = task.examples("test", n=40, seed=1)
    assert len({ex.meta["id"] for ex in test}) == 40
    assert {ex.meta["id"] for ex in test} != {ex.meta["id"] for ex in first}
    assert task.levels == (3, 4, 5, 6) and task.rewards == ("countdown", "format")
    with pytest.raises(UserError, match="level 7"):
        task.sample(random.Random(0), level=7)
    with pytest.raises(UserError, match="min_numbers"):
        tasks.get("countdown", min_numbers=2)


def test_solver_finds_rational_solutions_and_reports_none():
    expr = solve([1, 3, 4, 6], 24)  # only 6 / (1 - 3/4)
    assert expr is not None and abs(eval(expr) - 24) < 1e-9
    assert solve([1, 1, 1], 100) is None
    assert solve([5, 7, 100], 5, use_all=False) == "5"
