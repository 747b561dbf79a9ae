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

Difficulty is the number of digits of the larger operand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1zero.types import Example

OPS = "+-*"


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


def worked_steps(p: Problem, slip_at: int | None = None, slip_by: int = 1) -> tuple[list[str], int]:
    """Column-by-column steps and the final answer they lead to.

    With `slip_at` set, the column result at that index is off by `slip_by` (mod 10) and
    everything after follows from the wrong digit, so the answer is consistently wrong.
    """
    xs = [int(c) for c in reversed(str(p.a))]
    ys = [int(c) for c in reversed(str(p.b))] if p.op != "*" else []
    n = len(xs)
    steps, digits, carry = [], [], 0
    for i in range(n):
        x = xs[i]
        y = ys[i] if i < len(ys) else 0
        if p.op == "+":
            total = x + y + carry
            lhs = f"{x}+{y}+{carry}"
        elif p.op == "-":
            total = x - y - carry
            lhs = f"{x}-{y}-{carry}" if total >= 0 else f"1{x}-{y}-{carry}"
        else:
            total = x * p.b + carry
            lhs = f"{x}*{p.b}={x * p.b}+{carry}"
        if p.op == "-":
            borrow = int(total < 0)
            value = total + 10 * borrow
            digit = value
            if i == slip_at:
                digit = value = (value + slip_by) % 10
            carry = borrow
        else:
            value = total
            if i == slip_at:
                value = total + slip_by if total + slip_by >= 0 else total + 1
            digit, carry = value % 10, value // 10
        digits.append(digit)
        steps.append(f"{lhs}={value}>{''.join(map(str, reversed(digits)))}")
    if carry and p.op != "-":
        digits.append(carry)
        lhs = f"0+0+{carry}" if p.op == "+" else f"0*{p.b}=0+{carry}"
        steps.append(f"{lhs}={carry}>{''.join(map(str, reversed(digits)))}")
    return steps, int("".join(map(str, reversed(digits))))


def solution_text(p: Problem, style: str, slip_at: int | None = None) -> str:
    """The completion for `p`: style "worked" or "direct"."""
    if style == "direct":
        return f"<think></think><answer>{p.answer}</answer>"
    steps, answer = worked_steps(p, slip_at)
    return f"<think>{';'.join(steps)}</think><answer>{answer}</answer>"


@dataclass
class ArithmeticGenerator:
    """Problems with `min_digits..max_digits` digits, drawn uniformly over digits and `ops`."""

    min_digits: int = 2
    max_digits: int = 3
    ops: str = OPS

    def problem(self, rng: random.Random, digits: int | None = None) -> Problem:
        d = digits if digits is not None else rng.randint(self.min_digits, self.max_digits)
        return sample_problem(rng, d, self.ops)

    def held_out(self, n: int, seed: int) -> list[Problem]:
        """`n` distinct problems for evaluation; training skips them (see `corpus_line`)."""
        rng, seen, out = random.Random(f"held-out-{seed}"), set(), []
        while len(out) < n:
            p = self.problem(rng)
            if p.text not in seen:
                seen.add(p.text)
                out.append(p)
        return out

    def example(self, p: Problem) -> Example:
        digits = len(str(max(p.a, p.b)))
        return Example(prompt=f"{p.text}=", answer=str(p.answer),
                       meta={"task": "arithmetic", "difficulty": digits, "id": p.text})


def corpus_line(p: Problem, rng: random.Random, direct_share: float, slip_share: float) -> str:
    """One pretraining document: prompt then a direct, worked or slipped worked solution."""
    if rng.random() < direct_share:
        return f"{p.text}={solution_text(p, 'direct')}"
    n_cols = len(str(p.a))
    slip_at = rng.randrange(n_cols) if rng.random() < slip_share else None
    return f"{p.text}={solution_text(p, 'worked', slip_at)}"
