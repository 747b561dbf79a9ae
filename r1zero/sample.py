"""Stage `sample`: rejection sampling, the way R1 builds its SFT data (R1 paper, sec. 2.3.3).

The stage's model writes k generations per prompt; each is scored by rule-based rewards and is
*verified* when its weighted total reaches `min_reward`. Verified generations then go through the
`filters`, in the order given (R1 drops chains of thought with mixed languages, long paragraphs and
code blocks; here `format`, `repetition`, `language`, `reasoning`, `longest`), duplicates are dropped, and at most
`max_per_prompt` per prompt are kept, in sampling order. Every drop is charged to its first reason.

Writes, in the stage folder:
- data.jsonl: one row per kept generation: `messages` (the question as a user turn, the generation
  as the assistant turn), the raw `prompt` the model continued and the `completion` it wrote (what
  `sft` trains on), `answer`, `meta`, `reward` and per-reward `rewards`, `finish_reason`.
- stats.json: prompts, generations, verified and kept counts and rates, overall and per task and
  difficulty, drops per reason, and timing.
- budget.json: tokens, FLOPs, seconds and peak memory of the stage (r1zero.budget).

Departures from R1: R1 also keeps non-verifiable data judged by DeepSeek-V3 and adds non-reasoning
data; here every kept sample is verified by rules. An empty `rewards` means the task's first default
reward alone (its correctness check, e.g. `math`): summed with `format`, a wrong answer in the right
format would reach `min_reward` 1; the format is the `format` filter's job. Prompts of a generated
task skip its first `held_out` test problems (what `eval` scores, as `rl` does), so a model trained
on the data is evaluated on problems it never saw.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from r1zero import rewards as R
from r1zero import tasks
from r1zero.budget import StageMeter
from r1zero.errors import UserError
from r1zero.registry import Registry
from r1zero.rewards.base import REWARDS, option_names
from r1zero.rewards.extract import reasoning
from r1zero.rewards.language import target_language_share
from r1zero.rollout.base import SamplingParams
from r1zero.types import Example, Rollout

REWARD_TIMEOUT_S = 30.0


@dataclass
class Candidate:
    """One generation for one prompt, with its scores and, once selected, why it was dropped."""

    example: Example
    prompt: str  # the rendered prompt text the model continued
    rollout: Rollout
    rewards: dict[str, float | None] = field(default_factory=dict)  # reward name -> score
    reward: float = 0.0  # weighted total
    dropped: str = ""  # "" = kept; else the first reason: unverified, a filter's name, duplicate, per_prompt

    @property
    def text(self) -> str:
        return self.rollout.text


# ---- filters: f(one prompt's surviving candidates) -> keep flags -------------------------------------

GroupFilter = Callable[[list[Candidate]], list[bool]]
FILTERS: Registry[GroupFilter] = Registry("sample filter")

_UNIT = re.compile(r"[^\s;]+")  # words, or the `;`-separated steps of the arithmetic traces
_LOOP = re.compile(r"(.{4,64}?)\1{3,}", re.DOTALL)  # a piece of 4+ characters 4 times in a row


def is_repetitive(text: str, n: int = 4, max_repeat_share: float = 0.3) -> bool:
    """Whether a completion loops: over `max_repeat_share` of its n-grams of words (or `;` steps)
    are repeats, or a piece of 4 or more characters occurs 4 times in a row.

    >>> is_repetitive("<think>3+9+0=12>2;2+5+1=8>82</think><answer>82</answer>")
    False
    >>> is_repetitive("<think>1+1=2;1+1=2;1+1=2;1+1=2;1+1=2;1+1=2</think>"), is_repetitive("7" * 40)
    (True, True)
    """
    units = _UNIT.findall(text)
    grams = [tuple(units[i: i + n]) for i in range(len(units) - n + 1)]
    if grams and 1 - len(set(grams)) / len(grams) > max_repeat_share:
        return True
    return _LOOP.search(text) is not None


def mixes_languages(text: str, target: str = "en") -> bool:
    """Whether the reasoning has words both in and out of the target script (no words: no mix).

    >>> mixes_languages("<think>add 3 and 4</think>"), mixes_languages("<think>add 因为</think>")
    (False, True)
    """
    return 0.0 < target_language_share(reasoning(text), target) < 1.0


@FILTERS.register("format")
def format_filter(group: list[Candidate]) -> list[bool]:
    """Keep `<think>...</think><answer>...</answer>` exactly (the strict `format` reward scores 1)."""
    return [s == 1.0 for s in R.get("format")([c.prompt for c in group], [c.text for c in group])]


@FILTERS.register("repetition")
def repetition_filter(group: list[Candidate]) -> list[bool]:
    return [not is_repetitive(c.text) for c in group]


@FILTERS.register("language")
def language_filter(group: list[Candidate]) -> list[bool]:
    """R1's language-mixing filter, with the `language` reward's script check (English target)."""
    return [not mixes_languages(c.text) for c in group]


@FILTERS.register("reasoning")
def reasoning_filter(group: list[Candidate]) -> list[bool]:
    """Keep completions that work the problem out: a non-empty `<think>` block (no bare answers)."""
    from r1zero.eval.metrics import reasons

    return [reasons(c.text) for c in group]


@FILTERS.register("longest")
def longest_filter(group: list[Candidate]) -> list[bool]:
    """Drop the longest survivors (all of that length) when a shorter one exists: toward concise traces."""
    lengths = [len(c.rollout.completion_ids) for c in group]
    return [n < max(lengths) or n == min(lengths) for n in lengths]


def select(groups: list[list[Candidate]], cfg) -> None:
    """Set `dropped` on every candidate: unverified, then each filter, then duplicates, then the cap."""
    filters = [(name, FILTERS.get(name)) for name in cfg.filters]  # unknown names fail before any work
    seen: set[tuple[str, str]] = set()
    for group in groups:
        for c in group:
            if c.reward < cfg.min_reward:
                c.dropped = "unverified"
        for name, keep_fn in filters:
            live = [c for c in group if not c.dropped]
            for c, keep in zip(live, keep_fn(live) if live else []):
                c.dropped = c.dropped or ("" if keep else name)
        kept = 0
        for c in (c for c in group if not c.dropped):
            key = (c.prompt, c.text.strip())
            if cfg.dedup and key in seen:
                c.dropped = "duplicate"
            elif 0 < cfg.max_per_prompt <= kept:
                c.dropped = "per_prompt"
            else:
                seen.add(key)
                kept += 1


# ---- prompts, generation, scoring ------------------------------------------------------------------


def draw_prompts(task, n: int, seed: int, stage_id: str, held_out: int) -> list[Example]:
    """`n` distinct training prompts, a pure function of (seed, stage id); a generated task's first
    `held_out` test problems are skipped. A dataset task without a train split uses its default one."""
    rng = random.Random(f"sample-{seed}-{stage_id}")
    if task.finite:
        split = "train" if not task.splits or "train" in task.splits else task.splits[0]
        rows = task.examples(split)
        return rng.sample(rows, min(n, len(rows)))
    skip = {str(e.prompt) for e in task.examples("test", n=held_out, seed=seed)} if held_out else set()
    out, seen = [], set(skip)
    for _ in range(50 * n + 100):  # a small problem space may hold fewer than n
        example = task.sample(rng, split="train")
        if str(example.prompt) not in seen:
            seen.add(str(example.prompt))
            out.append(example)
            if len(out) == n:
                break
    return out


def reward_fn(name: str):
    """A registered reward (scored in this process, as eval does: a worker pool still starting on a
    busy machine would time out and score right answers 0), or `module:function`."""
    fn = R.reward_ref(name)
    if not isinstance(fn, str):
        return fn
    return R.get(name, workers=0) if "workers" in option_names(REWARDS.get(name)) else R.get(name)


def score(candidates: list[Candidate], reward_specs: dict[str, float],
          timeout_s: float = REWARD_TIMEOUT_S) -> dict:
    """Fill each candidate's per-reward scores (None counted as 0, as in the total) and weighted total;
    returns {"reward/<name>": mean, "reward/<name>/errors": count}."""
    from r1zero.eval.evaluate import reward_columns

    prompts, texts = [c.prompt for c in candidates], [c.text for c in candidates]
    columns = reward_columns([c.example for c in candidates], 1)
    columns["completion_ids"] = [c.rollout.completion_ids for c in candidates]
    means = {}
    for name, weight in reward_specs.items():
        scores, mean, errors = R.combine([(reward_fn(name), 1.0)], prompts, texts, columns, timeout_s)
        means[f"reward/{name}"] = next(iter(mean.values()))
        means[f"reward/{name}/errors"] = next(iter(errors.values()))
        for c, s in zip(candidates, scores):
            c.rewards[name] = s
            c.reward += weight * s
    return means


def generate_candidates(sampler, tokenizer, examples: list[Example], cfg, seed: int,
                        on_chunk: Callable[[int], None] | None = None) -> list[list[Candidate]]:
    """k generations per prompt, in chunks of about `sampler.batch_size` sequences, each seeded."""
    prompts = [tasks.render_prompt(e, cfg.template, tokenizer) for e in examples]
    params = SamplingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p)
    per_chunk = max(1, getattr(sampler, "batch_size", 256) // cfg.samples)
    groups: list[list[Candidate]] = []
    for c, start in enumerate(range(0, len(examples), per_chunk)):
        chunk = range(start, min(start + per_chunk, len(examples)))
        ids = [tokenizer(prompts[i], add_special_tokens=False)["input_ids"] for i in chunk]
        rollouts = sampler.generate(ids, cfg.samples, replace(params, seed=seed * 1_000_003 + c))
        for j, i in enumerate(chunk):
            groups.append([Candidate(examples[i], prompts[i], r)
                           for r in rollouts[j * cfg.samples: (j + 1) * cfg.samples]])
        if on_chunk:
            on_chunk(len(chunk))
    return groups


# ---- outputs ---------------------------------------------------------------------------------------


def dataset_row(c: Candidate) -> dict:
    question = list(c.example.prompt) if isinstance(c.example.prompt, list) else [
        {"role": "user", "content": c.example.prompt}]
    return {"messages": question + [{"role": "assistant", "content": c.text}], "prompt": c.prompt,
            "completion": c.text, "answer": c.example.answer, "meta": c.example.meta, "reward": c.reward,
            "rewards": c.rewards, "finish_reason": c.rollout.finish_reason,
            "completion_tokens": len(c.rollout.completion_ids)}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with tmp.open("w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    os.replace(tmp, path)


def counts(group_list: list[list[Candidate]]) -> dict:
    cands = [c for g in group_list for c in g]
    n = max(len(cands), 1)
    kept = sum(not c.dropped for c in cands)
    verified = sum(c.dropped != "unverified" for c in cands)
    yielded = sum(any(not c.dropped for c in g) for g in group_list)
    return {"prompts": len(group_list), "generations": len(cands), "verified": verified, "kept": kept,
            "verified_rate": verified / n, "kept_rate": kept / n,
            "prompt_yield": yielded / max(len(group_list), 1)}


def statistics(groups: list[list[Candidate]], reward_means: dict, seconds: dict) -> dict:
    """Overall and per `task/difficulty` counts, drops per reason, reward means, timing."""
    by_key: dict[str, list[list[Candidate]]] = {}
    for g in groups:
        meta = g[0].example.meta
        key = str(meta.get("task", "task")) + (f"/{meta['difficulty']}" if "difficulty" in meta else "")
        by_key.setdefault(key, []).append(g)
    dropped: dict[str, int] = {}
    for c in (c for g in groups for c in g if c.dropped):
        dropped[c.dropped] = dropped.get(c.dropped, 0) + 1
    return {**counts(groups), "dropped": dropped, **reward_means,
            "by_task": {k: counts(v) for k, v in sorted(by_key.items())}, "seconds": seconds}


def print_statistics(stats: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption="verified and kept rates per generation; yield: prompts with one kept")
    for col in ("task", "prompts", "gens", "verified", "kept", "kept rate", "yield"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for key, s in [*stats["by_task"].items(), ("all", stats)]:
        table.add_row(key, str(s["prompts"]), str(s["generations"]), f"{s['verified_rate']:.3f}", str(s["kept"]),
                      f"{s['kept_rate']:.3f}", f"{s['prompt_yield']:.3f}")
    Console().print(table)


# ---- the stage -------------------------------------------------------------------------------------


def run_sample(cfg, ctx) -> None:
    import torch

    from r1zero.models.io import load_model, load_tokenizer
    from r1zero.rollout.hf import HFSampler
    from r1zero.train.logs import progress_bar

    if cfg.samples < 1 or cfg.prompts < 1:
        raise UserError(f"{ctx.stage_id}: prompts and samples must be >= 1, got {cfg.prompts} and {cfg.samples}")
    for name in cfg.filters:
        FILTERS.get(name)
    torch.manual_seed(ctx.seed)
    task = tasks.get(cfg.task, **cfg.task_options)
    reward_specs = dict(cfg.rewards) or {task.rewards[0]: 1.0}
    examples = draw_prompts(task, cfg.prompts, ctx.seed, ctx.stage_id, cfg.held_out)
    model, tokenizer = load_model(ctx.model, device=ctx.device), load_tokenizer(ctx.model)
    meter = StageMeter(model.config, stage=ctx.stage_id)
    t0 = time.perf_counter()
    with progress_bar("sample") as bar, meter.phase("generation"):
        progress = bar.add_task("sample", total=len(examples), info="")
        groups = generate_candidates(HFSampler(model, tokenizer), tokenizer, examples, cfg, ctx.seed,
                                     lambda n: bar.update(progress, advance=n))
    t1 = time.perf_counter()
    with meter.phase("scoring"):
        reward_means = score([c for g in groups for c in g], reward_specs)
        select(groups, cfg)
    t2 = time.perf_counter()
    meter.add_sequences([len(c.rollout.prompt_ids) + len(c.rollout.completion_ids) for g in groups for c in g])
    n_tokens = sum(len(c.rollout.completion_ids) for g in groups for c in g)
    seconds = {"generation": round(t1 - t0, 2), "scoring": round(t2 - t1, 2),
               "tokens_per_s": round(n_tokens / max(t1 - t0, 1e-9), 1)}
    stats = statistics(groups, reward_means, seconds)
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(ctx.stage_dir / "data.jsonl", [dataset_row(c) for g in groups for c in g if not c.dropped])
    (ctx.stage_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    print_statistics(stats, f"{ctx.stage_id}: rejection sampling ({cfg.samples} per prompt, "
                            f"rewards {reward_specs}, min {cfg.min_reward})")
    print(f"kept {stats['kept']} of {stats['generations']} generations; dropped {stats['dropped']}; "
          f"wrote {ctx.stage_dir / 'data.jsonl'}")
    meter.write(ctx.stage_dir)
