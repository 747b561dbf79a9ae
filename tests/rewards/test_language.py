"""The `language` reward: share of target-language words in the reasoning, by hand."""

import pytest

from r1zero.errors import UserError
from r1zero.rewards import get


def test_english_share_hand_computed():
    completions = [
        "<think>We add 2 and 3 to get 5.</think><answer>5</answer>",  # 6 words, all ASCII
        "<think>We add 两个 numbers</think><answer>5</answer>",  # We, add, 两, 个, numbers: 3/5
        "<think>Wir addieren größere Zahlen</think><answer>5</answer>",  # größere is not ASCII: 3/4
        "<think>2 + 3 = 5</think><answer>5</answer>",  # no words at all
        "no tags, plain English",  # the whole text is the reasoning
    ]
    assert get("language")(["Q"] * 5, completions) == [1.0, 0.6, 0.75, 0.0, 1.0]


def test_chinese_target_counts_han_characters():
    assert get("language", target="zh")(["Q"], ["<think>我们 add 两个</think><answer>5</answer>"]) == [0.8]


def test_unknown_target():
    with pytest.raises(UserError, match="unknown target 'fr'"):
        get("language", target="fr")(["Q"], ["<think>bonjour</think>"])
