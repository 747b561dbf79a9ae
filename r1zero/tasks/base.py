"""What a task is: examples, the rewards that score them by default, and optional difficulty levels.

Two kinds, one `Task` protocol:

- `GeneratedTask`: an endless source (arithmetic, Countdown, reasoning-gym). `examples(split, n, seed)`
  is a pure function of its arguments; the "test" split draws from a separate random stream, so a
  seed reproduces the same held-out set, but tiny problem spaces can still overlap with training.
- `DatasetTask`: a finite list per split, read once and cached (GSM8K, MATH, files, HF datasets).
  Bad rows either fail with file and line or are skipped and counted in `skipped[split]`.

`TASKS` maps a name to a factory `(**options) -> Task`; `r1zero.tasks.get` resolves names, `rg:`,
`hf:` and file paths. Unlike TRL/verl, where a dataset is a table and the reward is chosen apart from
it, a task here also names its default rewards, so `--task gsm8k` alone is a complete choice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from r1zero.errors import UserError
from r1zero.registry import Registry
from r1zero.types import Example

TASKS: Registry[Callable[..., Task]] = Registry("task")


@runtime_checkable
class Task(Protocol):
    """A source of Examples. `levels` is empty when the task has no difficulty levels."""

    name: str
    rewards: tuple[str, ...]  # reward names scored by default, e.g. ("math", "format")
    levels: tuple[int, ...]  # difficulty levels, easiest first; meta["difficulty"] holds one
    splits: tuple[str, ...]  # known splits, default first; empty = any split name is accepted
    finite: bool  # False for generators

    def examples(self, split: str | None = None, n: int | None = None, seed: int | None = None,
                 level: int | None = None) -> list[Example]: ...

    def sample(self, rng: random.Random, level: int | None = None, split: str | None = None) -> Example: ...

    def stream(self, split: str | None = None, seed: int = 0, level: int | None = None) -> Iterator[Example]: ...


class BadRow(ValueError):
    """One input row that cannot become an Example; the loader adds file and line."""


def check_level(task: Task, level: int | None) -> None:
    if level is not None and level not in task.levels:
        have = ", ".join(map(str, task.levels)) or "none"
        raise UserError(f"task {task.name!r} has no difficulty level {level!r}; levels: {have}")


def check_split(task: Task, split: str | None) -> str:
    """The split to use: `split`, or the task's default; an unknown one is a UserError."""
    if split is None:
        return task.splits[0] if task.splits else "train"
    if task.splits and split not in task.splits:
        raise UserError(f"task {task.name!r} has no split {split!r}; splits: {', '.join(task.splits)}")
    return split


@dataclass
class GeneratedTask:
    """Endless examples from `make(rng, level) -> Example`; `level=None` draws from `default_levels`."""

    name: str
    rewards: tuple[str, ...]
    levels: tuple[int, ...]
    default_levels: tuple[int, ...]
    make: Callable[[random.Random, int], Example]
    splits: tuple[str, ...] = ("train", "test")
    finite: bool = False

    def sample(self, rng: random.Random, level: int | None = None, split: str | None = None) -> Example:
        check_level(self, level)
        return self.make(rng, level if level is not None else rng.choice(self.default_levels))

    def examples(self, split: str | None = None, n: int | None = None, seed: int | None = None,
                 level: int | None = None) -> list[Example]:
        """`n` examples; the test split holds distinct problems (by meta id) where the space allows."""
        split = check_split(self, split)
        if n is None:
            raise UserError(f"task {self.name!r} is a generator: say how many examples (n)")
        # the test split is the same whatever the seed: two runs' tables are measured on the same problems
        rng = random.Random(f"{self.name}-{split}-{0 if split == 'test' else seed or 0}")
        if split == "train":
            return [self.sample(rng, level) for _ in range(n)]
        out, seen = [], set()
        for _ in range(50 * n + 100):  # small spaces (1-digit sums) cannot give n distinct ones
            ex = self.sample(rng, level)
            if ex.meta["id"] not in seen:
                seen.add(ex.meta["id"])
                out.append(ex)
                if len(out) == n:
                    break
        return out

    def stream(self, split: str | None = None, seed: int = 0, level: int | None = None) -> Iterator[Example]:
        rng = random.Random(f"{self.name}-{check_split(self, split)}-stream-{seed}")
        while True:
            yield self.sample(rng, level)


@dataclass
class DatasetTask:
    """A finite task: `load(split) -> (examples, skipped)` is called once per split and cached."""

    name: str
    rewards: tuple[str, ...]
    load: Callable[[str], tuple[list[Example], int]]
    splits: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    finite: bool = True
    skipped: dict[str, int] = field(default_factory=dict)  # bad rows skipped per split (on_bad_row="skip")
    _cache: dict[str, list[Example]] = field(default_factory=dict, repr=False)

    def rows(self, split: str | None = None) -> list[Example]:
        """All examples of a split, in file order (shared: copy before changing one)."""
        split = check_split(self, split)
        if split not in self._cache:
            self._cache[split], self.skipped[split] = self.load(split)
        return self._cache[split]

    def examples(self, split: str | None = None, n: int | None = None, seed: int | None = None,
                 level: int | None = None) -> list[Example]:
        """File order, or shuffled by `seed` when one is given; then the first `n`."""
        check_level(self, level)
        rows = self.rows(split)
        if level is not None:
            rows = [ex for ex in rows if ex.meta.get("difficulty") == level]
        if seed is not None:
            rows = list(rows)
            random.Random(seed).shuffle(rows)
        return list(rows[:n] if n is not None else rows)

    def sample(self, rng: random.Random, level: int | None = None, split: str | None = None) -> Example:
        rows = self.rows(split) if level is None else self.examples(split, level=level)
        if not rows:
            raise UserError(f"task {self.name!r} has no examples (split {split!r}, level {level!r})")
        return rng.choice(rows)

    def stream(self, split: str | None = None, seed: int = 0, level: int | None = None) -> Iterator[Example]:
        """Epoch after epoch, each shuffled by its own seed."""
        for epoch in range(10**12):
            rows = self.examples(split, seed=seed * 1_000_003 + epoch, level=level)
            if not rows:
                raise UserError(f"task {self.name!r} has no examples (split {split!r}, level {level!r})")
            yield from rows
