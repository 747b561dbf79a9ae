"""The `math` reward: is the final answer mathematically equal to the gold one? (math-verify)

The answer is the text in the last `<answer>` tags, else the last `\\boxed{}` (see `extract`).
Gold answers are parsed as LaTeX (`$gold$`); a predicted answer without LaTeX delimiters is parsed
as if boxed (`\\boxed{pred}`), so `\\frac12` inside `<answer>` counts, as it would in a box.

math-verify's own timeouts use `signal.alarm`, which works only in a process's main thread. Here
they are always off, and this module enforces its own: by default each answer is scored in a
worker process of a `DeadlineProcessPool` (in parallel; the budget counts the worker's CPU time,
so a busy machine does not zero right answers; a hang costs one worker, not the run). With
`workers=0` answers are scored in this process, under a wall-clock SIGALRM timer when called from
the main thread and with no time limit from other threads. The timers raise a BaseException, since
math-verify catches every Exception and would carry on. Departure from open-r1's `accuracy_reward`:
a gold answer that math-verify cannot parse is compared as a normalised string instead of skipped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

from r1zero.rewards.base import REWARDS, column, message_text
from r1zero.rewards.extract import final_answer
from r1zero.rewards.match import normalize_answer
from r1zero.rewards.process_pool import BudgetExceeded, raise_budget_exceeded, shared_pool

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that its timeout is off: here that is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def _parse(text: str) -> list:
    from math_verify import parse

    return parse(text, parsing_timeout=None)


def math_answers_equal(prediction: str, gold: str) -> bool:
    """True when math-verify finds `prediction` equal to `gold`. No time limit of its own.

    >>> math_answers_equal("\\\\frac{1}{2}", "0.5"), math_answers_equal("x = 5", "5"), math_answers_equal("4", "5")
    (True, True, False)
    """
    from math_verify import verify

    gold_parsed = _parse(gold if any(d in gold for d in _DELIMITERS) else f"${gold}$")
    if not gold_parsed:
        return normalize_answer(prediction) == normalize_answer(gold)
    has_delimiters = any(d in prediction for d in _DELIMITERS)
    predicted = _parse(prediction if has_delimiters else f"\\boxed{{{prediction}}}")
    if not predicted and not has_delimiters:
        predicted = _parse(prediction)
    return bool(predicted) and verify(gold_parsed, predicted, timeout_seconds=None)


def score_math_answer(prediction: str, gold: str) -> float:
    return 1.0 if math_answers_equal(prediction, gold) else 0.0




def _score_here(prediction: str, gold: str, timeout_s: float) -> float:
    if threading.current_thread() is not threading.main_thread():
        return score_math_answer(prediction, gold)
    previous = signal.signal(signal.SIGALRM, raise_budget_exceeded)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout_s)
        return score_math_answer(prediction, gold)
    except BudgetExceeded:
        log.warning("math reward: an answer timed out after %.1f s; scored 0", timeout_s)
        return 0.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def score_math_answers(pairs: Sequence[tuple[str, str]], workers: int | None = None,
                       timeout_s: float = DEFAULT_TIMEOUT_S) -> list[float]:
    """Scores of (prediction, gold) pairs: in `workers` processes (None = one per core, up to 8),
    or here when `workers` is 0. A pair that times out or fails scores 0.0."""
    workers = default_workers() if workers is None else workers
    if workers == 0 or not pairs:
        return [_score_here(pred, gold, timeout_s) for pred, gold in pairs]
    pool = shared_pool(workers, preload=("math_verify",))
    outcomes = pool.map(score_math_answer, list(pairs), timeout_s)
    for kind, detail in outcomes:
        if kind != "ok":
            log.warning("math reward: an answer scored 0 (%s: %s)", kind, detail)
    return [value if kind == "ok" else 0.0 for kind, value in outcomes]


@REWARDS.register("math")
def math_reward(prompts: Sequence, completions: Sequence, *, workers: int | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S, **columns: Any) -> list[float | None]:
    """1.0 when the final answer equals column `answer` by math-verify, 0.0 if not or if there is no
    final answer, None where `answer` is missing. Options: `workers` (processes; None = one per
    core up to 8; 0 = in this process), `timeout_s` (per answer, default 5).

    >>> math_reward(["Q"] * 4, ["<think>...</think><answer>\\\\frac{1}{2}</answer>", "... \\\\boxed{0.5}",
    ...                         "<answer>1/3</answer>", "no answer"], answer=["1/2"] * 4, workers=0)
    [1.0, 1.0, 0.0, 0.0]
    """
    golds = column(columns, "answer", len(completions))
    results: list[float | None] = [None] * len(completions)
    todo = []
    for i, (completion, gold) in enumerate(zip(completions, golds)):
        if gold is None or str(gold).strip() == "":
            continue
        prediction = final_answer(message_text(completion))
        if prediction is None:
            results[i] = 0.0
        else:
            todo.append((i, (prediction, str(gold))))
    scores = score_math_answers([pair for _, pair in todo], workers, timeout_s)
    for (i, _), score in zip(todo, scores):
        results[i] = score
    return results
