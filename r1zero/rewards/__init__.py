"""Reward functions for RL with verifiable rewards, in TRL's contract:
`f(prompts, completions, **columns) -> list[float | None]` (None = not applicable).

Registered names (`names()`): format, format_lenient, math, exact, numeric, countdown, code,
language, overlong, length, readability, reasoning_gym. `get(name, **options)` returns one, with options bound
(e.g. `get("overlong", max_len=2048)`); `combine(...)` runs several with weights, charging a raise
or a timeout to one sample. Columns read: `answer` (math, exact, numeric), `nums` + `target`
(countdown), `tests` | `test_list` | `test` + `entry_point` (code), `rg_entry` + `rg_task`
(reasoning_gym), `completion_length` | `completion_ids` (overlong, length).

Heavy libraries (math-verify, reasoning-gym) are imported on first use, so importing this package
is cheap.
"""

from __future__ import annotations

from typing import Any

from r1zero.rewards import (  # noqa: F401 - importing a module registers its rewards
    code_exec,
    countdown,
    format,
    language,
    length,
    match,
    math_answer,
    readability,
    reasoning_gym_score,
)
from r1zero.rewards.base import REWARDS, RewardFn, reward_ref, with_options
from r1zero.rewards.combine import combine

__all__ = ["REWARDS", "RewardFn", "combine", "get", "names", "reward_ref"]


def get(name: str, **options: Any) -> RewardFn:
    """The reward registered as `name`, with `options` bound; unknown names and options are UserErrors."""
    fn = REWARDS.get(name)
    return with_options(fn, name, **options) if options else fn


def names() -> list[str]:
    return REWARDS.names()
