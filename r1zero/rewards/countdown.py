"""The `countdown` reward: does the answer's equation reach `target` using only the given `nums`?

Columns: `nums` (list of ints) and `target` (int). The equation is the final answer (`<answer>`
tags, else the last `\\boxed{}`); with an `=` in it, the side that is more than a bare number is
read (`30 - (100 - 93) = 23` and `23 = 30 - (100 - 93)` both work). It may use + - * / (also × ÷
and LaTeX \\times \\div \\cdot), parentheses, unary minus and integer literals, nothing else.

Departures from TinyZero, which checks the characters with a regex and then calls `eval`: the text
is parsed by a small recursive-descent parser and computed with exact fractions, so nothing from
the model is ever executed and `6 / (1 - 3/4)` is exact; each number may be used at most once
(the task's rule here), or exactly once with `use_all_numbers=True`; there is no partial credit
for a well-formed wrong equation (the `format` reward covers form). Scores are 1.0 or 0.0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import plain_final_answer

MAX_EQUATION_CHARS = 400
MAX_NESTING = 40
_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()]))")
_SYNONYMS = {"×": "*", "·": "*", "÷": "/", "−": "-", "\\times": "*", "\\cdot": "*", "\\div": "/",
             "\\left": "", "\\right": "", "{": "(", "}": ")"}


class EquationError(ValueError):
    """Text that is not an equation over integers with + - * / and parentheses."""


def tokenize(text: str) -> list[str]:
    for old, new in _SYNONYMS.items():
        text = text.replace(old, new)
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise EquationError(f"unexpected {text[pos:].strip()[:10]!r}")
        tokens.append(match.group(1) or match.group(2))
        pos = match.end()
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := INT | '(' expr ')' | '-' factor"""

    def __init__(self, tokens: list[str]):
        self.tokens, self.pos, self.numbers = tokens, 0, []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise EquationError("equation ends too early")
        self.pos += 1
        return token

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            value = value + self.term(depth) if self.take() == "+" else value - self.term(depth)
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op, right = self.take(), self.factor(depth)
            if op == "/" and right == 0:
                raise EquationError("division by zero")
            value = value * right if op == "*" else value / right
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > MAX_NESTING:
            raise EquationError("nested too deeply")
        token = self.take()
        if token == "(":
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise EquationError("unbalanced parentheses")
            return value
        if token == "-":
            return -self.factor(depth + 1)
        if token.isdigit():
            self.numbers.append(int(token))
            return Fraction(int(token))
        raise EquationError(f"unexpected {token!r}")


def evaluate_equation(text: str) -> tuple[Fraction, list[int]]:
    """(value, numbers used) of an arithmetic expression; raises EquationError on anything else.

    >>> evaluate_equation("6 / (1 - 3/4)")
    (Fraction(24, 1), [6, 1, 3, 4])
    """
    if len(text) > MAX_EQUATION_CHARS:
        raise EquationError("equation too long")
    parser = _Parser(tokenize(text))
    value = parser.expr(0)
    if parser.peek() is not None:
        raise EquationError(f"unexpected {parser.peek()!r}")
    return value, parser.numbers


def equation_side(answer: str) -> str:
    """The side of an equation that does the arithmetic: the first one that is not a bare number."""
    sides = [side.strip() for side in answer.split("=")]
    for side in sides:
        if side and not side.isdigit():
            return side
    return sides[0]


def countdown_score(answer: str | None, nums: Sequence[int], target: int, use_all_numbers: bool = False) -> float:
    if answer is None:
        return 0.0
    if isinstance(nums, str):  # "30,100,93", as in the raw Countdown files
        nums = re.findall(r"\d+", nums)
    try:
        value, used = evaluate_equation(equation_side(answer))
    except EquationError:
        return 0.0
    available, spent = Counter(int(n) for n in nums), Counter(used)
    allowed = spent == available if use_all_numbers else not spent - available
    return float(allowed and value == int(target))


@REWARDS.register("countdown")
def countdown_reward(prompts: Sequence, completions: Sequence, *, use_all_numbers: bool = False,
                     **columns: Any) -> list[float | None]:
    """1.0 when the answer's equation equals `target` using each of `nums` at most once (exactly
    once with `use_all_numbers=True`); None where `nums` or `target` is missing.

    >>> countdown_reward(["Q"] * 4, ["<answer>30 - (100 - 93)</answer>", "<answer>100 - 93 + 30</answer>",
    ...                              "<answer>93 - 70</answer>", "<answer>__import__('os')</answer>"],
    ...                  nums=[[30, 100, 93]] * 4, target=[23] * 4)
    [1.0, 0.0, 0.0, 0.0]
    """
    n = len(completions)
    scores: list[float | None] = []
    for completion, nums, target in zip(completions, column(columns, "nums", n), column(columns, "target", n)):
        if nums is None or target is None:
            scores.append(None)
        else:
            answer = plain_final_answer(message_text(completion))
            scores.append(countdown_score(answer, nums, target, use_all_numbers))
    return scores
