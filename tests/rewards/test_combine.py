"""`combine`: weights, means, and rewards that raise, hang or misbehave cost one sample each."""

import threading
import time

import pytest

from r1zero.errors import UserError
from r1zero.rewards import combine

GATE = {"release": threading.Event()}  # set after each test: lets the abandoned hung threads finish


@pytest.fixture(autouse=True)
def release_hung_threads():
    GATE["release"] = threading.Event()
    yield
    GATE["release"].set()


def raises_on_b(prompts, completions, **columns):
    if completions[0] == "b":
        raise RuntimeError("boom")
    return [1.0]


def hangs_on_c(prompts, completions, **columns):
    if completions[0] == "c":
        GATE["release"].wait(60)
    return [0.5]


def not_a_list(prompts, completions, **columns):
    return 1.0


def test_weights_and_means_hand_computed():
    completions = ["<think>x</think><answer>4</answer>", "<answer>4</answer>", "<think>x</think><answer>5</answer>"]
    total, means, errors = combine({"format": 0.25, "exact": 1.0}, ["Q"] * 3, completions, {"answer": ["4", "4", None]})
    # format: 1, 0, 1 (mean 2/3); exact: 1, 1, None (mean over the 2 where it applies).
    assert total == [1.25, 1.0, 0.25]
    assert means == {"reward/format": pytest.approx(2 / 3), "reward/exact": 1.0}
    assert errors == {"reward/format/errors": 0, "reward/exact/errors": 0}


def test_a_raising_and_a_hanging_reward_score_zero_and_the_rest_goes_on():
    completions = ["a", "b", "c", "d"]
    start = time.monotonic()
    total, means, errors = combine([(raises_on_b, 1.0), (hangs_on_c, 2.0), ("format_lenient", 1.0)],
                                   ["Q"] * 4, completions, {}, timeout_s=0.5)
    assert time.monotonic() - start < 10
    # raises_on_b: 1, 0 (error), 1, 1; hangs_on_c: .5, .5, 0 (timeout), .5; format: all 0.
    assert total == [2.0, 1.0, 1.0, 2.0]
    assert errors == {"reward/raises_on_b/errors": 1, "reward/hangs_on_c/errors": 1, "reward/format_lenient/errors": 0}
    assert means == {"reward/raises_on_b": 0.75, "reward/hangs_on_c": 0.375, "reward/format_lenient": 0.0}


def test_many_hanging_calls_do_not_starve_the_others():
    completions = ["c"] * 6 + ["a"] * 6
    total, _, errors = combine([(hangs_on_c, 1.0)], ["Q"] * 12, completions, {}, timeout_s=0.3, max_workers=2)
    assert total == [0.0] * 6 + [0.5] * 6
    assert errors == {"reward/hangs_on_c/errors": 6}


def test_a_malformed_return_is_an_error():
    total, _, errors = combine([(not_a_list, 1.0)], ["Q"], ["a"], {})
    assert total == [0.0] and errors == {"reward/not_a_list/errors": 1}


def test_non_list_columns_pass_through_and_bad_specs_fail():
    seen = {}

    def spy(prompts, completions, trainer_state=None, answer=None, **columns):
        seen.update(trainer_state=trainer_state, answer=answer)
        return [None]

    total, means, _ = combine([(spy, 1.0)], ["Q"], ["a"], {"trainer_state": "state", "answer": ["4"]})
    assert seen == {"trainer_state": "state", "answer": ["4"]} and total == [0.0] and means == {"reward/spy": None}
    with pytest.raises(UserError, match="unknown reward 'nope'"):
        combine({"nope": 1.0}, ["Q"], ["a"])
    with pytest.raises(UserError, match="2 prompts for 1 completions"):
        combine({"format": 1.0}, ["Q", "Q"], ["a"])
