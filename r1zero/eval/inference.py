"""Reasoning at inference time: budget forcing (s1), self-consistency and best-of-n.

A library for `r1zero eval` and the server alike:

- `budget_forced_generate`: s1's budget forcing (Muennighoff et al. 2025). Thinking runs with
  `</think>` as a stop token; a row that closes its thinking before `min_think_tokens` has that
  `</think>` replaced by `wait_text` and continues; a row that reaches `max_think_tokens` without
  closing gets `</think>` and `answer_prefix` appended and goes on to answer. Every row's answer (what it
  writes after its thinking) gets at most `max_answer_tokens` where that is set, as other budget-forcing
  tools cap it: without a cap a model forced to answer early can go on working inside its answer, past
  the budget. Like s1's reference code (vLLM with stop tokens), each round re-reads the prompt so far
  (no KV cache across rounds); rounds are batched across all prompts still thinking. Departures from s1: the forced answer
  starts with the project's `<answer>` tag, not "Final Answer:"; the budget counts every
  completion token before `</think>` (an opening `<think>` and inserted "Wait"s included);
  inserted tokens carry log-prob 0.0, the log-prob of a token the forcing policy emits for sure.
- `majority_vote`: self-consistency (Wang et al. 2023) over extracted answers, grouping equivalent
  answers with math-verify (R1's cons@k). Ties go to the answer that appeared first.
- `best_of_n`: the sample a verifier reward scores highest; ties go to the tied sample whose answer
  has the most votes, then to the earliest.
- `sample_and_choose`: n samples per prompt (budget forcing optional), then one of the above.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from r1zero.rewards.extract import plain_final_answer
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.hf import HFSampler
from r1zero.types import Rollout

THINK_END = "</think>"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LATEX_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")


# ---- budget forcing -------------------------------------------------------------------------------


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of `text` when it is one token, else None."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


@dataclass
class _Row:
    """One prompt's completion while budget forcing builds it."""

    prompt: list[int]  # (P,)
    ids: list[int] = field(default_factory=list)  # (T,) completion so far
    logprobs: list[float] = field(default_factory=list)  # (T,)
    thinking: bool = True  # `</think>` not yet in the completion
    finish: str | None = None  # "stop" | "length" once done

    def add(self, ids: Sequence[int], logprobs: Sequence[float] | None = None) -> None:
        self.ids += list(ids)
        self.logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)


def budget_forced_generate(model, tokenizer, prompt_ids: list[list[int]], params: SamplingParams,
                           min_think_tokens: int = 0, max_think_tokens: int | None = None,
                           wait_text: str = "Wait", *, answer_prefix: str = "<answer>",
                           batch_size: int = 256, sampler=None, max_answer_tokens: int | None = None) -> list[Rollout]:
    """One rollout per prompt, thinking at least `min_think_tokens` and at most `max_think_tokens`
    tokens before `</think>` (both within `params.max_new_tokens`), then answering in at most
    `max_answer_tokens` (None: the rest of `max_new_tokens`). The completion includes every
    inserted `wait_text` and forced `</think>`. `sampler` (default: an HFSampler over `model`) must
    stop on `</think>`, which must be one token."""
    sampler = sampler or HFSampler(model, tokenizer, batch_size)
    end_id = single_token_id(tokenizer, THINK_END)
    if end_id is None:
        raise ValueError(f"budget forcing needs {THINK_END!r} to be one token in this tokenizer")
    wait_ids = tokenizer(wait_text, add_special_tokens=False)["input_ids"]
    if not wait_ids:
        raise ValueError(f"wait_text {wait_text!r} is no tokens; budget forcing needs something to append")
    close_ids = [end_id] + tokenizer(answer_prefix, add_special_tokens=False)["input_ids"]
    rows = [_Row(list(p)) for p in prompt_ids]
    think_params = replace(params, stop=[*params.stop, THINK_END])
    for round_ in range(params.max_new_tokens + 1):  # each round adds >= 1 token to every row in it
        thinking = [r for r in rows if r.finish is None and r.thinking]
        if not thinking:
            break
        limits = [_think_limit(r, params.max_new_tokens, max_think_tokens) for r in thinking]
        outs = iter(_generate_rows([r for r, n in zip(thinking, limits) if n > 0], max(limits), think_params,
                                   round_, sampler))
        for row, limit in zip(thinking, limits):
            out = next(outs) if limit > 0 else None
            _advance_thinking(row, out, limit, end_id, wait_ids, close_ids, params.max_new_tokens,
                              min_think_tokens, max_think_tokens)
    answering = [r for r in rows if r.finish is None]
    limits = [min(params.max_new_tokens - len(r.ids), max_answer_tokens or params.max_new_tokens) for r in answering]
    outs = _generate_rows(answering, max(limits, default=0), params, params.max_new_tokens + 1, sampler)
    for row, limit, out in zip(answering, limits, outs):
        ids, stopped = _clip(out, limit)
        row.add(ids, out.logprobs[: len(ids)])
        row.finish = "stop" if stopped else "length"
    return [Rollout(prompt_ids=r.prompt, completion_ids=r.ids, logprobs=r.logprobs, finish_reason=r.finish,
                    text=tokenizer.decode(r.ids, skip_special_tokens=True)) for r in rows]


