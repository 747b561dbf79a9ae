"""Curriculum: advances for a solver that improves, stays for one that does not, resumes exactly."""

from __future__ import annotations

import json
import random

import pytest

from r1zero import tasks
from r1zero.errors import UserError
from r1zero.tasks import Curriculum


def run(curriculum: Curriculum, skill_at, steps: int, seed: int = 0) -> list[int]:
    """A scripted solver: P(correct | level, step) = clamp(skill_at(step) - level + 1, 0, 1)."""
    rng, drawn = random.Random(seed), []
    for step in range(steps):
        level = curriculum.next_level(rng)
        p = min(1.0, max(0.0, skill_at(step) - level + 1))
        curriculum.update(level, [rng.random() < p for _ in range(8)])  # a group of 8 samples
        drawn.append(level)
    return drawn


def test_level_advances_as_skill_rises():
    curriculum = Curriculum([1, 2, 3, 4, 5, 6], threshold=0.8, window=64, min_samples=16)
    drawn = run(curriculum, lambda step: 1 + step / 60, steps=400)  # skill reaches level 6 at step 300
    assert curriculum.level == 6
    assert drawn.index(3) < drawn.index(4) < drawn.index(5) < drawn.index(6)
    assert curriculum.pass_rates()[1] is not None and curriculum.pass_rates()[1] > 0.8


def test_level_stays_when_skill_never_improves():
    curriculum = Curriculum([1, 2, 3, 4, 5, 6])
    drawn = run(curriculum, lambda step: 0.5, steps=400)  # passes level 1 half the time, forever
    assert curriculum.level == 1 and set(drawn) == {1}
    assert 0.3 < curriculum.pass_rate(1) < 0.7


def test_solved_levels_are_not_drawn_again():
    curriculum = Curriculum([1, 2, 3], min_samples=8, window=8)
    assert curriculum.update(1, [True] * 8)  # unlocks 2
    assert curriculum.update(2, [True] * 8)  # unlocks 3
    rng = random.Random(0)
    assert {curriculum.next_level(rng) for _ in range(100)} == {3}  # 1 and 2 are at 100%
    curriculum.update(2, [False] * 4)  # 2 now at 50%: review it sometimes
    assert {curriculum.next_level(rng) for _ in range(100)} == {2, 3}
    assert curriculum.pass_rate(3) is None
    assert not curriculum.update(3, [True] * 8)  # the last level has nothing to unlock
    assert curriculum.level == 3


def test_state_dict_resumes_exactly():
    a = Curriculum([3, 4, 5, 6], window=32, min_samples=8)
    run(a, lambda step: 3 + step / 40, steps=100, seed=1)
    state = json.loads(json.dumps(a.state_dict()))
    b = Curriculum([3, 4, 5, 6], window=32, min_samples=8)
    b.load_state_dict(state)
    rng_a, rng_b = random.Random(7), random.Random(7)
    for _ in range(50):
        la, lb = a.next_level(rng_a), b.next_level(rng_b)
        assert la == lb
        outcome = [rng_a.random() < 0.7 for _ in range(4)]
        rng_b.random(), rng_b.random(), rng_b.random(), rng_b.random()
        assert a.update(la, outcome) == b.update(lb, outcome)
    assert a.state_dict() == b.state_dict()
    with pytest.raises(UserError, match="levels"):
        Curriculum([1, 2]).load_state_dict(state)


def test_drives_a_generator_task():
    task = tasks.get("arithmetic")
    curriculum, rng = Curriculum(task.levels, min_samples=4, window=8), random.Random(0)
    ex = task.sample(rng, level=curriculum.next_level(rng))
    assert ex.meta["difficulty"] == 1 and len(ex.prompt.split("=")[0]) <= 3
    curriculum.update(ex.meta["difficulty"], [True] * 4)
    assert task.sample(rng, level=curriculum.next_level(rng)).meta["difficulty"] == 2


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError):
        Curriculum([])
    with pytest.raises(UserError):
        Curriculum([1, 2], min_samples=100, window=10)
    with pytest.raises(UserError, match="level 9"):
        Curriculum([1, 2]).update(9, [True])


def test_update_groups_records_each_group_at_its_level():
    c = Curriculum([2, 3], threshold=0.5, window=8, min_samples=2)
    c.update_groups([2, 3, 2], [True, True, False, False, True, False])
    assert c.pass_rate(2) == 0.75 and c.pass_rate(3) == 0.0
