"""The registered tasks: the generators and the benchmarks in the shared data folder.

| name | kind | splits | default rewards | extra meta columns |
|---|---|---|---|---|
| arithmetic | generator, levels 1..6 digits | train, test | math, format | difficulty |
| countdown | generator, levels 3..6 numbers | train, test | countdown, format | nums, target, difficulty |
| products | generator (r1zero.tasks.products), levels 1..6 digits of a, b of `b_digits` (2) | train, test | math, format | difficulty |
| countdown_cd3 | file (d1's 256 tests), level 3 | test | countdown, format | nums, target, difficulty |
| gsm8k | file | train, test | math, format | |
| math500, math | file, levels 1..5 | test (math: train, test) | math, format | subject, difficulty |
| humaneval | file | test | code | prompt, test, entry_point, task_id |
| mbpp | file | train, validation, test, prompt | code | test_list, test_setup_code, task_id |

Every Example also has meta `task` and `id`. Where these depart from their sources: GSM8K keeps only
the final number as the answer; MATH takes `answer` and falls back to the last `\\boxed{}` of the
solution; HumanEval's gold answer is the whole function (prompt + canonical solution) and its
prompt asks for the whole function, as chat models answer; MBPP splits by task id as the MBPP
README does (prompt 1-10, test 11-510, validation 511-600, train 601-974) and its `\\r\\n` become
`\\n`. `math` expects the full MATH set as `math/{train,test}.jsonl` in the MATH-500 format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from r1zero.errors import UserError
from r1zero.tasks.arithmetic import ArithmeticGenerator
from r1zero.tasks.base import TASKS, BadRow, DatasetTask, GeneratedTask, check_level, check_split
from r1zero.tasks.countdown import countdown_example, countdown_task, solve
from r1zero.tasks.loaders import boxed_answer, data_dir, data_file, gsm8k_answer, load_file, required_field
from r1zero.types import Example

ARITHMETIC_LEVELS = (1, 2, 3, 4, 5, 6)
MATH_LEVELS = (1, 2, 3, 4, 5)
MBPP_SPLITS = {"train": (601, 974), "validation": (511, 600), "test": (11, 510), "prompt": (1, 10)}


@dataclass
class ArithmeticTask(GeneratedTask):
    """The train split never draws a problem of the test split (`arithmetic.is_test`); the test split
    is `ArithmeticGenerator.held_out`, the same whatever the seed (the seed changes training only)."""

    generator: ArithmeticGenerator | None = None

    def sample(self, rng: random.Random, level: int | None = None, split: str | None = None) -> Example:
        check_level(self, level)
        digits = level if level is not None else rng.choice(self.default_levels)
        return self.generator.example(self.generator.problem(rng, digits, split=split or "train"))

    def examples(self, split: str | None = None, n: int | None = None, seed: int | None = None,
                 level: int | None = None) -> list[Example]:
        if check_split(self, split) == "test" and n is not None:
            gen = self.generator if level is None else replace(self.generator, min_digits=level, max_digits=level)
            return [gen.example(p) for p in gen.held_out(n)]
        return super().examples(split, n, seed, level)


@TASKS.register("arithmetic")
def arithmetic(min_digits: int = 2, max_digits: int = 3, ops: str = "+-*") -> GeneratedTask:
    """`a op b`; without a level the digit count is uniform in min..max_digits (pretraining's mix)."""
    if not (1 <= min_digits <= max_digits <= ARITHMETIC_LEVELS[-1]) or not ops or set(ops) - set("+-*"):
        raise UserError(f"arithmetic needs 1 <= min_digits <= max_digits <= 6 and ops from '+-*', "
                        f"got {min_digits}..{max_digits}, {ops!r}")
    gen = ArithmeticGenerator(min_digits, max_digits, ops)
    return ArithmeticTask(name="arithmetic", rewards=("math", "format"), levels=ARITHMETIC_LEVELS,
                          default_levels=tuple(range(min_digits, max_digits + 1)),
                          make=lambda rng, level: gen.example(gen.problem(rng, level)), generator=gen)


TASKS.register("countdown")(countdown_task)


# ---- row converters: (row, index) -> Example, raising BadRow -------------------------------------


def gsm8k_row(row: dict, index: int) -> Example:
    question, solution = required_field(row, "question"), required_field(row, "answer")
    return Example(prompt=question, answer=gsm8k_answer(solution), meta={"task": "gsm8k", "id": f"gsm8k/{index}"})


def math_row(task: str, row: dict, index: int) -> Example:
    problem = required_field(row, "problem")
    answer = row.get("answer")
    if answer is None or not str(answer).strip():
        answer = boxed_answer(required_field(row, "solution"))
    meta = {"task": task, "id": row.get("unique_id", f"{task}/{index}"), "subject": row.get("subject", "")}
    level = row.get("level")
    if level is not None:
        try:
            meta["difficulty"] = int(str(level).removeprefix("Level "))  # full MATH writes "Level 3"
        except ValueError:
            raise BadRow(f"level {level!r} is not 1..5") from None
    return Example(prompt=problem, answer=str(answer).strip(), meta=meta)


def humaneval_row(row: dict, index: int) -> Example:
    stub = required_field(row, "prompt")
    meta = {name: required_field(row, name) for name in ("test", "entry_point", "task_id")}
    prompt = ("Complete the following Python function. Answer with the whole function in a ```python "
              f"code block.\n\n```python\n{stub}```")
    return Example(prompt=prompt, answer=stub + row.get("canonical_solution", ""),
                   meta={"task": "humaneval", "id": meta["task_id"], "prompt": stub, **meta})


def mbpp_row(row: dict, index: int) -> Example:
    text, tests = required_field(row, "text"), required_field(row, "test_list")
    if not isinstance(tests, list):
        raise BadRow("test_list is not a list")
    prompt = (f"You are an expert Python programmer, and here is your task: {text} "
              "Your code should pass these tests:\n\n" + "\n".join(tests))
    task_id = required_field(row, "task_id")
    return Example(prompt=prompt, answer=str(row.get("code", "")).replace("\r\n", "\n"),
                   meta={"task": "mbpp", "id": f"mbpp/{task_id}", "task_id": task_id, "test_list": tests,
                         "test_setup_code": row.get("test_setup_code", "")})


def countdown_cd3_row(row: dict, index: int) -> Example:
    try:
        nums = [int(x) for x in str(required_field(row, "input")).split(",")]
        target = int(required_field(row, "output"))
    except ValueError:
        raise BadRow("input must be comma-separated integers and output an integer") from None
    answer = solve(nums, target)
    if answer is None:
        raise BadRow(f"no expression over {nums} reaches {target}")
    return countdown_example(nums, target, answer, task="countdown_cd3")


# ---- registered benchmarks ------------------------------------------------------------------------


def benchmark(name: str, rewards: tuple[str, ...], files: dict[str, str], what: str,
              to_example: Callable[[dict, int], Example], root: str | None, on_bad_row: str,
              levels: tuple[int, ...] = (), keep: Callable[[str, Example], bool] | None = None) -> DatasetTask:
    """A task over files in the data folder, found when first read; `keep(split, ex)` filters a
    file shared by several splits (bad rows are then counted over the whole file)."""

    def load(split: str) -> tuple[list[Example], int]:
        rows, skipped = load_file(data_file(data_dir(root), files[split], what), to_example, on_bad_row)
        return ([ex for ex in rows if keep(split, ex)] if keep else rows), skipped

    return DatasetTask(name=name, rewards=rewards, load=load, splits=tuple(files), levels=levels)


@TASKS.register("gsm8k")
def gsm8k(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    """GSM8K; ids are `gsm8k/<line index>` within each split's file."""
    files = {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"}
    return benchmark("gsm8k", ("math", "format"), files, "GSM8K", gsm8k_row, data_dir, on_bad_row)


@TASKS.register("math500")
def math500(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    return benchmark("math500", ("math", "format"), {"test": "math500/test.jsonl"}, "MATH-500",
                     partial(math_row, "math500"), data_dir, on_bad_row, MATH_LEVELS)


@TASKS.register("math")
def math(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    files = {"train": "math/train.jsonl", "test": "math/test.jsonl"}
    return benchmark("math", ("math", "format"), files, "MATH", partial(math_row, "math"), data_dir,
                     on_bad_row, MATH_LEVELS)


@TASKS.register("humaneval")
def humaneval(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    return benchmark("humaneval", ("code",), {"test": "humaneval/HumanEval.jsonl"}, "HumanEval",
                     humaneval_row, data_dir, on_bad_row)


@TASKS.register("mbpp")
def mbpp(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    def keep(split: str, ex: Example) -> bool:
        lo, hi = MBPP_SPLITS[split]
        return lo <= int(ex.meta["task_id"]) <= hi

    return benchmark("mbpp", ("code",), dict.fromkeys(MBPP_SPLITS, "mbpp/mbpp.jsonl"), "MBPP", mbpp_row,
                     data_dir, on_bad_row, keep=keep)


@TASKS.register("countdown_cd3")
def countdown_cd3(data_dir: str | None = None, on_bad_row: str = "error") -> DatasetTask:
    return benchmark("countdown_cd3", ("countdown", "format"), {"test": "countdown/countdown_cd3_test.jsonl"},
                     "Countdown (cd3)", countdown_cd3_row, data_dir, on_bad_row, levels=(3,))