def _think_limit(row: _Row, max_new_tokens: int, max_think: int | None) -> int:
    """Tokens the row may still add before its thinking must end (by either budget)."""
    left = max_new_tokens - len(row.ids)
    return left if max_think is None else max(0, min(left, max_think - len(row.ids)))


def _generate_rows(rows: list[_Row], max_new: int, params: SamplingParams, round_: int, sampler) -> list[Rollout]:
    """One batched generate over the rows' prompt + completion so far; a seed per round."""
    if not rows or max_new <= 0:
        return []
    seed = None if params.seed is None else params.seed + 7919 * round_
    return sampler.generate([r.prompt + r.ids for r in rows], 1, replace(params, max_new_tokens=max_new, seed=seed))


def _clip(out: Rollout, limit: int) -> tuple[list[int], bool]:
    """The rollout's ids within the row's own limit, and whether it stopped (on a stop token) there."""
    ids = out.completion_ids[:limit]
    return ids, out.finish_reason == "stop" and len(out.completion_ids) <= limit


def _advance_thinking(row: _Row, out: Rollout | None, limit: int, end_id: int, wait_ids: list[int],
                      close_ids: list[int], max_new_tokens: int, min_think: int, max_think: int | None) -> None:
    ids, stopped = _clip(out, limit) if out is not None else ([], False)
    logprobs = out.logprobs[: len(ids)] if out is not None else []
    if stopped and ids[-1] == end_id:
        row.add(ids[:-1], logprobs[:-1])
        if len(row.ids) < min_think and len(row.ids) + len(wait_ids) < max_new_tokens:
            room = len(wait_ids) if max_think is None else max_think - len(row.ids)
            row.add(wait_ids[:room])  # s1: suppress the end of thinking, append "Wait", think on
        else:
            row.add(ids[-1:], logprobs[-1:])
            row.thinking = False
        return
    row.add(ids, logprobs)
    if stopped:  # EOS or `</answer>` while thinking: the model is done
        row.finish = "stop"
    elif max_think is not None and len(row.ids) >= max_think:
        room = max_new_tokens - len(row.ids)
        row.add(close_ids[:room])  # s1: end the thinking and force the answer
        row.thinking = False
        if room < len(close_ids):
            row.finish = "length"
    else:
        row.finish = "length"


def think_length(completion_ids: Sequence[int], end_id: int | None, text: str = "", tokenizer=None) -> int:
    """Completion tokens before `</think>` (all of them if it never comes). Without a one-token
    `</think>` (end_id None), the text before it is re-tokenised."""
    if end_id is not None:
        ids = list(completion_ids)
        return ids.index(end_id) if end_id in ids else len(ids)
    if THINK_END not in text or tokenizer is None:
        return len(completion_ids)
    return len(tokenizer(text.split(THINK_END)[0], add_special_tokens=False)["input_ids"])


