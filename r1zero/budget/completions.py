"""What a model writes after a question, before it has written anything: the tokens of its completions,
for `workload.py` to cost its generate calls and rl's updates by.

- a model writes as the corpus it was pretrained on writes after a question (the question-answer
  documents' tokens after `=`, eos included; `corpus_written`), and so does a model trained from it by
  sft, or by sft on what such a model wrote;
- rl on the answer's correctness ends writing the corpus's worked form: where the corpus answers a
  question both briefly and by working it out, the longer of the two (`worked_form`); over the stage
  its completions move from the mix it started with to that form (`ramp`);
- under budget forcing a forced answer is the answer alone, as the corpus writes answers, unless the
  budget is shorter than one column of working: then the model works on inside its answer
  (`forced_lengths`).
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from typing import NamedTuple

MIN_DIGIT_SAMPLE = 20  # corpus documents of a digit count needed to take their lengths apart
# Corpus documents read for the lengths a model writes: 4,096 take 0.4 s and hold ~100 of the demo's 4-digit
# problems (5% of its questions), of which ~6 worked ones; 4 batches held one.
LENGTH_SAMPLE_DOCUMENTS = 4096


class Written(NamedTuple):
    """What a model writes after a question, as a corpus document it learnt from writes it."""

    digits: int  # the problem's: its larger operand's (0 where the text has no number)
    tokens: int  # after `=`, eos included
    answer: int  # after `<answer>`, eos included: the answer, `</answer>`, eos


def corpus_written(cfg, tokenizer, seed: int) -> list[Written]:
    """What a model pretrained on `cfg`'s corpus writes after a question: the question-answer documents (those
    with `<answer>`) of batches spread over the run, LENGTH_SAMPLE_DOCUMENTS documents in all."""
    from r1zero.train.corpus import corpus_batch, lm_batch

    batches = min(cfg.steps, math.ceil(LENGTH_SAMPLE_DOCUMENTS / cfg.batch_size))
    picks = sorted({1 + i * (cfg.steps - 1) // max(batches - 1, 1) for i in range(batches)})
    texts = [t for step in picks for t in corpus_batch(cfg, seed, step) if "<answer>" in t and "=" in t]
    if not texts:
        return []
    lengths = (lm_batch(tokenizer, texts, loss_on_prompt=False)["labels"] != -100).sum(-1).tolist()
    answers = [len(tokenizer(t.split("<answer>", 1)[1], add_special_tokens=False)["input_ids"]) + 1  # + eos
               for t in texts]
    digits = [max(map(len, re.findall(r"\d+", t.split("=", 1)[0])), default=0) for t in texts]
    return [Written(*row) for row in zip(digits, lengths, answers)]


def longer_form(lengths: list[int]) -> int | None:
    """The shortest length of the longer of two forms among `lengths`, or None where they are one form.

    The two: either side of the widest jump between the sorted lengths (as a ratio); they are two forms,
    not one form's spread, where the jump at least doubles the length (an answer, or a guess, against
    the working that gives it: 17 to 43 tokens and more in the demo's corpus, 8 to 26 in tiny-r1's).

    >>> longer_form([15, 16, 17, 15, 60, 71]), longer_form([7, 8, 27, 28, 41, 50]), longer_form([27, 41, 50])
    (60, 27, None)
    """
    values = sorted(set(lengths))
    jumps = [(b / max(a, 1), b) for a, b in itertools.pairwise(values)]
    ratio, cut = max(jumps, default=(0.0, None))
    return cut if ratio >= 2 else None


def worked_form(written: list[Written]) -> list[Written]:
    """What a model that wrote `written` writes once rl on the answer's correctness has run its course: per
    digit count, the longer of the corpus's two forms (`longer_form`), as many as the digit count had.

    Why: the corpora answer a question either briefly (a guess, a direct answer) or by working it out,
    and the reward is for a right answer, which the working gives. Seen in both recipes: the demo's rl
    took verified answers from 7% to 85-97% of eval completions (/tmp/runs/U0, 3-5x as long), tiny-r1's
    took direct answers from 13% to under 1% (seed 1). A digit count with one form keeps it."""
    out = []
    for d in sorted({w.digits for w in written}):
        mine = [w for w in written if w.digits == d]
        cut = longer_form([w.tokens for w in mine])
        worked = [w for w in mine if cut is None or w.tokens >= cut]
        out += [worked[i % len(worked)] for i in range(len(mine))]
    return out


def ramp(start: list[Written], end: list[Written]) -> list[Written]:
    """An rl stage's completions, which move from `start` (its model's) to `end` (`worked_form`) over its
    steps: as many of each, the mean of a straight line between them. The line is an assumption: the
    demo's `response_length` rose about steadily over its 120 steps, 17 to 85 tokens (/tmp/runs/U0), though
    its curriculum's harder problems took part of that rise."""
    return start + end if start != end else list(start)


