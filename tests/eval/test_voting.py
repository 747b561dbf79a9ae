"""Self-consistency voting, answer equivalence and best-of-n choice (r1zero.eval.inference)."""

from __future__ import annotations

from r1zero.eval.inference import MathEquivalence, best_of_n, choose_best, group_answers, majority_vote, vote


def test_majority_vote_groups_equivalent_answers():
    answer, votes = majority_vote(["1/2", "3", "0.5", r"\frac{1}{2}", "3"])
    assert (answer, votes) == ("1/2", 3)  # represented by the first of the group


def test_majority_vote_tie_goes_to_first_seen_answer():
    assert majority_vote(["7", "5", "5", "7"]) == ("7", 2)
    assert majority_vote(["5", "7", "7", "5"]) == ("5", 2)
    assert majority_vote(["5", "7"]) == ("5", 1)


def test_majority_vote_ignores_missing_answers():
    assert majority_vote([None, None, "4"]) == ("4", 1)
    assert majority_vote([None, None]) == (None, 0)
    assert majority_vote([]) == (None, 0)


def test_majority_vote_with_a_custom_equivalence():
    same_first_letter = lambda a, b: a[0] == b[0]
    assert majority_vote(["apple", "banana", "avocado"], same_first_letter) == ("apple", 2)


def test_group_answers_and_vote():
    groups = group_answers(["4", None, "4.0", "5", "1,000", "1000"])
    assert groups == [0, None, 0, 1, 2, 2]
    assert vote(groups) == (0, 2)
    assert vote([None]) == (None, 0)


def test_math_equivalence():
    eq = MathEquivalence()
    assert eq("12", "12.0")
    assert eq(r"\frac{1}{2}", "0.5")
    assert eq("x = 5", "5")
    assert not eq("12", "13")
    assert not eq("banana", "12")
    assert eq("banana", " banana ")


def test_choose_best_breaks_ties_by_votes_then_order():
    assert choose_best([0.0, 1.0, 0.5]) == 1
    assert choose_best([1.0, 1.0, 1.0], ["3", "4", "4"]) == 1  # "4" has 2 votes among the tied
    assert choose_best([1.0, 1.0], ["3", "4"]) == 0  # a tie in votes too: the earliest
    assert choose_best([None, None, 0.0]) == 2  # None scores count as -inf
    assert choose_best([0.0, 2.0, 2.0, 1.0], ["9", "8", "7", "7"]) == 1  # votes count only among the tied


def test_best_of_n_calls_the_verifier_with_prompt_columns():
    seen = {}

    def verifier(prompts, completions, **columns):
        seen.update(columns, prompts=prompts)
        return [float(c.endswith("!")) for c in completions]

    index, scores = best_of_n("Q", ["a", "b!", "c!"], verifier, ["1", "2", "2"], level=3)
    assert index == 1 and scores == [0.0, 1.0, 1.0]
    assert seen == {"level": [3, 3, 3], "prompts": ["Q", "Q", "Q"]}
