"""The `countdown` reward: brute-forced solutions of the Countdown test set score 1; wrong results,
reused or foreign numbers, and injected code score 0 and execute nothing."""

from fractions import Fraction
from itertools import combinations

import pytest

from r1zero.rewards import get
from r1zero.rewards.countdown import EquationError, evaluate_equation


def solve(nums: list[int], target: int) -> str | None:
    """An equation over some of `nums` (each at most once) equal to `target`, by exhaustive search."""
    def search(items):
        for value, text in items:
            if value == target:
                return text
        for i, j in combinations(range(len(items)), 2):
            (a, at), (b, bt) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            candidates = [(a + b, f"({at} + {bt})"), (a - b, f"({at} - {bt})"), (b - a, f"({bt} - {at})"),
                          (a * b, f"({at} * {bt})")]
            candidates += [(a / b, f"({at} / {bt})")] if b else []
            candidates += [(b / a, f"({bt} / {at})")] if a else []
            for candidate in candidates:
                found = search(rest + [candidate])
                if found:
                    return found
        return None

    return search([(Fraction(n), str(n)) for n in nums])


def countdown(completions, nums, target, **options):
    return get("countdown", **options)(["Q"] * len(completions), completions,
                                       nums=[nums] * len(completions), target=[target] * len(completions))


def test_hand_computed():
    nums, target = [30, 100, 93], 23
    completions = ["<answer>30 - (100 - 93)</answer>", "<answer>30-(100-93) = 23</answer>",
                   "<answer>23 = 30 - (100 - 93)</answer>", r"\boxed{30 - (100 - 93)}",
                   "<answer>30 - 100 + 93</answer>",  # 23 as well
                   "<answer>100 - 93 + 30</answer>",  # 37
                   "<answer>30 - 7</answer>",  # 7 is not given
                   "<answer>30 - (100 - 93) + 30 - 30</answer>",  # 30 used three times
                   "<answer>(30 - (100 - 93)</answer>", "no answer"]
    assert countdown(completions, nums, target) == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_at_most_once_and_exactly_once():
    # 4 * 6 = 24 leaves 5 unused: fine by default, not with use_all_numbers.
    assert countdown(["<answer>4 * 6</answer>", "<answer>(5 - 4) * 6 * 4</answer>"], [4, 5, 6], 24) == [1.0, 0.0]
    assert countdown(["<answer>4 * 6</answer>", "<answer>(5 - 4) * 6 * 4</answer>"], [4, 5, 6, 4], 24,
                     use_all_numbers=True) == [0.0, 1.0]


def test_exact_fractions_and_symbols():
    assert countdown(["<answer>6 / (1 - 3/4)</answer>"], [6, 1, 3, 4], 24) == [1.0]
    assert countdown(["<answer>(8 − 2) × 4 ÷ 1</answer>", r"<answer>(8 - 2) \times 4</answer>"], [8, 2, 4, 1], 24) \
        == [1.0, 1.0]
    assert countdown(["<answer>8 / (2 - 2)</answer>"], [8, 2, 2], 4) == [0.0]  # division by zero


@pytest.mark.parametrize("text", ["2 ** 10", "1.5 * 2", "abs(-3)", "2 3", "(" * 60 + "1" + ")" * 60, "1" * 500])
def test_not_equations(text):
    with pytest.raises(EquationError):
        evaluate_equation(text)


INJECTIONS = [
    "__import__('os').system('touch {marker}')",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "open('{marker}', 'w').write('1')",
    "[c for c in ().__class__.__base__.__subclasses__()] and 23",
    "eval(\"__import__('os').system('touch {marker}')\")",
    "exec('import os; os.system(\"touch {marker}\")')",
    "23; __import__('os').system('touch {marker}')",
    "23 # __import__('os').system('touch {marker}')",
]


def test_injected_code_scores_zero_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    completions = [f"<answer>{text.format(marker=marker)}</answer>" for text in INJECTIONS]
    assert countdown(completions, [23, 1, 2], 23) == [0.0] * len(INJECTIONS)
    assert not marker.exists()


def test_countdown_test_set(read_data):
    rows = read_data("countdown/countdown_cd3_test.jsonl")
    solved, right, wrong, reused, foreign = 0, [], [], [], []
    for row in rows:
        nums, target = [int(x) for x in row["input"].split(",")], int(row["output"])
        equation = solve(nums, target)
        if equation is None:
            continue
        solved += 1
        right.append(countdown([f"<think>search</think><answer>{equation}</answer>"], nums, target)[0])
        sum_or_product = " + ".join(map(str, nums)) if sum(nums) != target else " * ".join(map(str, nums))
        wrong.append(countdown([f"<answer>{sum_or_product}</answer>"], nums, target)[0])  # numbers fine, value not
        twice_too_many = f" + {nums[0]} - {nums[0]}" * nums.count(nums[0])  # the value stays the target
        reused.append(countdown([f"<answer>{equation}{twice_too_many}</answer>"], nums, target)[0])
        foreign.append(countdown([f"<answer>{equation} + {target + 1} - {target + 1}</answer>"], nums, target)[0])
    print(f"\ncountdown cd3 test: brute force solved {solved}/{len(rows)}; right scores 1 on {sum(right)}/{solved}; "
          f"a reused number, a foreign number, a wrong result score 0 on "
          f"{reused.count(0.0)}, {foreign.count(0.0)}, {wrong.count(0.0)} of {solved}")
    assert solved >= 0.95 * len(rows)
    assert right == [1.0] * solved
    assert wrong == reused == foreign == [0.0] * solved


def test_raw_string_nums_are_read():
    assert get("countdown")(["Q"], ["<answer>30 - (100 - 93)</answer>"], nums=["30,100,93"], target=["23"]) == [1.0]
