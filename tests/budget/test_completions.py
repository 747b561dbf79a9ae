"""What a model writes: two forms told apart, rl's worked form, budget forcing's two calls."""

import pytest

from r1zero.budget.completions import Written, column_tokens, forced_lengths, longer_form, ramp, worked_form


def test_two_forms_are_told_apart_by_a_doubling_jump():
    assert longer_form([15, 16, 17, 15, 60, 71]) == 60  # guesses and verified answers (the demo's corpus)
    assert longer_form([7, 8, 27, 28, 41, 50]) == 27  # direct answers and worked ones, of two layouts (tiny-r1)
    assert longer_form([27, 41, 50]) is None and longer_form([5]) is None  # one form's spread


def test_rl_ends_at_the_worked_form_of_each_digit_count():
    written = [Written(2, 15, 4)] * 9 + [Written(2, 60, 4)] + [Written(3, 19, 5)] * 8 + [Written(3, 80, 5)] * 2
    worked = worked_form(written)
    assert sorted(worked) == sorted([Written(2, 60, 4)] * 10 + [Written(3, 80, 5)] * 10)  # as many per digit count
    assert worked_form(worked) == worked  # nothing shorter left to drop
    assert ramp(written, worked) == written + worked and ramp(worked, worked) == worked


def test_a_forced_answer_is_the_answer_alone_and_under_a_column_half_the_rows_work_on():
    # worked solutions of 2 and 3 digits, 30 and 45 tokens: 15 tokens a column; answers 4 and 5 tokens
    written = [Written(2, 30, 4)] * 20 + [Written(3, 45, 5)] * 20
    assert column_tokens(written) == pytest.approx(15)
    thinking, answering, share = forced_lengths(written, 30)
    # 2 digits: 24 tokens of thinking, stopped at `</think>` (25), then `<answer>` and the answer; 3 digits:
    # cut at 30, the answer alone
    assert set(zip(thinking, answering)) == {(25, 5), (30, 5)} and share == 0
    thinking, answering, share = forced_lengths(written, 8)  # within the first column: works on, or not
    assert set(thinking) == {8} and sorted(set(answering)) == [4, 5, 22, 37] and share == 0.5
    assert forced_lengths([Written(2, 30, 4)] * 40, 8).working_share == 0  # no column known: answers alone