# ---- answer equivalence and voting ----------------------------------------------------------------


def _plain_number(text: str) -> Fraction | None:
    cleaned = text.strip().replace(",", "").rstrip(".")
    return Fraction(cleaned) if _NUMBER.fullmatch(cleaned) else None


class MathEquivalence:
    """`eq(a, b)`: the same string, the same number, or equal by math-verify; each answer is parsed
    once. math-verify runs without its signal-based timeouts (they work only in the main thread)."""

    def __init__(self) -> None:
        self._parsed: dict[str, list] = {}

    def parse(self, text: str) -> list:
        if text not in self._parsed:
            from math_verify import parse

            latex = text if any(d in text for d in _LATEX_DELIMITERS) else f"\\boxed{{{text}}}"
            try:
                self._parsed[text] = parse(latex, parsing_timeout=None) or parse(text, parsing_timeout=None)
            except Exception:  # noqa: BLE001 - an answer math-verify cannot read only matches itself
                self._parsed[text] = []
        return self._parsed[text]

    def __call__(self, a: str, b: str) -> bool:
        if a.strip() == b.strip():
            return True
        na, nb = _plain_number(a), _plain_number(b)
        if na is not None and nb is not None:
            return na == nb
        from math_verify import verify

        pa, pb = self.parse(a), self.parse(b)
        try:
            return bool(pa and pb and verify(pa, pb, timeout_seconds=None))
        except Exception:  # noqa: BLE001
            return False


def group_answers(answers: Sequence[str | None], equivalent: Callable[[str, str], bool] | None = None
                  ) -> list[int | None]:
    """A group index per answer (groups numbered in order of first appearance); None stays None.
    An answer joins the first earlier group whose first answer is equivalent to it.

    >>> group_answers(["4", None, "4.0", "5", "4"])
    [0, None, 0, 1, 0]
    """
    equivalent = equivalent or MathEquivalence()
    heads: list[str] = []
    groups: list[int | None] = []
    for answer in answers:
        if answer is None:
            groups.append(None)
            continue
        found = next((g for g, head in enumerate(heads) if equivalent(head, answer)), None)
        if found is None:
            heads.append(answer)
            found = len(heads) - 1
        groups.append(found)
    return groups


def vote(groups: Sequence[int | None]) -> tuple[int | None, int]:
    """(winning group, its votes): the most votes; a tie goes to the group that appeared first."""
    counts: dict[int, int] = {}
    for g in groups:
        if g is not None:
            counts[g] = counts.get(g, 0) + 1  # dicts keep first-appearance order
    if not counts:
        return None, 0
    best = max(counts.values())
    return next(g for g, c in counts.items() if c == best), best


def majority_vote(answers: Sequence[str | None], equivalent: Callable[[str, str], bool] | None = None
                  ) -> tuple[str | None, int]:
    """Self-consistency: (the most common answer, its votes). Equivalent answers (math-verify by
    default) count together and are represented by the first of them; None answers do not vote;
    a tie goes to the answer that appeared first; no answers at all gives (None, 0).

    >>> majority_vote(["5", "1/2", None, "0.5", "5"])
    ('5', 2)
    """
    groups = group_answers(answers, equivalent)
    winner, votes = vote(groups)
    return (None, 0) if winner is None else (answers[groups.index(winner)], votes)


def choose_best(scores: Sequence[float | None], answers: Sequence[str | None] | None = None,
                equivalent: Callable[[str, str], bool] | None = None) -> int:
    """Index of the highest score (None counts as -inf); among tied scores the sample whose answer has
    the most votes within the tie wins, then the earliest.

    >>> choose_best([0.0, 1.0, 1.0, 1.0], ["1", "2", "3", "3"]), choose_best([None, 0.5])
    (2, 1)
    """
    values = [float("-inf") if s is None else float(s) for s in scores]
    top = [i for i, s in enumerate(values) if s == max(values)]
    if answers is None or len(top) == 1:
        return top[0]
    groups = group_answers([answers[i] for i in top], equivalent)
    winner, _ = vote(groups)
    return top[0] if winner is None else top[groups.index(winner)]


