"""The `reasoning_gym` reward: score an answer with the reasoning-gym library's own scorer.

Columns: `rg_entry` (the entry dict a reasoning-gym dataset produced: question, answer, metadata;
a JSON string is accepted too, as a dataset file may store it) and `rg_task` (the dataset name,
e.g. "basic_arithmetic"); without `rg_task`, the entry's `metadata.source_dataset` names it.

The answer passed to the scorer is the final answer (`<answer>` tags, else the last `\\boxed{}`),
or None when there is none. Scores are whatever the dataset's `score_answer` returns, in [0, 1]:
some datasets give partial credit (the default scorer gives len(gold)/len(answer) when the gold
is inside the answer; countdown gives 0.01 for no answer and 0.05 for a wrong one), as the
library's own training code does. The scorer is built from the dataset's default config, as
`reasoning_gym.get_score_answer_fn` does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from r1zero.errors import UserError
from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import final_answer


@functools.cache
def score_answer_fn(task: str) -> Callable[[str | None, dict], float]:
    import reasoning_gym

    try:
        return reasoning_gym.get_score_answer_fn(task)
    except ValueError:
        raise UserError(f"reasoning_gym reward: unknown reasoning-gym dataset {task!r}") from None


def _entry_dict(entry: Any) -> dict:
    return json.loads(entry) if isinstance(entry, str) else entry


def rg_task_name(entry: dict, task: str | None) -> str:
    if task:
        return task
    name = (entry.get("metadata") or {}).get("source_dataset")
    if not name:
        raise UserError("reasoning_gym reward: give column 'rg_task' or an entry with metadata.source_dataset")
    return name


@REWARDS.register("reasoning_gym")
def reasoning_gym_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float | None]:
    """The reasoning-gym dataset's score of the final answer; None where `rg_entry` is missing.

    >>> entry = {"question": "Calculate 5 - 3 - 6.", "answer": "-4", "metadata": {"source_dataset": "basic_arithmetic"}}
    >>> reasoning_gym_reward(["Q"] * 2, ["<answer>-4</answer>", "<answer>4</answer>"], rg_entry=[entry] * 2)
    [1.0, 0.0]
    """
    n = len(completions)
    scores: list[float | None] = []
    for completion, entry, task in zip(completions, column(columns, "rg_entry", n), column(columns, "rg_task", n)):
        if entry is None:
            scores.append(None)
            continue
        entry = _entry_dict(entry)
        score = score_answer_fn(rg_task_name(entry, task))(final_answer(message_text(completion)), entry)
        scores.append(float(score))
    return scores
