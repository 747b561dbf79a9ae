"""The format rewards: is the completion `<think> reasoning </think><answer> answer </answer>`?

R1-Zero rewards this format next to accuracy. Two registered variants:

- `format` (strict): exactly `<think>...</think><answer>...</answer>` with only whitespace outside,
  each of the four tags exactly once, and a non-empty answer. Like open-r1's `format_reward`, but
  whitespace between and around the blocks is allowed.
- `format_lenient`: the tags appear in order (`<think>` may be missing), anything may surround them,
  and the answer is non-empty.

When the prompt text already ends with `<think>` (some templates open the tag for the model),
both variants treat the completion as if it started with `<think>`. Scores are 1.0 or 0.0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from r1zero.rewards.base import REWARDS, message_text

_STRICT = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def _with_opened_think(prompt: Any, completion: Any) -> str:
    text = message_text(completion)
    opened_by_prompt = message_text(prompt).rstrip().endswith("<think>")
    if opened_by_prompt and not text.lstrip().startswith("<think>"):
        return "<think>" + text
    return text


def is_strict_format(text: str) -> bool:
    match = _STRICT.fullmatch(text)
    return bool(match and match.group(2).strip() and all(text.count(tag) == 1 for tag in _TAGS))


def is_lenient_format(text: str) -> bool:
    think_end = text.find("</think>")
    answer_start = text.find("<answer>", think_end) if think_end >= 0 else -1
    answer_end = text.find("</answer>", answer_start) if answer_start >= 0 else -1
    return answer_end >= 0 and bool(text[answer_start + len("<answer>"):answer_end].strip())


@REWARDS.register("format")
def format_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float]:
    """1.0 when the completion is exactly `<think>...</think><answer>...</answer>`, else 0.0.

    >>> format_reward(["Q"] * 3, ["<think>2+2=4</think>\\n<answer>4</answer>",
    ...                           "<think>a</think><answer>4</answer> trailing text",
    ...                           [{"role": "assistant", "content": "<think></think><answer>4</answer>"}]])
    [1.0, 0.0, 1.0]
    >>> format_reward(["... Assistant: <think>"], ["2+2=4 </think><answer>4</answer>"])
    [1.0]
    """
    return [float(is_strict_format(_with_opened_think(p, c))) for p, c in zip(prompts, completions)]


@REWARDS.register("format_lenient")
def format_lenient_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float]:
    """1.0 when `</think>`, `<answer>`, `</answer>` appear in that order around a non-empty answer.

    >>> format_lenient_reward(["Q"] * 3, ["Sure. <think>hm</think> so <answer>4</answer> done",
    ...                                   "hm</think><answer>4</answer>", "<answer>4</answer>"])
    [1.0, 1.0, 0.0]
    """
    return [float(is_lenient_format(_with_opened_think(p, c))) for p, c in zip(prompts, completions)]