def best_of_n(prompt: Any, completions: Sequence[str], verifier: Callable[..., list], answers: Sequence[str | None]
              | None = None, equivalent: Callable[[str, str], bool] | None = None, **columns: Any
              ) -> tuple[int, list[float | None]]:
    """(index of the chosen completion, verifier scores), by `choose_best`. `verifier` is a reward
    function `f(prompts, completions, **columns)`; `columns` hold one value for this prompt.

    >>> def longer(prompts, completions, **_): return [float(len(c) > 1) for c in completions]
    >>> best_of_n("Q", ["a", "bb", "cc", "dd"], longer, answers=["1", "2", "3", "3"])
    (2, [0.0, 1.0, 1.0, 1.0])
    """
    n = len(completions)
    scores = list(verifier([prompt] * n, list(completions), **{k: [v] * n for k, v in columns.items()}))
    return choose_best(scores, answers, equivalent), scores


# ---- sampling then choosing -----------------------------------------------------------------------


@dataclass
class Choice:
    """The answer chosen for one prompt from its n samples."""

    rollout: Rollout  # the chosen sample
    answer: str | None  # its extracted final answer
    votes: int  # samples whose answer is equivalent to it
    samples: list[Rollout]  # all n samples, in order
    scores: list[float] | None = None  # verifier scores (best_of_n)


def generate_samples(model, tokenizer, prompt_ids: list[list[int]], n: int, params: SamplingParams,
                     min_think_tokens: int = 0, max_think_tokens: int | None = None, wait_text: str = "Wait",
                     batch_size: int = 256, max_answer_tokens: int | None = None) -> list[Rollout]:
    """n rollouts per prompt, prompt-major; budget forcing only when a budget is set."""
    if min_think_tokens <= 0 and max_think_tokens is None and not max_answer_tokens:
        return HFSampler(model, tokenizer, batch_size).generate(prompt_ids, n, params)
    flat = [p for p in prompt_ids for _ in range(n)]
    return budget_forced_generate(model, tokenizer, flat, params, min_think_tokens, max_think_tokens, wait_text,
                                  batch_size=batch_size, max_answer_tokens=max_answer_tokens)


def sample_and_choose(model, tokenizer, prompt_ids: list[list[int]], params: SamplingParams, n: int = 1,
                      strategy: str = "majority", verifier: Callable[..., list] | None = None,
                      columns: list[dict] | None = None, min_think_tokens: int = 0,
                      max_think_tokens: int | None = None, wait_text: str = "Wait",
                      batch_size: int = 256) -> list[Choice]:
    """n samples per prompt, then one chosen per prompt: strategy "majority" (self-consistency) or
    "best_of_n" (needs `verifier`; `columns[i]` are prompt i's extra reward columns)."""
    if strategy not in ("majority", "best_of_n"):
        raise ValueError(f"unknown strategy {strategy!r}; expected majority or best_of_n")
    if strategy == "best_of_n" and verifier is None:
        raise ValueError("strategy best_of_n needs a verifier reward function")
    samples = generate_samples(model, tokenizer, prompt_ids, n, params, min_think_tokens, max_think_tokens,
                               wait_text, batch_size)
    equivalent = MathEquivalence()
    choices = []
    for i, prompt in enumerate(prompt_ids):
        mine = samples[i * n : (i + 1) * n]
        answers = [plain_final_answer(r.text) for r in mine]
        groups = group_answers(answers, equivalent)
        scores = None
        if strategy == "majority":
            winner, _ = vote(groups)
            index = 0 if winner is None else groups.index(winner)
        else:
            text = tokenizer.decode(prompt, skip_special_tokens=True)
            index, scores = best_of_n(text, [r.text for r in mine], verifier, answers, equivalent,
                                      **(columns[i] if columns else {}))
        votes = 0 if groups[index] is None else groups.count(groups[index])
        choices.append(Choice(mine[index], answers[index], votes, mine, scores))
    return choices