def column_tokens(written: list[Written]) -> float | None:
    """Tokens a column of working takes: the slope of the worked form's mean length in the digits (None
    with fewer than two digit counts of MIN_DIGIT_SAMPLE documents)."""
    means = {d: statistics.mean(n) for d in {w.digits for w in written}
             if len(n := [w.tokens for w in written if w.digits == d]) >= MIN_DIGIT_SAMPLE}
    if len(means) < 2:
        return None
    return statistics.linear_regression(list(means), list(means.values())).slope


class Forced(NamedTuple):
    """A budget-forced generate's rows: their lengths in its two calls, and how many work inside the answer."""

    thinking: tuple[int, ...] = ()
    answering: tuple[int, ...] = ()
    working_share: float = 0.0  # rows whose answer carries the rest of their working


def forced_lengths(written: list[Written], think: int, cap: int = 0) -> Forced:
    """The rows of a budget-forced generate (`max_think_tokens` = `think`, `max_answer_tokens` = `cap`,
    `inference.budget_forced_generate`) by a model that writes `written`.

    A row whose thinking (its tokens before `</think>`) is shorter stops at its `</think>`, then writes
    `<answer>` and its answer. A row cut at `think` gets `</think><answer>` and answers as its corpus
    answers, its answer alone: what its working has reached. Unless the budget is under one column of
    working (`column_tokens`): its working has reached nothing, the corpus never answers from there, and
    what a model does then is its own: it answers anyway, or works on inside its answer to the end of its
    usual completion. The plan, not knowing, counts each as often. Seen in tiny-r1 (its first
    column takes 11-15 tokens, `<think>` included; the plan's column is 15.6): forced at 16, 24 and 32
    tokens, both seeds' models wrote their answer alone (5-8 tokens more); forced at 8, 70% of seed 1's
    rows worked on (/tmp/h22/r1s1, 26 tokens more on average), 3% of seed 0's (/tmp/h21/r1s0). A `cap`
    (0: none) cuts every answer at that many tokens, a working one too, which then has no `</answer>`: no
    answer is extracted and math-verify has nothing to parse (seed 1 at 8 tokens with a cap of 12: 59% of
    rows cut, 2.6 s of CPU like seed 0's, /tmp/runs/R1M)."""
    column = column_tokens(worked_form(written))
    thinking, answering, lost = [], [], 0  # answering: two per row, its two ways (mostly the same)
    for w in written:
        thought = w.tokens - w.answer - 2  # `</think><answer>` before the answer
        if thought < think:
            thinking.append(thought + 1)  # the call stops on its `</think>`
            answering += [w.answer + 1] * 2
        elif column and think < column:
            thinking.append(think)
            answering += [w.tokens - think, w.answer]
            lost += not cap or w.tokens - think <= cap  # cut by the cap: no `</answer>`, nothing to verify
        else:
            thinking.append(think)
            answering += [w.answer] * 2
    if cap:
        answering = [min(n, cap) for n in answering]
    return Forced(tuple(thinking), tuple(answering), lost / 2 / max(len(written), 1))
