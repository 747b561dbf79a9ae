"""The `math` reward: hand examples, MATH-500 and GSM8K gold answers, and safety off the main thread."""

import threading
import time

import pytest

from r1zero.rewards import get
from r1zero.rewards.math_answer import math_answers_equal, score_math_answers


def test_hand_computed_equivalences():
    pairs = [  # prediction, gold, equal?
        (r"\frac{1}{2}", "0.5", True), (r"\dfrac12", r"\frac{1}{2}", True), ("x = 5", "5", True),
        (r"2\sqrt{2}", r"\sqrt{8}", True), (r"(3, \frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)", True),
        (r"\text{Evelyn}", r"\text{Evelyn}", True), ("3", "4", False), (r"\frac{1}{3}", "0.33", False),
        ("", "1", False),
    ]
    assert [math_answers_equal(p, g) for p, g, _ in pairs] == [e for _, _, e in pairs]


def test_reward_reads_the_answer_tag_or_the_last_box():
    completions = ["<think>1/2</think><answer>\\frac{1}{2}</answer>", "so \\boxed{\\frac{2}{4}}", "1/2", "<answer>2</answer>"]
    assert get("math")(["Q"] * 4, completions, answer=["0.5"] * 4) == [1.0, 1.0, 0.0, 0.0]
    assert get("math")(["Q"], ["<answer>1</answer>"], answer=[None]) == [None]


def rates(golds, completions, workers=None):
    scores = get("math", workers=workers)(["Q"] * len(golds), completions, answer=golds)
    return scores.count(1.0) / len(golds), scores


def test_math500_gold_answers_score_one_and_others_zero(read_data):
    golds = [row["answer"] for row in read_data("math500/test.jsonl")]
    n = len(golds)
    tagged, _ = rates(golds, [f"<think>...</think><answer>{g}</answer>" for g in golds])
    boxed, _ = rates(golds, [f"... so the answer is $\\boxed{{{g}}}$." for g in golds])
    others = [golds[(i + 1) % n] for i in range(n)]
    _, shifted = rates(golds, [f"<answer>{o}</answer>" for o in others])
    zero_rate = shifted.count(0.0) / n
    print(f"\nmath on MATH-500: gold scores 1 in <answer> {tagged:.1%}, in \\boxed{{}} {boxed:.1%}; "
          f"the next row's answer scores 0 on {zero_rate:.1%} "
          f"(equal by math-verify: {[(g, o) for g, o, s in zip(golds, others, shifted) if s]})")
    assert tagged >= 0.98 and boxed >= 0.98
    assert zero_rate >= 0.98


def test_gsm8k_gold_answers(read_data):
    golds = [r["answer"].split("####")[-1].strip().replace(",", "") for r in read_data("gsm8k/test.jsonl")]
    n = len(golds)
    right, _ = rates(golds, [f"<answer>{g}</answer>" for g in golds])
    others = [golds[(i + 1) % n] for i in range(n)]
    _, shifted = rates(golds, [f"<answer>{o}</answer>" for o in others])
    differing = [s for s, g, o in zip(shifted, golds, others) if g != o]
    print(f"\nmath on GSM8K test: gold scores 1 on {right:.2%} of {n}; the next record's answer scores 0 on "
          f"{shifted.count(0.0) / n:.2%} of all, {differing.count(0.0) / len(differing):.2%} of those with another answer")
    assert right == 1.0
    assert differing.count(0.0) / len(differing) >= 0.99


@pytest.mark.parametrize("workers", [0, 2])
def test_safe_off_the_main_thread(workers):
    """math-verify's own timeouts need the main thread; here they are off, so threads work."""
    out = {}

    def score():
        try:
            out["scores"] = score_math_answers([("\\frac{1}{2}", "0.5"), ("3", "4")], workers=workers)
        except Exception as exc:  # noqa: BLE001 - reported through the assertion below
            out["error"] = exc

    thread = threading.Thread(target=score)
    thread.start()
    thread.join(timeout=60)
    assert out == {"scores": [1.0, 0.0]}


@pytest.mark.parametrize("workers", [0, 1])
def test_an_answer_past_its_time_budget_scores_zero_and_scoring_goes_on(workers):
    # Equal, but proving it expands two products of degree 50: about a second of sympy work.
    def pair(k):
        return rf"(x+{k})^{{25}}(y+{k})^{{25}}", rf"(x y + {k} x + {k} y + {k * k})^{{25}}"

    # Generous budgets for the right answers: in this process the timer counts wall time, which a
    # busy machine stretches (worker processes count CPU time).
    assert score_math_answers([pair(3)], workers=workers, timeout_s=60) == [1.0]  # (and the pool is up)
    start = time.monotonic()
    assert score_math_answers([pair(2)], workers=workers, timeout_s=0.05) == [0.0]
    assert time.monotonic() - start < 1.0  # stopped by the timer, not by the worker being killed
    assert score_math_answers([pair(4)], workers=workers, timeout_s=60) == [1.0]
