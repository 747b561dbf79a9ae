"""Environments for multi-turn rollouts: what answers the model between its turns.

An environment is one small class with two methods, in the spirit of TRL's environments and the
`verifiers` library: `reset(example)` before a conversation, and `step(message) -> Step` after each
of the model's turns, giving the text appended to the context (`observation`), whether the
conversation is over (`done`) and optionally a reward. One instance serves one conversation. The last
reward an environment gave reaches reward functions as the column `env_reward` (`env_reward` below).

`ToolEnvironment` runs the `<tool_call>`s of each turn with a ToolBox and answers with their results
as `<tool_response>`s; a turn without a call ends the conversation. It gives no reward of its own: the
rollout is scored by the task's reward functions, on the model's final answer.

>>> class Echo:
...     def reset(self, example): self.turns = 0
...     def step(self, message):
...         self.turns += 1
...         return Step(observation=f" [heard {len(message)} chars]", done=self.turns == 2)
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from r1zero.errors import UserError
from r1zero.tools import ToolBox, parse_tool_calls, render_tool_response
from r1zero.types import Example


@dataclass
class Step:
    observation: str | None  # text appended after the model's message (None or "" = nothing)
    done: bool  # the conversation is over; the rollout ends with the model's message
    reward: float | None = None  # an environment's own score, kept in Rollout.info["env_reward"]
    info: dict = field(default_factory=dict)  # counts summed over the turns into Rollout.info


class Environment(Protocol):
    def reset(self, example: Example) -> None: ...

    def step(self, message: str) -> Step: ...


class ToolEnvironment:
    """Runs each turn's tool calls; a turn without one ends the conversation."""

    def __init__(self, toolbox: ToolBox):
        self.toolbox = toolbox

    def reset(self, example: Example) -> None:
        pass

    def step(self, message: str) -> Step:
        calls = parse_tool_calls(message)
        if not calls:
            return Step(None, done=True)
        results = [self.toolbox.run(c) for c in calls]
        errors = Counter(f"tool_errors/{r.error}" for r in results if r.error)
        return Step("".join(render_tool_response(r.text) for r in results), done=False,
                    info={"tool_calls": len(calls), **errors})


def env_reward(prompts, completions, env_reward=None, **columns) -> list[float | None]:
    """The environment's own score of each rollout (its last `Step.reward`), as a reward function: name it
    in `rl.rewards` as `r1zero.rollout.env:env_reward`.

    >>> env_reward(["q", "q"], ["a", "b"], env_reward=[1.0, None])
    [1.0, None]
    """
    return list(env_reward) if env_reward is not None else [None] * len(completions)


def environment_factory(spec: str, tools: list[str]) -> Callable[[], Environment]:
    """A maker of fresh environments: `module:Class` (built with no arguments), or, when `spec` is
    empty, a ToolEnvironment over `tools` (registered names or `module:function`)."""
    if not spec:
        toolbox = ToolBox.from_specs(list(tools))
        return lambda: ToolEnvironment(toolbox)
    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"cannot import environment {spec!r} ({e}); expected module:Class") from None
    return cls
