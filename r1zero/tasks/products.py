"""Long products, `a*b` with a two-digit (or longer) multiplier: the problems where a calculator pays.

The arithmetic corpus (r1zero.tasks.arithmetic) works `*` only by a one-digit number, one column at a
time; a product such as `347*86=` is beyond what the tiny model can work out, so the base answers it
with a guess, or, in a few documents, by calling the calculator (r1zero.tasks.tool_corpus). The
tiny-tools demo (recipes/tiny-tools.yaml) runs RL on these problems with `rl.tools: [calculator]`.

The evaluation split is arithmetic's: `is_test` on the problem text (a fixed 2% of all problems,
whatever the seed), so a product held out here is held out by the same rule everywhere; training
draws only the rest.

>>> p = LongProducts(2, 3, 2).problem(random.Random(0))
>>> p.op, len(str(p.b))
('*', 2)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1zero.errors import UserError
from r1zero.tasks.arithmetic import Problem, is_test
from r1zero.tasks.base import TASKS, GeneratedTask
from r1zero.tasks.builtin import ArithmeticTask
from r1zero.types import Example

MAX_DIGITS = 6


@dataclass(frozen=True)
class LongProducts:
    """`a*b` with `min_digits..max_digits` digits in `a` and `b_digits` digits in `b`."""

    min_digits: int = 2
    max_digits: int = 3
    b_digits: int = 2

    def __post_init__(self):
        if not (1 <= self.min_digits <= self.max_digits <= MAX_DIGITS) or not 1 <= self.b_digits <= MAX_DIGITS:
            raise UserError(f"long products need 1 <= min_digits <= max_digits <= {MAX_DIGITS} and 1 <= b_digits "
                            f"<= {MAX_DIGITS}, got {self.min_digits}..{self.max_digits} x {self.b_digits}")

    def problem(self, rng: random.Random, digits: int | None = None, split: str = "train") -> Problem:
        """A product of the `split` ("train" or "test"); `digits` (of `a`) defaults to uniform in min..max."""
        d = digits if digits is not None else rng.randint(self.min_digits, self.max_digits)
        for _ in range(100_000):
            p = Problem(rng.randint(10 ** (d - 1), 10**d - 1), "*",
                        rng.randint(10 ** (self.b_digits - 1), 10**self.b_digits - 1))
            if is_test(p) == (split == "test"):
                return p
        raise UserError(f"long products: no {split} problems with {d} x {self.b_digits} digits")

    def held_out(self, n: int) -> list[Problem]:
        """`n` distinct evaluation products, the same in every run."""
        rng = random.Random(f"held-out-products-{self.min_digits}-{self.max_digits}-{self.b_digits}")
        seen: dict[str, Problem] = {}
        for _ in range(50 * n + 1000):
            p = self.problem(rng, split="test")
            seen.setdefault(p.text, p)
            if len(seen) == n:
                break
        return list(seen.values())

    def example(self, p: Problem) -> Example:
        return Example(prompt=f"{p.text}=", answer=str(p.answer),
                       meta={"task": "products", "difficulty": len(str(p.a)), "id": p.text})


@TASKS.register("products")
def products(min_digits: int = 2, max_digits: int = 3, b_digits: int = 2) -> GeneratedTask:
    """`a*b`, `a` of min..max_digits digits (the level), `b` of `b_digits`: long products for a calculator.
    Splits and levels as arithmetic's (ArithmeticTask: the test split is `LongProducts.held_out`)."""
    gen = LongProducts(min_digits, max_digits, b_digits)
    return ArithmeticTask(name="products", rewards=("math", "format"), levels=tuple(range(1, MAX_DIGITS + 1)),
                        default_levels=tuple(range(min_digits, max_digits + 1)),
                        make=lambda rng, level: gen.example(gen.problem(rng, level)), generator=gen)
