"""The `language` reward: the share of the reasoning written in the target language (R1's
language-consistency reward, added because R1-Zero's chains of thought mixed languages).

R1 computes "the proportion of target language words in the CoT" without saying how it finds
them. Here a simple script check stands in for language identification: the reasoning (see
`extract.reasoning`) is split into words (runs of letters; each Han character counts as one word,
since Chinese has no spaces), numbers and symbols are ignored, and the score is the share of words
written in the target's script. Targets: `en` (ASCII letters only, so `naïve` does not count) and
`zh` (Han characters). A reasoning without words scores 0.0, so empty thinking earns nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from r1zero.errors import UserError
from r1zero.rewards.base import REWARDS, message_text
from r1zero.rewards.extract import reasoning

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_HAN}]|[^\W\d_{_HAN}]+")
_IN_SCRIPT: dict[str, Callable[[str], bool]] = {
    "en": lambda word: word.isascii(),
    "zh": lambda word: re.fullmatch(rf"[{_HAN}]", word) is not None,
}


def target_language_share(text: str, target: str = "en") -> float:
    """Share of the words of `text` written in the script of `target`.

    >>> target_language_share("So x = 3, 因为 2+1 = 3")
    0.5
    """
    if target not in _IN_SCRIPT:
        raise UserError(f"language reward: unknown target {target!r}; expected one of: {', '.join(_IN_SCRIPT)}")
    words = _WORD.findall(text)
    return sum(map(_IN_SCRIPT[target], words)) / len(words) if words else 0.0


@REWARDS.register("language")
def language_reward(prompts: Sequence, completions: Sequence, *, target: str = "en",
                    **columns: Any) -> list[float]:
    """Share of words in the reasoning written in `target` ('en' or 'zh'), in [0, 1].

    >>> language_reward(["Q"] * 2, ["<think>First add the numbers</think><answer>4</answer>",
    ...                             "<think>Zuerst addieren wir größere Zahlen</think><answer>4</answer>"])
    [1.0, 0.8]
    """
    return [target_language_share(reasoning(message_text(c)), target) for c in completions]
