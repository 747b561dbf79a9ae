"""`overlong` (DAPO) and `length` against hand-computed values."""

import pytest

from r1zero.rewards import get


def test_overlong_piecewise_hand_computed():
    # max_len 1000, cache 200: free up to 800, then linear to -1 at 1000, -1 beyond.
    lengths = [0, 800, 801, 900, 950, 1000, 5000]
    scores = get("overlong", max_len=1000, cache_len=200)(["Q"] * 7, ["x"] * 7, completion_length=lengths)
    assert scores == pytest.approx([0.0, 0.0, -0.005, -0.5, -0.75, -1.0, -1.0])


def test_length_sources_in_order():
    overlong = get("overlong", max_len=10, cache_len=4)
    # completion_length wins over completion_ids; ids (TRL passes them) win over the text.
    assert overlong(["Q"], ["x" * 400], completion_length=[8], completion_ids=[[1] * 10]) == [-0.5]
    assert overlong(["Q"], ["x" * 400], completion_ids=[[1] * 7]) == [-0.25]
    assert overlong(["Q"], ["x" * 32]) == [-0.5]  # 32 characters ~ 8 tokens


def test_length_cost():
    scores = get("length", max_len=100)(["Q"] * 3, ["a", "b", "c"], completion_length=[0, 25, 400])
    assert scores == [0.0, -0.25, -1.0]


def test_bad_overlong_options():
    with pytest.raises(ValueError, match="cache_len <= max_len"):
        get("overlong", max_len=10, cache_len=20)(["Q"], ["x"])
