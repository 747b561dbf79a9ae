"""Multi-digit arithmetic: the generator behind the pretraining corpus and the demo's RL task.

A problem is `a op b` with `op` in `+ - *`. Its worked solution goes column by column from the
last digit, the way a person does it on paper, and keeps the partial result after `>`:

    123+59=  ->  <think>3+9+0=12>2;2+5+1=8>82;1+0+0=1>182</think><answer>182</answer>

`-` keeps `a >= b` and marks a borrow with a leading 1 (`13-5-0=8`); `*` multiplies by a
one-digit number, one product and one carry addition per column (`8*4=32+3=35>5`): a tiny model
learns the 80 products and the additions far sooner than 720 fused `x*b+c` facts. A direct
solution skips the work: `<think></think><answer>N</answer>`.
A slipped solution gets one column wrong by one and carries the slip through to its answer, so the
corpus teaches the mistakes a real base model makes (R1 starts from an imperfect base).
With `layout="remainder"` each step starts with what is left of the problem (`12+5:2+5+1=8>82`), so
a column finds its operand digits next to where it writes them (the last digit before `+` and before
`:`) instead of by distance into the prompt. Measured: on trial bases with 5% 4-digit problems,
4-digit pass@64 0.84-0.92 vs 0.36-0.46, and a re-check derails it less (docs/self-verification.md);
on the demo's recipe, sampled pass@1 at base 0.599 vs 0.492 (seed 0) but 0.538 vs 0.567 (seed 1).
A re-check works a column's value out again in place, `9+5+0=15~14!>4` (`!`: it disagreed, and the
work goes on from 14); `corpus_line` can make a few solutions re-check, `check_drill` makes
verification exercises, `spaced` varies the layout (docs/self-verification.md has the trials).

With `answer_first` (the demo) a question is answered by a quick guess, and a few guesses are verified
by working the problem out in the remainder layout (`answer_first_line`): the check is more reliable
than what it checks, so RL grows it; the working itself is learnt from bare exercises (`exercise_line`).

Difficulty is the number of digits of the larger operand. The evaluation split is a fixed 2% of all
problems (`is_test`), whatever the seed; training draws only from the rest.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass

from r1zero.errors import UserError
from r1zero.types import Example

OPS = "+-*"
LAYOUTS = ("columns", "remainder")
MAX_SPACES = 3  # the most spaces `spaced` puts in one place


@dataclass(frozen=True)
class Problem:
    a: int
    op: str
    b: int

    @property
    def text(self) -> str:
        return f"{self.a}{self.op}{self.b}"

    @property
    def answer(self) -> int:
        return {"+": self.a + self.b, "-": self.a - self.b, "*": self.a * self.b}[self.op]


def sample_problem(rng: random.Random, digits: int, ops: str = OPS) -> Problem:
    """A problem whose larger operand has `digits` digits (the second one of `*` has one)."""
    op = rng.choice(ops)
    lo, hi = (10 ** (digits - 1) if digits > 1 else 0), 10**digits - 1
    a = rng.randint(lo, hi)
    if op == "*":
        return Problem(a, op, rng.randint(2, 9))
    b = rng.randint(0, hi)
    if op == "-" and b > a:
        a, b = b, a
    return Problem(a, op, b)


def column_lhs(op: str, x: int, y: int, carry: int, b: int) -> tuple[str, int, int]:
    """One column's written left-hand side, its true value, and a subtraction's borrow."""
    if op == "+":
        return f"{x}+{y}+{carry}", x + y + carry, 0
    if op == "-":
        borrow = int(x - y - carry < 0)
        return f"{'1' if borrow else ''}{x}-{y}-{carry}", x - y - carry + 10 * borrow, borrow
    return f"{x}*{b}={x * b}+{carry}", x * b + carry, 0


def slipped(value: int, op: str, slip_by: int = 1) -> int:
    """A column value off by `slip_by` (a subtraction's digit wraps mod 10; a sum stays >= 0)."""
    if op == "-":
        return (value + slip_by) % 10
    return value + slip_by if value + slip_by >= 0 else value + 1


def remainder(p: Problem, i: int) -> str:
    """What is left of the problem at column `i` (a product keeps its one-digit multiplier).

    >>> [remainder(Problem(123, "+", 59), i) for i in range(4)], remainder(Problem(76, "*", 5), 1)
    (['123+59', '12+5', '1+', '+'], '7*5')
    """
    a, b = str(p.a), str(p.b)
    return a[: max(0, len(a) - i)] + p.op + (b if p.op == "*" else b[: max(0, len(b) - i)])


def worked_steps(p: Problem, slip_at: int | None = None, slip_by: int = 1,
                 checks: frozenset[int] = frozenset(), layout: str = "columns") -> tuple[list[str], int]:
    """Column-by-column steps and the final answer they lead to; with `layout="remainder"` each step
    starts with `remainder(p, i)` and `:`.

    With `slip_at` set, the column result at that index is off by `slip_by` and everything after
    follows from the wrong digit, so the answer is consistently wrong, unless that column is in
    `checks`: a checked column's value is worked out again from the same operands after `~`
    (`9+5+0=15~14!`), `!` marks a re-check that disagreed, and the work goes on from the re-checked value.
    """
    xs = [int(c) for c in reversed(str(p.a))]
    ys = [int(c) for c in reversed(str(p.b))] if p.op != "*" else []
    steps, digits, carry = [], [], 0
    for i, x in enumerate(xs):
        lhs, true, borrow = column_lhs(p.op, x, ys[i] if i < len(ys) else 0, carry, p.b)
        value = slipped(true, p.op, slip_by) if i == slip_at else true
        step = f"{lhs}={value}"
        if i in checks:
            step += f"~{true}" + ("!" if value != true else "")
            value = true
        if p.op == "-":
            digit, carry = value, borrow
        else:
            digit, carry = value % 10, value // 10
        digits.append(digit)
        steps.append(f"{step}>{''.join(map(str, reversed(digits)))}")
    if carry and p.op != "-":
        digits.append(carry)
        lhs = f"0+0+{carry}" if p.op == "+" else f"0*{p.b}=0+{carry}"
        steps.append(f"{lhs}={carry}>{''.join(map(str, reversed(digits)))}")
    if layout == "remainder":
        steps = [f"{remainder(p, i)}:{step}" for i, step in enumerate(steps)]
    return steps, int("".join(map(str, reversed(digits))))


def solution_text(p: Problem, style: str, slip_at: int | None = None,
                  checks: frozenset[int] = frozenset(), layout: str = "columns") -> str:
    """The completion for `p`: style "worked" or "direct".

    >>> solution_text(Problem(123, "+", 59), "worked", layout="remainder")
    '<think>123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182</think><answer>182</answer>'
    """
    if style == "direct":
        return f"<think></think><answer>{p.answer}</answer>"
    steps, answer = worked_steps(p, slip_at, checks=checks, layout=layout)
    return f"<think>{';'.join(steps)}</think><answer>{answer}</answer>"


def is_test(p: Problem) -> bool:
    """Whether `p` belongs to the evaluation split: a fixed 2% of all problems, chosen by a hash of the
    text, so the split is the same whatever the run's seed or digit range, and training (which draws
    only the rest) never sees an evaluation problem."""
    return zlib.crc32(p.text.encode()) % 50 == 0


@dataclass
class ArithmeticGenerator:
    """Problems with `min_digits..max_digits` digits, drawn uniformly over digits and `ops`."""

    min_digits: int = 2
    max_digits: int = 3
    ops: str = OPS

    def problem(self, rng: random.Random, digits: int | None = None, split: str = "train") -> Problem:
        """A problem of the `split` ("train" or "test"); `digits` defaults to uniform in min..max."""
        d = digits if digits is not None else rng.randint(self.min_digits, self.max_digits)
        for _ in range(100_000):
            p = sample_problem(rng, d, self.ops)
            if is_test(p) == (split == "test"):
                return p
        raise UserError(f"arithmetic: no {split} problems with {d} digits and ops {self.ops!r}")

    def held_out(self, n: int) -> list[Problem]:
        """`n` distinct evaluation problems, the same in every run (training draws none of them); fewer
        where the space holds fewer (2% of the 100 one-digit sums is 2)."""
        rng, seen, out = random.Random(f"held-out-{self.min_digits}-{self.max_digits}-{self.ops}"), set(), []
        for _ in range(50 * n + 1000):
            p = self.problem(rng, split="test")
            if p.text not in seen:
                seen.add(p.text)
                out.append(p)
                if len(out) == n:
                    break
        return out

    def example(self, p: Problem) -> Example:
        digits = len(str(max(p.a, p.b)))
        return Example(prompt=f"{p.text}=", answer=str(p.answer),
                       meta={"task": "arithmetic", "difficulty": digits, "id": p.text})


def draw_slip(p: Problem, rng: random.Random, slip_share: float) -> int | None:
    """The column a worked solution of `p` slips at, with probability `slip_share`; None otherwise."""
    return rng.randrange(len(str(p.a))) if rng.random() < slip_share else None


def corpus_line(p: Problem, rng: random.Random, direct_share: float, slip_share: float,
                recheck_share: float = 0.0, recheck_density: float = 0.75, spacing: float = 0.0,
                layout: str = "columns") -> str:
    """One pretraining document: prompt then a direct, worked or slipped worked solution.

    A share `recheck_share` of worked solutions are careful ones: they re-check their first column and
    each later one with probability `recheck_density`, whether or not it slipped. So the choice to
    re-check is made at the first column, before the work can go wrong, and says nothing about how it
    is going (a model that re-checks only when lost learns that re-checks mark failure).
    With `spacing`, spaces are put where a re-check goes and between steps (see `spaced`).
    """
    if rng.random() < direct_share:
        return f"{p.text}={solution_text(p, 'direct')}"
    n_cols = len(str(p.a))
    slip_at = draw_slip(p, rng, slip_share)
    checks = frozenset()
    if recheck_share and rng.random() < recheck_share:
        checks = frozenset(i for i in range(n_cols) if i == 0 or rng.random() < recheck_density)
    text = solution_text(p, "worked", slip_at, checks, layout)
    return f"{p.text}={spaced(text, rng, spacing) if spacing else text}"


def wrong_guess(answer: int, rng: random.Random) -> int:
    """A quick answer with one digit off by one (a guess a person might write down).

    >>> wrong_guess(182, random.Random(0)) != 182
    True
    """
    digits = str(answer)
    i = rng.randrange(len(digits))
    d = int(digits[i])
    d = d + 1 if d == 0 or (d < 9 and rng.random() < 0.5) else d - 1
    out = digits[:i] + str(d) + digits[i + 1:]
    return int(out) if out.lstrip("0") or out == "0" else answer + 1


def exercise_line(p: Problem, rng: random.Random, slip_share: float) -> str:
    """A bare worked computation, no answer: `p`, `?`, then its remainder-layout steps
    (`123+59?123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182`), as a textbook shows its working.
    The steps restate the problem: a problem is random only at a document's start and copied
    everywhere else, as a verification must copy it."""
    slip_at = draw_slip(p, rng, slip_share)
    steps, _ = worked_steps(p, slip_at, layout="remainder")
    return f"{p.text}?{';'.join(steps)}"


def answer_first_line(p: Problem, rng: random.Random, verify_share: float, guess_wrong: float,
                      slip_share: float) -> str:
    """A question answered first by a quick guess that restates it, `123+59=<think>123+59=182</think>...`;
    a share `verify_share` of them then verify the guess by working it out (`~` and the remainder-layout
    steps), mark a disagreement with `!`, and answer what the work gives:

        123+59=<think>123+59=181~123+59:3+9+0=12>2;12+5:2+5+1=8>82;1+:1+0+0=1>182!</think><answer>182</answer>

    Whether a guess is verified is drawn independently of whether it is right, so a `~` says nothing
    about the guess; the guess is wrong with probability `guess_wrong`, so what the work gives cannot be
    copied from it. The restatement gives the verification a copy of the problem close by: without it,
    0-5% of a trial base's verifications copied the problem right (docs/self-verification.md, W1-W3)."""
    guess = wrong_guess(p.answer, rng) if rng.random() < guess_wrong else p.answer
    if rng.random() >= verify_share:
        return f"{p.text}=<think>{p.text}={guess}</think><answer>{guess}</answer>"
    slip_at = draw_slip(p, rng, slip_share)
    steps, worked = worked_steps(p, slip_at, layout="remainder")
    mark = "!" if worked != guess else ""
    return f"{p.text}=<think>{p.text}={guess}~{';'.join(steps)}{mark}</think><answer>{worked}</answer>"


def spaced(text: str, rng: random.Random, share: float) -> str:
    """`text` with 1..MAX_SPACES spaces, each time with probability `share`, before each partial result
    (where a re-check goes) and after each step separator.

    Why: a tiny model finds a column's operand digits by their distance from where it writes; a re-check
    written mid-solution shifts every later column, and a base trained on solutions of one fixed layout
    then misreads the operands after it (a correct forced re-check of the first column cut accuracy
    from 0.64 to 0.25). Varied spacing teaches it to find them by content instead.
    """
    def gap(match: re.Match) -> str:
        pad = " " * rng.randint(1, MAX_SPACES) if rng.random() < share else ""
        return f"{pad}>" if match.group(0) == ">" else f";{pad}"

    return re.sub(r"(?<=[\d!])>|;", gap, text)


def check_drill(rng: random.Random, n: int = 4, wrong_share: float = 0.5, ops: str = OPS) -> str:
    """A verification exercise, not a solution: `n` unrelated column steps, each followed by its re-check,
    half of them with a wrong value that the re-check corrects (`7*7=49+0=50~49!`), separated by `,`.
    Practice in judging a given step, so that a re-check inside a solution draws on a skill learnt
    elsewhere. What follows a re-check differs from a solution's (`,` and an unrelated step here, `>`
    and the partial result there), so a re-checking solution does not drift into drill mode."""
    drills = []
    for _ in range(n):
        op = rng.choice(ops)
        x, y, carry = rng.randint(0, 9), rng.randint(0, 9), rng.randint(0, 1)
        b = rng.randint(2, 9)
        carry = rng.randint(0, b - 1) if op == "*" else carry
        lhs, true, _ = column_lhs(op, x, y, carry, b)
        value = slipped(true, op, rng.choice((1, 1, -1, 2))) if rng.random() < wrong_share else true
        drills.append(f"{lhs}={value}~{true}" + ("!" if value != true else ""))
    return ",".join(drills)
