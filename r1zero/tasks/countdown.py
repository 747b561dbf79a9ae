"""Countdown: reach a target from a few numbers with + - * / and parentheses, each number at most once.

The task TinyZero used to reproduce R1-Zero's "aha" on a small budget. Where this departs from
TinyZero's data (Jiayi-Pan/Countdown-Tasks-3to4, sampled numbers with a brute-forced target):
an instance is made by building a random expression tree over all its numbers, keeping every
intermediate result a positive integer (division only when exact), so it is solvable by
construction and its gold `answer` is that expression. Difficulty is the count of numbers (3..6).

Meta columns: `nums` (list[int]), `target` (int), plus task, difficulty, id.
"""

from __future__ import annotations

import random
from fractions import Fraction
from itertools import combinations

from r1zero.errors import UserError
from r1zero.tasks.base import GeneratedTask
from r1zero.types import Example

LEVELS = (3, 4, 5, 6)


def prompt_text(nums: list[int], target: int) -> str:
    return (f"Using the numbers {nums}, create an equation that equals {target}. You can use +, -, *, / "
            f"and parentheses, and each number at most once.")


def combine(rng: random.Random, a: tuple[int, str], b: tuple[int, str], limit: int) -> tuple[int, str]:
    """One random operation on two subtrees whose result is a positive integer <= `limit`."""
    (x, xs), (y, ys) = (a, b) if a[0] >= b[0] else (b, a)
    options = [(x + y, "+")]
    if x > y:
        options.append((x - y, "-"))
    if x * y <= limit:
        options.append((x * y, "*"))
    if y > 1 and x % y == 0:
        options.append((x // y, "/"))
    value, op = rng.choice(options)
    return value, f"{xs} {op} {ys}"


def make_instance(rng: random.Random, n_numbers: int, max_number: int = 100,
                  max_target: int = 1000) -> tuple[list[int], int, str]:
    """(nums, target, expression): a random expression tree over `n_numbers` numbers in 1..max_number.

    The target lies in 1..max_target and is none of the numbers (that would need no arithmetic).
    """
    while True:
        nums = [rng.randint(1, max_number) for _ in range(n_numbers)]
        pool = [(v, str(v)) for v in nums]
        while len(pool) > 1:
            i, j = sorted(rng.sample(range(len(pool)), 2))
            b, a = pool.pop(j), pool.pop(i)
            value, text = combine(rng, a, b, limit=10 * max_target)
            pool.append((value, f"({text})" if len(pool) else text))
        target, expr = pool[0]
        if 1 <= target <= max_target and target not in nums:
            return nums, target, expr


def solve(nums: list[int], target: int, use_all: bool = True) -> str | None:
    """An expression over `nums` (all of them, or any subset) equal to `target`, or None. Exact
    rational arithmetic, so `6 / (1 - 3/4)` counts; exhaustive, fine for up to about five numbers."""
    failed: set[tuple[Fraction, ...]] = set()

    def search(items: list[tuple[Fraction, str]]) -> str | None:
        if not use_all:
            for value, text in items:
                if value == target:
                    return text
        if len(items) == 1:
            return items[0][1] if items[0][0] == target else None
        key = tuple(sorted(v for v, _ in items))
        if key in failed:
            return None
        for i, j in combinations(range(len(items)), 2):
            (a, at), (b, bt) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            results = [(a + b, f"({at} + {bt})"), (a - b, f"({at} - {bt})"), (b - a, f"({bt} - {at})"),
                       (a * b, f"({at} * {bt})")]
            results += [(a / b, f"({at} / {bt})")] if b else []
            results += [(b / a, f"({bt} / {at})")] if a else []
            for item in results:
                found = search(rest + [item])
                if found:
                    return found
        failed.add(key)
        return None

    found = search([(Fraction(n), str(n)) for n in nums])
    return found[1:-1] if found and found.startswith("(") else found  # drop the outermost parentheses


def countdown_example(nums: list[int], target: int, answer: str, task: str = "countdown") -> Example:
    return Example(prompt=prompt_text(nums, target), answer=answer,
                   meta={"task": task, "difficulty": len(nums), "id": f"{task}/{','.join(map(str, nums))}={target}",
                         "nums": list(nums), "target": int(target)})


def countdown_task(min_numbers: int = 3, max_numbers: int = 4, max_number: int = 100,
                   max_target: int = 1000) -> GeneratedTask:
    """Countdown instances; without a level, the count of numbers is uniform in min..max_numbers."""
    if not (LEVELS[0] <= min_numbers <= max_numbers <= LEVELS[-1]):
        raise UserError(f"countdown needs {LEVELS[0]} <= min_numbers <= max_numbers <= {LEVELS[-1]}, "
                        f"got {min_numbers}..{max_numbers}")

    def make(rng: random.Random, level: int) -> Example:
        nums, target, expr = make_instance(rng, level, max_number, max_target)
        return countdown_example(nums, target, expr)

    return GeneratedTask(name="countdown", rewards=("countdown", "format"), levels=LEVELS,
                         default_levels=tuple(range(min_numbers, max_numbers + 1)), make=make)
