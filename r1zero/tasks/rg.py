"""reasoning-gym tasks by name (`rg:<dataset>`), scored by the library's own `score_answer`.

reasoning-gym (open-thought/reasoning-gym) makes procedural datasets: `create_dataset(name, size=,
seed=, **config)` gives entries `{"question", "answer", "metadata"}`, and each dataset scores an
answer with `score_answer(answer, entry)`. Here an entry becomes an Example with the question as
prompt and two meta columns for the `reasoning_gym` reward: `rg_task` (the dataset that scores it:
`metadata["source_dataset"]`, which differs from the name only for `composite`) and `rg_entry`
(the entry exactly as generated; it is JSON-serialisable, but `arc_agi` and `rearc` compare
tuples, so a JSON round trip that turns them into lists makes their gold answers score low).

Departures: no difficulty levels (reasoning-gym's own curricula are not wired in); entries whose
answer is None (puzzles with many solutions, e.g. `rush_hour`) get answer "" and rely on the scorer.
The library is imported only when an `rg:` task is asked for.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from r1zero.errors import UserError
from r1zero.tasks.base import check_split
from r1zero.types import Example


def entry_example(name: str, entry: dict[str, Any], id_: str) -> Example:
    source = entry.get("metadata", {}).get("source_dataset", name)
    answer = "" if entry["answer"] is None else str(entry["answer"])
    return Example(prompt=entry["question"], answer=answer,
                   meta={"task": f"rg:{name}", "id": id_, "rg_task": source, "rg_entry": entry})


@dataclass
class ReasoningGymTask:
    """A reasoning-gym dataset as a generator task; `config` goes to the dataset's config class."""

    dataset: str
    config: dict[str, Any] = field(default_factory=dict)
    rewards: tuple[str, ...] = ("reasoning_gym", "format")
    levels: tuple[int, ...] = ()
    splits: tuple[str, ...] = ("train", "test")
    finite: bool = False

    def __post_init__(self) -> None:
        from reasoning_gym.factory import DATASETS

        if self.dataset not in DATASETS:
            raise UserError(f"unknown reasoning-gym task {self.dataset!r}; expected one of: "
                            f"{', '.join(sorted(DATASETS))}")
        self.entries(1, 0)  # a bad config fails now, with its message

    @property
    def name(self) -> str:
        return f"rg:{self.dataset}"

    def entries(self, size: int, seed: int) -> list[dict[str, Any]]:
        import reasoning_gym

        try:
            data = reasoning_gym.create_dataset(self.dataset, size=size, seed=seed, **self.config)
        except (TypeError, ValueError, AssertionError) as e:
            raise UserError(f"reasoning-gym task {self.dataset!r}: bad options {self.config}: {e}") from None
        return [data[i] for i in range(size)]

    def examples(self, split: str | None = None, n: int | None = None, seed: int | None = None,
                 level: int | None = None) -> list[Example]:
        split = check_split(self, split)
        if level is not None:
            raise UserError(f"task {self.name!r} has no difficulty levels")
        if n is None:
            raise UserError(f"task {self.name!r} is a generator: say how many examples (n)")
        rg_seed = zlib.crc32(f"{split}-{seed or 0}".encode()) & 0x7FFFFFFF
        return [entry_example(self.dataset, e, f"{self.name}/{split}-{seed or 0}/{i}")
                for i, e in enumerate(self.entries(n, rg_seed))]

    def sample(self, rng: random.Random, level: int | None = None, split: str | None = None) -> Example:
        return self.examples(split, 1, rng.randrange(2**31), level)[0]

    def stream(self, split: str | None = None, seed: int = 0, level: int | None = None,
               chunk: int = 256) -> Iterator[Example]:
        for k in range(10**12):
            yield from self.examples(split, chunk, seed * 1_000_003 + k, level)
