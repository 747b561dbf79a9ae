"""The small typed containers that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, str]]  # [{"role": "user", "content": "..."}, ...]


@dataclass
class Example:
    """One problem. Every key of `meta` reaches reward functions as a keyword column."""

    prompt: str | Messages  # raw text, or chat messages
    answer: str  # the gold answer, as a string
    meta: dict[str, Any] = field(default_factory=dict)  # task, difficulty, id, tests, ...


@dataclass
class Rollout:
    """One sampled completion of one prompt, as the sampling policy produced it."""

    prompt_ids: list[int]  # (P,)
    completion_ids: list[int]  # (T,)
    logprobs: list[float]  # (T,) log-prob of each completion token under the sampling policy
    finish_reason: str  # "stop" (EOS or stop string) or "length"
    text: str = ""  # decoded completion (multi-turn: the model's own text only; rewards never see tool output)
    completion_mask: list[bool] | None = None  # (T,) multi-turn: False = a tool-output token (no log-prob, no loss)
    info: dict[str, Any] = field(default_factory=dict)  # multi-turn: environment counts (tool_calls, tool_errors/...)
