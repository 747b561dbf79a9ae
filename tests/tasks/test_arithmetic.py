"""The arithmetic generator: a fixed evaluation split, and the corpus's slips, re-checks and drills."""

from __future__ import annotations

import random
import re

import pytest

from r1zero import tasks
from r1zero.config import PretrainConfig
from r1zero.errors import UserError
from r1zero.eval.metrics import has_correction, has_recheck
from r1zero.tasks.arithmetic import (
    ArithmeticGenerator,
    Problem,
    answer_first_line,
    check_drill,
    corpus_line,
    exercise_line,
    is_test,
    solution_text,
    worked_steps,
)
from r1zero.train.corpus import corpus_batch


def answer_of(text: str) -> int:
    return int(re.search(r"<answer>(\d+)</answer>", text).group(1))


def column_value(lhs: str) -> int:
    """`x+y+c`, `x-y-c` or a borrowed `1x-y-c`, or `x*b=P+c`."""
    return eval(lhs) if "*" not in lhs else eval(lhs.split("=")[0]) + int(lhs.split("+")[-1])


def has_slip(doc: str) -> bool:
    """Whether a column's first value is wrong (caught by a re-check or not)."""
    think = re.search(r"<think>(.*)</think>", doc).group(1)
    return any(column_value(lhs) != int(v) for lhs, v in re.findall(r"(?:^|;)([^~;]*)=(\d+)[~>]", think))


def test_the_evaluation_split_is_the_same_whatever_the_seed_and_never_trained_on():
    task = tasks.get("arithmetic")
    a, b = task.examples("test", n=50, seed=0), task.examples("test", n=50, seed=1)
    assert [e.prompt for e in a] == [e.prompt for e in b]
    assert all(is_test(ArithmeticGenerator().problem(random.Random(i), split="test")) for i in range(20))
    hard = tasks.get("arithmetic", min_digits=4, max_digits=5).examples("test", n=30)
    held = {e.prompt for e in a + hard}
    train = {e.prompt for seed in range(3) for e in task.examples("train", n=500, seed=seed)}
    train |= {e.prompt for e in tasks.get("arithmetic", min_digits=4, max_digits=5).examples("train", n=500)}
    assert len(train) > 1000 and not held & train
    cfg = PretrainConfig(batch_size=64, hard_share=0.5, drill_share=0.1)
    corpus = {doc.split("=")[0] + "=" for step in range(1, 60) for doc in corpus_batch(cfg, 1, step)}
    assert any(len(p) >= 10 for p in corpus)  # hard problems are in the corpus ...
    assert not corpus & held  # ... but no evaluation problem of any size


def test_a_recheck_corrects_the_slip_it_finds_and_the_answer_follows():
    for p in (Problem(123, "+", 59), Problem(905, "-", 587), Problem(487, "*", 7), Problem(100, "-", 1)):
        for col in range(len(str(p.a))):
            slipped = solution_text(p, "worked", slip_at=col)
            checked = solution_text(p, "worked", slip_at=col, checks=frozenset({col}))
            assert answer_of(slipped) != p.answer and answer_of(checked) == p.answer
            assert has_correction(checked) and not has_recheck(slipped)
            clean = solution_text(p, "worked", checks=frozenset({col}))
            assert has_recheck(clean) and not has_correction(clean) and answer_of(clean) == p.answer


def test_corpus_rechecks_are_rare_start_at_the_first_column_and_ignore_slips():
    rng, gen = random.Random(0), ArithmeticGenerator()
    docs = [corpus_line(gen.problem(rng), rng, 0.0, 0.5, recheck_share=0.05) for _ in range(4000)]
    checking = [d for d in docs if has_recheck(d)]
    assert 0.035 < len(checking) / len(docs) < 0.065
    assert all(re.search(r"<think>[^;]*~", d) for d in checking)  # the first column is re-checked
    slipped = [d for d in docs if has_slip(d)]
    assert len(slipped) > 1500 and 0.035 < sum(map(has_recheck, slipped)) / len(slipped) < 0.065  # as often
    assert [corpus_line(p, random.Random(1), 0.15, 0.15) for p in gen.held_out(5)] == \
           [corpus_line(p, random.Random(1), 0.15, 0.15, recheck_share=0.0) for p in gen.held_out(5)]


def test_a_check_drill_re_computes_every_step_correctly():
    rng = random.Random(0)
    drills = [check_drill(rng) for _ in range(200)]
    assert not any(";" in d or ">" in d for d in drills)  # what follows a re-check is not a solution's
    steps = [s for d in drills for s in d.split(",")]
    wrong = 0
    for step in steps:
        first, again = step.split("~")
        lhs, value = first.rsplit("=", 1)
        assert (value != again.rstrip("!")) == again.endswith("!")
        assert int(again.rstrip("!")) == column_value(lhs), step
        wrong += again.endswith("!")
    assert 0.4 < wrong / len(steps) < 0.6


