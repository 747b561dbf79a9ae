"""The `readability` reward: does a completion follow the readable format of the arithmetic task?

R1 trains R1 (not R1-Zero) with a readable pattern, "|special_token|<reasoning_process>|special_token|
<summary>", and filters out "responses that are not reader-friendly" and chains of thought that mix
languages (R1 paper, sec. 2.3.1-2.3.2). R1 leaves "readable" to human judgement; here it is a rule over
the arithmetic task's written notation (`r1zero/tasks/arithmetic.py`), so that "the share of readable
completions" is a number a test can pin down. A completion is readable when all of these hold:

1. Format: exactly `<think>T</think><answer>N</answer>` (the strict `format` reward), N an integer.
2. Reasoning: T is not empty and is a `;`-separated list of column steps, each well formed:
   `[R:]L=V[~W[!]] >P`, where L is one column's left-hand side (`x+y+c`, `[1]x-y-c` or `x*b=p+c`,
   one digit each except the product p), V its value, `~W` an in-place re-check (`!` when it
   disagreed), P the partial result so far, and `R:` the optional remainder of the problem
   (`12+5:`). T may open with a quick guess `G~` or `a+b=G~` and close with `!` (the answer-first
   layout).
   Spaces are allowed before `>` and after `;`. Anything else (stray words, half steps, other
   characters, other scripts) is garbage and makes the completion unreadable.
3. Consistent notation: every step uses the same operator and the same layout (all steps with a
   remainder or none), so a reader does not have to switch notations mid-solution.
4. The work reads forwards: the first partial result has one digit and each later one is the previous
   one with one more digit written in front, namely the last digit of that step's value (of W when
   it was re-checked). This rules out loops (a repeated step cannot extend the partial result) and
   steps that write something other than what they computed.
5. The summary matches the reasoning: N is the last partial result (leading zeros of a difference
   dropped).

Readable is not correct: a step may compute a wrong value (a slip) and still be readable, as a
reader can follow it and see the slip. A direct answer (`<think></think>`) or a bare guess is not
readable: there is no reasoning to read. Scores are 1.0 or 0.0; like `format`, a prompt that ends
with `<think>` counts as the completion's opening tag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from r1zero.rewards.base import REWARDS
from r1zero.rewards.format import _STRICT, _with_opened_think, is_strict_format

_LHS = {  # one column's left-hand side, per operator
    "+": r"\d\+\d\+\d",
    "-": r"1?\d-\d-\d",
    "*": r"\d\*\d=\d+\+\d",
}
_STEP = re.compile(
    r"(?:(?P<rem>\d*[-+*]\d*):)?"  # the remainder layout's `12+5:`
    r"(?P<lhs>1?\d(?P<op>[-+*])\d(?:[-+]\d|=\d+\+\d))"
    r"=(?P<value>\d+)(?:~(?P<check>\d+)!?)? *>(?P<partial>\d+)")
_GUESS = re.compile(r"(?:\d+[-+*]\d+=)?\d+~")  # the answer-first guess, the problem restated or not


def readability_reasons(text: str) -> list[str]:
    """Why a completion is not readable (the first failed rule of the module docstring); [] when it is.

    >>> readability_reasons("<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>")
    []
    >>> readability_reasons("<think></think><answer>182</answer>")
    ['no reasoning']
    >>> readability_reasons("<think>3+9+0=12>2;3+9+0=12>2</think><answer>2</answer>")
    ['step 2 does not extend the partial result']
    """
    if not is_strict_format(text):
        return ["not <think>...</think><answer>...</answer>"]
    think, answer = (g.strip() for g in _STRICT.fullmatch(text).groups())
    if not re.fullmatch(r"-?\d+", answer):
        return ["answer is not an integer"]
    if not think:
        return ["no reasoning"]
    guess = _GUESS.match(think)
    body = think[guess.end():] if guess else think
    if guess and body.endswith("!"):
        body = body[:-1]
    steps = [_STEP.fullmatch(s) for s in re.split(r"; *", body)]
    if not all(steps):
        return [f"step {steps.index(None) + 1} is not a column step"]
    if any(not re.fullmatch(_LHS[s["op"]], s["lhs"]) for s in steps):
        return ["a step mixes operators"]
    if len({s["op"] for s in steps}) > 1 or len({s["rem"] is None for s in steps}) > 1:
        return ["the steps switch notation"]
    previous = ""
    for i, s in enumerate(steps, 1):
        digit = (s["check"] or s["value"])[-1]
        if s["partial"] != digit + previous:
            return [f"step {i} does not extend the partial result"]
        previous = s["partial"]
    if int(answer) != int(previous):
        return ["the answer is not the work's result"]
    return []


def is_readable(text: str) -> bool:
    return not readability_reasons(text)


@REWARDS.register("readability")
def readability_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float]:
    """1.0 when the completion follows the arithmetic task's readable format (module docstring), else 0.0.

    >>> readability_reward(["123+59="] * 3, ["<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>",
    ...                                      "<think>3+9+0=12>2;2+5+1=8>82</think><answer>182</answer>",
    ...                                      "<think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>!"])
    [1.0, 0.0, 0.0]
    """
    return [float(is_readable(_with_opened_think(p, c))) for p, c in zip(prompts, completions)]
