"""Per-problem statistics: unbiased pass@k (Chen et al. 2021), cons@k, and the answer/format checks.

- `pass_at_k(n, c, k) = 1 - C(n-c, k) / C(n, k)`: the chance that k of the n samples, drawn
  without replacement, hold a correct one. pass@1 is the mean correctness over the n samples
  (the R1 paper's pass@1 at temperature 0.6 with k samples per question).
- `cons_at_k`: majority vote over the first k samples' answers (see `inference.vote`: equivalent
  answers count together, ties go to the answer seen first). Departure: one draw of k samples, not
  an average over all k-subsets as for pass@k, as in the R1 paper's cons@64.
- The final answer is read as the rewards read it (`<answer>` tags, else the last `\\boxed{}`).
- Re-checks, in the thinking only: the arithmetic notation's in-place re-check `~` (a column
  re-computed), with `!` when it disagreed and the work went on from the new value (a correction);
  in prose, "wait" or "let me re-check / verify / double-check". Corrections are counted in the
  arithmetic notation only: prose gives no rule-checkable sign that a result changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import comb

from r1zero.eval.inference import vote
from r1zero.rewards.extract import plain_final_answer
from r1zero.rewards.format import is_strict_format


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct: 1 - C(n-c,k)/C(n,k).

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 2), pass_at_k(4, 3, 2)
    (0.25, 0.5, 1.0)
    """
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k_curve(n: int, correct_counts: Sequence[int]) -> dict[int, float]:
    """Mean unbiased pass@k over problems, for every k in 1..n."""
    return {k: sum(pass_at_k(n, c, k) for c in correct_counts) / max(1, len(correct_counts))
            for k in range(1, n + 1)}


def vote_ks(n: int) -> list[int]:
    """The k's cons@k is reported at: powers of two below n, and n."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i < n]
    return ks + [n]


def cons_at_k(groups: Sequence[int | None], correct: Sequence[bool], k: int) -> bool:
    """Whether the majority answer of the first k samples is correct (no answers: False).

    >>> cons_at_k([0, 1, 1, 0], [False, True, True, False], 3), cons_at_k([0, 1], [False, True], 2)
    (True, False)
    """
    winner, _ = vote(groups[:k])
    return winner is not None and bool(correct[list(groups).index(winner)])


def extract_answer(text: str) -> str | None:
    """The final answer: inside the last <answer>...</answer> (a \\boxed{} in it unwrapped), else the
    last \\boxed{}; None without either."""
    return plain_final_answer(text)


def well_formed(text: str) -> bool:
    """Exactly `<think>...</think><answer>...</answer>` (the `format` reward's strict check)."""
    return is_strict_format(text)


def reasons(text: str) -> bool:
    """Whether a completion works step by step: its <think> block is not empty."""
    m = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
    return bool(m and m.group(1).strip())


RECHECK_WORDS = re.compile(r"\b(wait|let me (?:re-?check|verify|double[- ]check))\b", re.IGNORECASE)


def thinking(text: str) -> str:
    """The text inside <think>...</think> (up to the end when it was never closed); '' without one."""
    m = re.search(r"<think>(.*?)(?:</think>|$)", text, re.DOTALL)
    return m.group(1) if m else ""


def recheck_count(text: str) -> int:
    """Re-checks in the thinking: `~` re-computations plus prose markers.

    >>> recheck_count("<think>9+5+0=15~14!>4;1+0+0=1~1>14</think>"), recheck_count("<think>Wait, 2</think>")
    (2, 1)
    """
    think = thinking(text)
    return think.count("~") + len(RECHECK_WORDS.findall(think))


def has_recheck(text: str) -> bool:
    return recheck_count(text) > 0


def has_correction(text: str) -> bool:
    """A re-check that disagreed with the step it checked (`=15~14`), so the work changed course
    (whether or not it wrote the `!` that marks it). The older form that restates the column
    (`=15~9+5+0=14`) counts too.

    >>> has_correction("<think>9+5+0=15~14!>4</think>"), has_correction("<think>9+5+0=14~14>4</think>")
    (True, False)
    >>> has_correction("<think>9+5+0=15~14!   >4</think>"), has_correction("<think>8+6+0=14~8+6+0=13>3</think>")
    (True, True)
    """
    guessed = re.match(r"\s*(?:\d+[-+*]\d+=)?(\d+)~\d+[-+*]\d*:[^~]*>\s*(\d+)!?\s*$", thinking(text), re.DOTALL)
    if guessed:  # a quick answer, then worked out (answer_first): did the work change it?
        return int(guessed.group(1)) != int(guessed.group(2))  # `>079`: a difference's leading zero
    found = re.findall(r"=(\d+)~(?:[^;>~]*=)?(\d+)!?(?=\s*[;>~,]|\s*$)", thinking(text))
    return any(first != again for first, again in found)