def test_spacing_moves_the_columns_and_changes_nothing_else():
    rng, gen = random.Random(0), ArithmeticGenerator()
    problems = [gen.problem(rng) for _ in range(300)]
    plain = [corpus_line(p, random.Random(i), 0.0, 0.3, recheck_share=0.5) for i, p in enumerate(problems)]
    spaced = [corpus_line(p, random.Random(i), 0.0, 0.3, recheck_share=0.5, spacing=0.5) for i, p in enumerate(problems)]
    assert sum(a != b for a, b in zip(plain, spaced)) > 250
    assert [d.replace(" ", "") for d in spaced] == plain  # only spaces were added, and only ...
    gaps = [(d[m.start() - 1], d[m.end()]) for d in spaced for m in re.finditer(r" +", d)]
    assert gaps and all(before == ";" or after == ">" for before, after in gaps)  # ... after ; or before >
    assert max(len(m) for d in spaced for m in re.findall(r" +", d)) == 3


def test_the_remainder_layout_puts_each_columns_operands_before_its_colon_and_changes_nothing_else():
    """Each step reads `left:x op y ...` where x and y are the last digits of what is left of the
    problem, so a column's operands sit next to where it writes them."""
    rng = random.Random(0)
    gen = ArithmeticGenerator(2, 4)
    for i in range(300):
        p = gen.problem(rng)
        slip_at = i % 3 if i % 2 else None
        checks = frozenset({0, 2}) if i % 5 == 0 else frozenset()
        plain = solution_text(p, "worked", slip_at, checks)
        laid = solution_text(p, "worked", slip_at, checks, layout="remainder")
        assert answer_of(laid) == answer_of(plain) and has_correction(laid) == has_correction(plain)
        assert re.sub(r"(?<=<think>)[^:;]*:|(?<=;)[^:;]*:", "", laid) == plain  # only the prefixes differ
        for k, step in enumerate(re.search(r"<think>(.*)</think>", laid).group(1).split(";")):
            left, work = step.split(":")
            a, _, b = left.partition(p.op)
            x = work[1:] if p.op == "-" and len(work.split("-")[0]) == 2 else work  # a borrow writes 1x
            assert x[0] == (a[-1] if a else "0"), (p, step)
            if p.op != "*":
                assert x.split(p.op)[1][0] == (b[-1] if b else "0"), (p, step)
            assert len(a) == max(0, len(str(p.a)) - k)


def test_an_unknown_layout_is_one_clear_error():
    with pytest.raises(UserError, match="pretrain.layout must be one of columns, remainder; got 'rows'"):
        corpus_batch(PretrainConfig(layout="rows"), 0, 1)


def test_answer_first_guesses_restate_the_problem_and_a_verification_corrects_a_wrong_one():
    """`<think>P=G</think>`: a guess; `<think>P=G~<work>[!]</think>`: a guess verified by the remainder-layout
    work, `!` exactly when the work disagrees, and the answer is what the work gave."""
    rng, gen = random.Random(0), ArithmeticGenerator(2, 4)
    kinds = {"guess": 0, "verified": 0, "corrected": 0}
    for _ in range(2000):
        p = gen.problem(rng)
        doc = answer_first_line(p, rng, verify_share=0.3, guess_wrong=0.4, slip_share=0.0)
        prompt, think = doc.split("=<think>", 1)[0], re.search(r"<think>(.*)</think>", doc).group(1)
        assert prompt == p.text and think.startswith(f"{p.text}=")
        guess = int(think[len(p.text) + 1:].split("~")[0])
        if "~" not in think:
            kinds["guess"] += 1
            assert answer_of(doc) == guess and not has_recheck(doc) and not has_correction(doc)
            continue
        steps, worked = worked_steps(p, layout="remainder")
        assert think.split("~", 1)[1].rstrip("!") == ";".join(steps)
        assert answer_of(doc) == worked == p.answer  # no slips asked for: the work is right
        assert think.endswith("!") == (guess != worked) == has_correction(doc) and has_recheck(doc)
        kinds["corrected" if guess != worked else "verified"] += 1
    assert 0.25 < (kinds["verified"] + kinds["corrected"]) / 2000 < 0.35
    assert 0.35 < kinds["corrected"] / (kinds["verified"] + kinds["corrected"]) < 0.45  # independent of the guess


def test_an_answer_first_corpus_rarely_verifies_and_exercises_carry_no_answer():
    cfg = PretrainConfig(batch_size=64, answer_first=True, verify_share=0.1, exercise_share=0.3, slip_share=0.1)
    docs = [d for step in range(30) for d in corpus_batch(cfg, 0, step)]
    exercises = [d for d in docs if "?" in d]
    assert 0.25 < len(exercises) / len(docs) < 0.35
    assert all("<answer>" not in d and d.split("?")[1].startswith(d.split("?")[0] + ":") for d in exercises)
    verified = [d for d in docs if "~" in d]
    assert 0.04 < len(verified) / len(docs) < 0.10  # a few percent of documents re-examine their answer
    rng = random.Random(1)
    assert exercise_line(Problem(123, "+", 59), rng, 0.0) == "123+59?123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182"
