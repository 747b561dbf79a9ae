"""The reward registry and the small helpers every reward function shares.

A reward function follows TRL's contract, `f(prompts, completions, **columns) -> list[float | None]`:
`completions` are strings or TRL's conversational form (a list of message dicts, whose last
message is the completion); every column is a list aligned with `completions`; `None` means "not
applicable to this sample". Unknown columns are ignored, so any function can take any batch.

Options of a reward (a time budget, a length limit) are keyword-only parameters with defaults;
`r1zero.rewards.get(name, **options)` binds them and checks their names, where TRL would have
users write a closure by hand.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from r1zero.errors import UserError
from r1zero.registry import Registry

RewardFn = Callable[..., list]  # f(prompts, completions, **columns) -> list[float | None]

REWARDS: Registry[RewardFn] = Registry("reward")


def message_text(item: Any) -> str:
    """The text of a prompt or completion: a string, a message dict, or a list of messages (the last)."""
    if item is None:
        return ""
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("content") or "")
    if isinstance(item, (list, tuple)):
        return message_text(item[-1]) if item else ""
    return str(item)


def column(columns: dict[str, Any], name: str, n: int) -> list:
    """Column `name` as a list of length n (all None when absent); a wrong length is a UserError."""
    values = columns.get(name)
    if values is None:
        return [None] * n
    if not isinstance(values, (list, tuple)) or len(values) != n:
        got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
        raise UserError(f"reward column {name!r} must be a list of {n} values (one per completion); got {got}")
    return list(values)


def option_names(fn: RewardFn) -> list[str]:
    """The keyword-only options a reward function accepts."""
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def with_options(fn: RewardFn, name: str, **options: Any) -> RewardFn:
    """`fn` with some options fixed; keeps the reward's name (TRL logs rewards by `__name__`)."""
    unknown = sorted(set(options) - set(option_names(fn)))
    if unknown:
        valid = ", ".join(option_names(fn)) or "none"
        raise UserError(f"reward {name!r} has no option {', '.join(map(repr, unknown))}; options: {valid}")

    @functools.wraps(fn)
    def configured(prompts: Sequence, completions: Sequence, **columns: Any) -> list:
        return fn(prompts, completions, **columns, **options)

    configured.__name__ = name
    return configured


def reward_ref(name: str):
    """A registered reward name, or `module:function` for a user's own reward (TRL's signature)."""
    if ":" not in name:
        return name
    import importlib

    module, attr = name.split(":", 1)
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UserError(f"cannot import reward {name!r} ({e}); expected module:function") from None
