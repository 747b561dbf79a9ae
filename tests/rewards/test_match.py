"""`exact` and `numeric` by hand, and `numeric` on every GSM8K test answer."""

from fractions import Fraction

from r1zero.rewards import get
from r1zero.rewards.match import normalize_answer, parse_number


def test_numbers_are_read_exactly():
    assert parse_number("1,234,567") == 1234567
    assert parse_number("3.0") == parse_number("3") == 3
    assert parse_number("-0.5") == Fraction(-1, 2) == parse_number("-1/2")
    assert parse_number(r"\$18.00") == 18
    assert parse_number("50%") == 50
    assert parse_number("x = 5 - 3") == 3  # the last number; a dash after a digit is not a sign
    assert parse_number("1,23") == 23  # not a thousands comma: two numbers
    assert parse_number("1/0") is None
    assert parse_number("") is None


def test_numeric_hand_computed():
    completions = ["<answer>18</answer>", "<answer>$18.0</answer>", "<answer>18 dollars</answer>",
                   "<answer>17</answer>", "I think 18", "<answer>1,800</answer>"]
    assert get("numeric")(["Q"] * 6, completions, answer=["18"] * 5 + ["1800"]) == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    # Raw GSM8K gold, and a gold without a number (not applicable).
    assert get("numeric")(["Q"] * 2, ["<answer>72</answer>"] * 2, answer=["so 48 + 24 = 72\n#### 72", "n/a"]) \
        == [1.0, None]


def test_exact_hand_computed():
    assert normalize_answer(r"$\text{(C)}$") == "(c)"
    completions = ["<answer>(C)</answer>", r"<answer>\text{(C)}</answer>", "<answer>(D)</answer>",
                   "<answer>x+1</answer>"]
    assert get("exact")(["Q"] * 4, completions, answer=["(C)", "(c)", "(C)", "x + 1"]) == [1.0, 1.0, 0.0, 0.0]


def gsm8k_final_answer(solution: str) -> str:
    return solution.split("####")[-1].strip().replace(",", "")


def test_numeric_on_gsm8k_gold_answers(read_data):
    rows = read_data("gsm8k/test.jsonl")
    golds = [gsm8k_final_answer(r["answer"]) for r in rows]
    n = len(golds)
    right = get("numeric")(["Q"] * n, [f"<answer>{g}</answer>" for g in golds], answer=golds)
    # The next record's answer; where both records have the same answer it is rightly 1, so the
    # asserted rate counts only the pairs whose gold strings differ.
    others = [golds[(i + 1) % n] for i in range(n)]
    shifted = get("numeric")(["Q"] * n, [f"<answer>{o}</answer>" for o in others], answer=golds)
    differing = [s for s, g, o in zip(shifted, golds, others) if g != o]
    rate = differing.count(0.0) / len(differing)
    print(f"\nnumeric on GSM8K test: gold scores 1 on {right.count(1.0)}/{n}; the next record's answer "
          f"scores 0 on {shifted.count(0.0) / n:.2%} of all rows, {rate:.2%} of the {len(differing)} with another answer")
    assert right.count(1.0) == n == 1319
    assert rate >= 0.99
