"""Evaluate one model folder on one task as the R1 paper does, item by item.

k samples per question (temperature 0.6, top-p 0.95 by default, the paper's settings), plus one
greedy answer. Per item: the extracted answers, their correctness by the task's answer reward
(`math` for GSM8K / MATH-500 / arithmetic), the vote groups (equivalent answers grouped by
math-verify) and the majority answer. Summary: greedy and sampled pass@1, unbiased pass@k for every
k <= n, cons@k, best-of-n with a verifier reward (optional), format rate, share of completions that
reason, share that are readable (the arithmetic notation's rule, `rewards/readability.py`), mean
length and thinking length in tokens, truncation rate, items/s; how often completions re-check a step
and whether that pays (`recheck_summary`), pass@1 per difficulty. With `hard_problems`,
the stage (eval/stage.py) adds a harder split's figures under `hard/`.

Items are generated shortest prompt first, in chunks of at most `batch_size` sequences and
`max_batch_tokens` padded tokens (one batched generate each, seed `seed + chunk`), so a run is
deterministic for a given seed and batch size; records come back in item order. Budget forcing (s1) is
used when `min_think_tokens` or `max_think_tokens` is set. The best-of-n verifier does not see the
gold answer: with it, best-of-n would be pass@n.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1zero.eval.inference import (
    THINK_END,
    MathEquivalence,
    choose_best,
    group_answers,
    single_token_id,
    think_length,
    vote,
)
from r1zero.eval.metrics import (
    cons_at_k,
    extract_answer,
    has_correction,
    has_recheck,
    pass_at_k,
    pass_at_k_curve,
    reasons,
    vote_ks,
    well_formed,
)
from r1zero.eval.tools import tool_summary
from r1zero.eval.workers import ChunkPool, chunk_generate
from r1zero.rewards.readability import is_readable
from r1zero.rollout.base import SamplingParams
from r1zero.types import Example, Rollout


@dataclass
class EvalOptions:
    """What one evaluation does; `from_config` reads an EvalConfig, missing fields keep these defaults."""

    task: str = "arithmetic"
    split: str = "test"
    problems: int = 200  # items; 0 = the whole split of a dataset task
    samples: int = 8  # k samples per item
    temperature: float = 0.6  # R1 paper
    top_p: float = 0.95  # R1 paper
    top_k: int = 0
    max_new_tokens: int = 64
    batch_size: int = 256  # sequences per generate
    max_batch_tokens: int = 65536  # padded tokens (sequences x (prompt + max_new_tokens)) per generate
    template: str = "plain"  # r1zero.tasks prompt template: plain, r1_zero, chat
    reward: str = ""  # correctness reward; "" = the task's first default reward
    verifier: str = ""  # reward names (comma-separated, summed) for best-of-n; "" = off
    greedy: bool = True  # also one greedy answer per item
    min_think_tokens: int = 0  # budget forcing: append "Wait" when thinking ends earlier
    max_think_tokens: int = 0  # budget forcing: force the answer here; 0 = no limit
    wait_text: str = "Wait"
    max_answer_tokens: int = 0  # budget forcing: the answer after thinking at most this many tokens; 0 = no limit
    task_options: dict = field(default_factory=dict)  # options for r1zero.tasks.get
    progress: bool = True
    hard_problems: int = 0  # arithmetic: a second, harder held-out split, reported under `hard/`
    hard_samples: int = 64
    hard_min_digits: int = 4
    hard_max_digits: int = 5
    device: str = "auto"  # the recipe's device (auto: CUDA when present)
    tools: list = field(default_factory=list)  # multi-turn with these tools, as RL's `rl.tools` (eval/tools.py)
    max_turns: int = 2  # with tools: model turns per completion at most
    processes: int = 1  # worker processes that generate the chunks, one core each (eval/workers.py)

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> EvalOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {name: getattr(cfg, name) for name in names if hasattr(cfg, name)}
        values["task_options"] = {**{k: getattr(cfg, k) for k in ("min_digits", "max_digits", "ops")
                                     if hasattr(cfg, k)}, **values.get("task_options", {})}
        return cls(**{**values, **overrides})

    def hard(self) -> EvalOptions:
        """The options of the hard split: more digits than training mostly sees, more samples."""
        return dataclasses.replace(self, problems=self.hard_problems, samples=self.hard_samples, hard_problems=0,
                                   task_options={**self.task_options, "min_digits": self.hard_min_digits,
                                                 "max_digits": self.hard_max_digits})

    def sampling(self, seed: int | None, greedy: bool = False) -> SamplingParams:
        return SamplingParams(self.max_new_tokens, temperature=0.0 if greedy else self.temperature,
                              top_p=self.top_p, top_k=self.top_k, seed=seed)


def plan_chunks(prompt_lengths: list[int], opts: EvalOptions) -> list[list[int]]:
    """Item indices per generate call, shortest prompts first: at most `batch_size` sequences
    (k per item) and `max_batch_tokens` padded tokens each, so one long prompt does not pad a
    whole batch (MATH-500's prompts run from 19 to 1571 tokens of the tiny tokenizer)."""
    chunks: list[list[int]] = []
    for i in sorted(range(len(prompt_lengths)), key=lambda j: (prompt_lengths[j], j)):
        width = prompt_lengths[i] + opts.max_new_tokens  # the longest so far: lengths ascend
        if chunks and (len(chunks[-1]) + 1) * opts.samples <= max(opts.batch_size, opts.samples) and \
                (len(chunks[-1]) + 1) * opts.samples * width <= opts.max_batch_tokens:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


@dataclass
class ModelEval:
    summary: dict  # the eval.json metrics of one model
    items: list[dict]  # one record per item (the items jsonl)


def load_task_examples(opts: EvalOptions, seed: int) -> tuple[Any, list[Example]]:
    """(task, examples): a generator's held-out set by `seed`, or a dataset split in file order."""
    from r1zero import tasks

    task = tasks.get(opts.task, **accepted_options(opts.task, opts.task_options))
    n = opts.problems if opts.problems > 0 else None
    if not task.finite and n is None:
        n = EvalOptions.problems
    return task, task.examples(opts.split, n=n, seed=None if task.finite else seed)


def accepted_options(spec: str, options: dict) -> dict:
    """The options a registered task's factory takes (the arithmetic ones mean nothing to GSM8K)."""
    from r1zero.tasks import TASKS

    if spec not in TASKS:
        return {}
    params = inspect.signature(TASKS.get(spec)).parameters
    return {k: v for k, v in options.items() if k in params}


def reward_function(names: str):
    """The sum of the named rewards (comma-separated) as one reward function; None scores stay None.

    A reward with a `workers` option (math) scores in this process: a worker pool that is still
    starting on a busy machine times out and scores right answers 0, which a benchmark cannot have.
    """
    try:
        from r1zero.rewards import get
    except ImportError:  # the rewards package without its front door yet: use the registry directly
        from r1zero.rewards.base import REWARDS

        for module in ("math_answer", "match", "format"):
            importlib.import_module(f"r1zero.rewards.{module}")
        get = REWARDS.get
    importlib.import_module("math_verify")  # not on the clock of the first answer's timer
    fns = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        fn = get(name)
        fns.append(functools.partial(fn, workers=0) if "workers" in inspect.signature(fn).parameters else fn)

    def summed(prompts, completions, **columns):
        per_fn = [fn(prompts, completions, **columns) for fn in fns]
        return [None if all(s is None for s in col) else sum(s for s in col if s is not None)
                for col in zip(*per_fn)]

    return summed


def reward_columns(examples: list[Example], repeat: int, with_answer: bool = True) -> dict[str, list]:
    """Reward keyword columns (gold `answer` and every meta key), each example repeated `repeat` times."""
    keys = sorted({k for e in examples for k in e.meta} - {"answer"})
    columns = {k: [e.meta.get(k) for e in examples for _ in range(repeat)] for k in keys}
    if with_answer:
        columns["answer"] = [e.answer for e in examples for _ in range(repeat)]
    return columns


class Progress:
    """A rich progress bar over items, with items/s; silent when `enabled` is False."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TextColumn("{task.fields[rate]}"))
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, rate="")
        self.t0, self.done = time.perf_counter(), 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=n, rate=f"{rate:.1f} items/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def evaluate_model(model_dir: str | Path, cfg: Any, seed: int, examples: list[Example] | None = None,
                   task: Any = None, pool: ChunkPool | None = None) -> ModelEval:
    """Evaluate `model_dir` with the options in `cfg` (an EvalConfig or EvalOptions) on `examples`
    (default: the task's held-out items); the chunks are generated by `pool`'s workers when given."""
    from r1zero.models.io import load_model, load_tokenizer
    from r1zero.tasks import render_prompt

    opts = cfg if isinstance(cfg, EvalOptions) else EvalOptions.from_config(cfg)
    if examples is None:
        task, examples = load_task_examples(opts, seed)
    reward_name = opts.reward or (task.rewards[0] if task is not None else "math")
    tokenizer = load_tokenizer(model_dir)
    prompts = [render_prompt(e, opts.template, tokenizer) for e in examples]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    scorer = reward_function(reward_name)
    verifier = reward_function(opts.verifier) if opts.verifier else None
    end_id, equivalent = single_token_id(tokenizer, THINK_END), MathEquivalence()
    k = opts.samples
    budget = {"min_think_tokens": opts.min_think_tokens, "max_think_tokens": opts.max_think_tokens or None,
              "wait_text": opts.wait_text, "batch_size": opts.batch_size,
              "max_answer_tokens": opts.max_answer_tokens or None}
    spans = plan_chunks([len(p) for p in prompt_ids], opts)
    chunks = [([prompt_ids[i] for i in span], opts.sampling(seed + c),
               opts.sampling(seed + c, greedy=True) if opts.greedy else None) for c, span in enumerate(spans)]
    if pool is None:
        model = load_model(model_dir, device=opts.device)
        outputs = (chunk_generate(model, tokenizer, ids, k, params, greedy, budget, opts.tools, opts.max_turns)
                   for ids, params, greedy in chunks)
    else:
        outputs = pool.generate(model_dir, opts.device, chunks, k, budget, opts.tools, opts.max_turns)
    items: list[dict] = []
    progress = Progress(len(examples), f"eval {Path(model_dir).name}", opts.progress)
    t0 = time.perf_counter()
    for span, (sampled, greedy) in zip(spans, outputs):
        chunk = Chunk([examples[i] for i in span], [prompts[i] for i in span], sampled, greedy, k)
        items += chunk.score(scorer, verifier, equivalent, lambda r: think_length(
            r.completion_ids, end_id, r.text, tokenizer), span)
        progress.advance(len(span))
    progress.close()
    items.sort(key=lambda it: it["index"])
    seconds = time.perf_counter() - t0
    summary = summarize(items, k, opts.greedy, bool(verifier))
    if opts.tools:
        summary.update(tool_summary(items))
    summary = {"model": str(model_dir), "task": opts.task, "split": opts.split, "template": opts.template,
               "reward": reward_name, **summary, "seconds": seconds, "items_per_s": len(items) / max(seconds, 1e-9),
               "examples": [{"prompt": it["prompt"], "answer": it["gold"], "greedy": (it.get("greedy") or {}).get(
                   "text"), "sample": it["completions"][0]} for it in items[:5]]}
    return ModelEval(summary, items)


@dataclass
class Chunk:
    """The samples of one chunk of items, scored together (one reward call per chunk)."""

    examples: list[Example]
    prompts: list[str]
    sampled: list[Rollout]  # prompt-major, k per item
    greedy: list[Rollout] | None  # one per item
    k: int

    def score(self, scorer, verifier, equivalent, think_len, indices: list[int]) -> list[dict]:
        k, texts = self.k, [r.text for r in self.sampled]
        prompts = [p for p in self.prompts for _ in range(k)]
        correct = scorer(prompts, texts, **reward_columns(self.examples, k))
        checks = (verifier(prompts, texts, **reward_columns(self.examples, k, with_answer=False))
                  if verifier else None)
        greedy_correct = (scorer(self.prompts, [r.text for r in self.greedy], **reward_columns(self.examples, 1))
                          if self.greedy else None)
        items = []
        for i, ex in enumerate(self.examples):
            mine = slice(i * k, (i + 1) * k)
            item = item_record(ex, self.prompts[i], self.sampled[mine], correct[mine], equivalent, think_len)
            item["index"] = indices[i]
            if checks is not None:
                best = choose_best(checks[mine], item["answers"], equivalent)
                item["best_of_n"] = {"index": best, "scores": checks[mine], "correct": item["correct"][best]}
            if greedy_correct is not None:
                g = self.greedy[i]
                item["greedy"] = {"answer": extract_answer(g.text), "correct": bool(greedy_correct[i]),
                                  "text": g.text}
            items.append(item)
        return items


def item_record(ex: Example, prompt: str, samples: list[Rollout], scores: list, equivalent, think_len) -> dict:
    """One item's jsonl record: answers, correctness, votes, majority answer, lengths."""
    answers = [extract_answer(r.text) for r in samples]
    correct = [bool(s) for s in scores]  # a None score (reward not applicable) counts as wrong
    groups = group_answers(answers, equivalent)
    winner, votes = vote(groups)
    tally = {answers[groups.index(g)]: groups.count(g) for g in dict.fromkeys(x for x in groups if x is not None)}
    k = len(samples)
    return {
        "id": ex.meta.get("id"), "difficulty": ex.meta.get("difficulty"), "prompt": prompt, "gold": ex.answer,
        "answers": answers, "correct": correct, "scores": scores, "votes": tally,
        "cons_answer": None if winner is None else answers[groups.index(winner)], "cons_votes": votes,
        "cons": {str(j): cons_at_k(groups, correct, j) for j in vote_ks(k)},
        "pass@1": sum(correct) / k, f"pass@{k}": pass_at_k(k, sum(correct), k),
        "formatted": [well_formed(r.text) for r in samples], "reasons": [reasons(r.text) for r in samples],
        "readable": [is_readable(r.text) for r in samples],
        "rechecks": [has_recheck(r.text) for r in samples], "corrections": [has_correction(r.text) for r in samples],
        "lengths": [len(r.completion_ids) for r in samples], "think_lengths": [think_len(r) for r in samples],
        "finish": [r.finish_reason for r in samples], "completions": [r.text for r in samples],
    }


def summarize(items: list[dict], k: int, greedy: bool, best_of: bool) -> dict:
    """The eval.json metrics over all items (means; pass@k for every k <= n; cons@k at powers of two)."""
    n_items, n_samples = max(1, len(items)), max(1, len(items) * k)

    def mean_over_samples(key: str) -> float:
        return sum(sum(map(float, it[key])) for it in items) / n_samples

    curve = pass_at_k_curve(k, [sum(it["correct"]) for it in items])
    out: dict[str, Any] = {"problems": len(items), "samples": k}
    if greedy:
        out["greedy_pass@1"] = sum(it["greedy"]["correct"] for it in items) / n_items
    out["sampled_pass@1"] = curve[1]
    out.update({f"pass@{j}": v for j, v in curve.items()})
    out.update({f"cons@{j}": sum(it["cons"][str(j)] for it in items) / n_items for j in vote_ks(k)})
    if best_of:
        out[f"bon@{k}"] = sum(it["best_of_n"]["correct"] for it in items) / n_items
    out["format_rate"] = mean_over_samples("formatted")
    out["reasoning_share"] = mean_over_samples("reasons")
    out["readability_share"] = mean_over_samples("readable")  # the arithmetic notation's rule (rewards/readability.py)
    out["answer_rate"] = sum(sum(a is not None for a in it["answers"]) for it in items) / n_samples
    out["mean_length"] = mean_over_samples("lengths")
    out["mean_think_length"] = mean_over_samples("think_lengths")
    out["truncation_rate"] = sum(it["finish"].count("length") for it in items) / n_samples
    out.update(recheck_summary(items))
    return out


def recheck_summary(items: list[dict]) -> dict:
    """Whether re-checks happen and pay: their share, the share that corrected a step, the accuracy of
    completions with and without one, the accuracy of those that corrected (`faithful_corrections`:
    a correction that ends in a wrong answer caught nothing real), and pass@1 per difficulty."""
    samples = [(c, r, x) for it in items for c, r, x in zip(it["correct"], it["rechecks"], it["corrections"])]
    n = max(1, len(samples))

    def accuracy(rows) -> float | None:
        rows = list(rows)
        return sum(c for c, _, _ in rows) / len(rows) if rows else None

    out = {"recheck_share": sum(r for _, r, _ in samples) / n, "correction_share": sum(x for _, _, x in samples) / n,
           "faithful_corrections": accuracy(s for s in samples if s[2]),
           "accuracy_with_recheck": accuracy(s for s in samples if s[1]),
           "accuracy_without_recheck": accuracy(s for s in samples if not s[1])}
    for d in sorted({it["difficulty"] for it in items if isinstance(it.get("difficulty"), int)}):
        mine = [c for it in items if it.get("difficulty") == d for c in it["correct"]]
        out[f"accuracy/d{d}"] = sum(mine) / len(mine)
    return out
