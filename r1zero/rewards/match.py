"""The `exact` and `numeric` rewards: cheap answer checks without a computer-algebra system.

- `exact`: the final answer equals column `answer` after `normalize_answer` (LaTeX `\\text{}`,
  `$`, spacing commands, case, runs of whitespace and a trailing period do not matter).
- `numeric`: the last number in the final answer equals the last number in `answer`, exactly
  (rational arithmetic): thousands commas are dropped, `3.0 == 3`, `1/2 == 0.5`, `\\frac{1}{2}` and
  `50%` (read as 50) are understood. A raw GSM8K gold (`... #### 72`) is read after `####`.

Both read the answer in `<answer>` tags, else the last `\\boxed{}`; a box inside the tags is
unwrapped. Departure from GSM8K's reference scorer (last number in the whole completion): only the
final answer is read, so a number in the reasoning cannot score by accident.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import plain_final_answer

_TEXT_COMMAND = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3}(?!\d))?"
                     r"(?:\s*/\s*(?:\d+(?:\.\d*)?|\.\d+))?")


def normalize_answer(text: str) -> str:
    """A canonical form for string comparison.

    >>> normalize_answer("  \\\\text{New   York}. ")
    'new york'
    """
    text = _TEXT_COMMAND.sub(r"\1", text)
    for noise in ("$", "\\!", "\\,", "\\;", "\\left", "\\right"):
        text = text.replace(noise, "")
    text = re.sub(r"\s+", " ", text.replace("\\ ", " ")).strip()
    return text.rstrip(".").strip().casefold()


def _to_fraction(text: str) -> Fraction | None:
    try:
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError):
        return None


def parse_number(text: str) -> Fraction | None:
    """The last number in `text`, exactly, or None.

    >>> parse_number("$1,234.50"), parse_number("3.0"), parse_number("\\\\frac{3}{4} of it"), parse_number("none")
    (Fraction(2469, 2), Fraction(3, 1), Fraction(3, 4), None)
    """
    text = _LATEX_FRACTION.sub(r"\1/\2", text.replace("{,}", "").replace("\u2212", "-"))
    text = _THOUSANDS_COMMA.sub("", text)
    found = _NUMBER.findall(text)
    if not found:
        return None
    numerator, _, denominator = found[-1].partition("/")
    value = _to_fraction(numerator.strip())
    if denominator:
        divisor = _to_fraction(denominator.strip())
        return value / divisor if value is not None and divisor else None
    return value


def _gold_text(gold: Any) -> str | None:
    if gold is None or str(gold).strip() == "":
        return None
    return str(gold).split("####")[-1]


@REWARDS.register("exact")
def exact_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float | None]:
    """1.0 when the normalised final answer equals the normalised column `answer`.

    >>> exact_reward(["Q"] * 3, ["<answer> Paris. </answer>", "\\\\boxed{paris}", "<answer>Lyon</answer>"],
    ...              answer=["Paris"] * 3)
    [1.0, 1.0, 0.0]
    """
    golds = column(columns, "answer", len(completions))
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds):
        gold_text = _gold_text(gold)
        answer = plain_final_answer(message_text(completion))
        if gold_text is None:
            scores.append(None)
        else:
            scores.append(float(answer is not None and normalize_answer(answer) == normalize_answer(gold_text)))
    return scores


@REWARDS.register("numeric")
def numeric_reward(prompts: Sequence, completions: Sequence, **columns: Any) -> list[float | None]:
    """1.0 when the final answer's last number equals the gold number; None where `answer` has none.

    >>> numeric_reward(["Q"] * 4, ["<answer>1,000</answer>", "<answer>$1000.0</answer>",
    ...                            "<answer>999</answer>", "1000"], answer=["1000"] * 4)
    [1.0, 1.0, 0.0, 0.0]
    """
    golds = column(columns, "answer", len(completions))
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds):
        gold_text = _gold_text(gold)
        gold_number = parse_number(gold_text) if gold_text is not None else None
        if gold_number is None:
            scores.append(None)
            continue
        answer = plain_final_answer(message_text(completion))
        scores.append(float(answer is not None and parse_number(answer) == gold_number))
    return scores
