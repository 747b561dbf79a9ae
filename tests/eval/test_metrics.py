"""pass@k against brute force, cons@k and its tie-breaking, answer extraction."""

from __future__ import annotations

import itertools
import random

import pytest

from r1zero.eval.metrics import cons_at_k, extract_answer, pass_at_k, pass_at_k_curve, vote_ks, well_formed


def brute_force_pass_at_k(correct: list[bool], k: int) -> float:
    """The share of k-subsets of the samples that hold at least one correct sample."""
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_equals_enumeration_over_subsets():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 9)
        correct = [rng.random() < rng.random() for _ in range(n)]
        for k in range(1, n + 1):
            assert pass_at_k(n, sum(correct), k) == pytest.approx(brute_force_pass_at_k(correct, k), abs=1e-12)


def test_pass_at_k_edges_and_curve():
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 5, 1) == 1.0
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    curve = pass_at_k_curve(4, [1, 0, 4])
    assert list(curve) == [1, 2, 3, 4]
    assert curve[1] == pytest.approx((0.25 + 0 + 1) / 3)
    assert curve[4] == pytest.approx(2 / 3)
    assert all(a <= b for a, b in zip(list(curve.values()), list(curve.values())[1:]))


def test_vote_ks_are_powers_of_two_and_n():
    assert vote_ks(8) == [1, 2, 4, 8]
    assert vote_ks(6) == [1, 2, 4, 6]
    assert vote_ks(1) == [1]


def test_cons_at_k_majority_and_ties():
    groups = [0, 1, 1, 2, 0, 0]
    correct = [True, False, False, False, True, True]
    assert cons_at_k(groups, correct, 1)  # the first sample alone
    assert not cons_at_k(groups, correct, 3)  # group 1 has 2 votes of 3
    assert not cons_at_k(groups, correct, 4)  # 1 vote for 0, 2 for 1
    assert cons_at_k(groups, correct, 6)  # 3 votes for 0
    # A tie goes to the answer that appeared first: 0 (seen at sample 0) beats 1.
    assert cons_at_k([0, 1, 1, 0], [True, False, False, True], 4)
    assert not cons_at_k([1, 0, 0, 1], [False, True, True, False], 4)
    # No answers: no vote, not correct.
    assert not cons_at_k([None, None], [False, False], 2)
    assert cons_at_k([None, 0], [False, True], 2)


def test_extract_answer_reads_tags_then_boxed():
    assert extract_answer("<think>1+1</think><answer> 2 </answer>") == "2"
    assert extract_answer("<answer>1</answer> then <answer>3</answer>") == "3"
    assert extract_answer(r"so \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert extract_answer(r"<answer>It is \boxed{7}.</answer>") == "7"
    assert extract_answer("<think>no answer") is None
    assert well_formed("<think>a</think><answer>1</answer>")
    assert not well_formed("<think>a</think>")
