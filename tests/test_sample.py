"""Rejection sampling: each generation is dropped for its first reason, every kept one re-scores as
verified, and the stage writes a chat dataset plus statistics without touching evaluation problems."""

import json

import pytest

from r1zero import rewards as R
from r1zero import tasks
from r1zero.config import SampleConfig
from r1zero.errors import UserError
from r1zero.models.io import load_tokenizer
from r1zero.sample import (
    Candidate,
    dataset_row,
    generate_candidates,
    is_repetitive,
    longest_filter,
    run_sample,
    score,
    select,
)
from r1zero.stages import StageContext
from r1zero.tasks.arithmetic import Problem, solution_text
from r1zero.types import Example, Rollout

# What the scripted sampler writes for each prompt, and the reason each is dropped with
# filters [format, repetition, longest] and one kept per prompt.
SCRIPT = ["worked", "slipped", "no_think", "loop", "worked", "direct"]
DROPPED = ["longest", "unverified", "format", "repetition", "longest", ""]


def completion(p: Problem, kind: str) -> str:
    return {"worked": solution_text(p, "worked"), "slipped": solution_text(p, "worked", slip_at=0),
            "no_think": f"<answer>{p.answer}</answer>", "direct": solution_text(p, "direct"),
            "loop": "<think>" + "1+1+0=2>2;" * 8 + f"</think><answer>{p.answer}</answer>"}[kind]


class ScriptedSampler:
    """Stands in for a model: answers each `a op b=` prompt with the completions of SCRIPT."""

    batch_size = 12

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def generate(self, prompt_ids, n, params):
        out = []
        for ids in prompt_ids:
            text = self.tok.decode(ids)
            op = next(c for c in "+-*" if c in text[1:])
            a, b = text.rstrip("=").split(op, 1)
            p = Problem(int(a), op, int(b))
            for kind in (SCRIPT * n)[:n]:
                done = completion(p, kind)
                cids = self.tok(done, add_special_tokens=False)["input_ids"]
                out.append(Rollout(list(ids), cids, [0.0] * len(cids), "stop", done))
        return out


def scripted_groups(tokenizer, **cfg_overrides):
    cfg = SampleConfig(samples=len(SCRIPT), **cfg_overrides)
    task = tasks.get("arithmetic")
    examples = task.examples("train", n=5, seed=1)
    groups = generate_candidates(ScriptedSampler(tokenizer), tokenizer, examples, cfg, seed=0)
    score([c for g in groups for c in g], dict(cfg.rewards) or {task.rewards[0]: 1.0})
    select(groups, cfg)
    return groups


def test_each_generation_is_dropped_for_its_first_reason(tiny_model):
    groups = scripted_groups(load_tokenizer(tiny_model), filters=["format", "repetition", "longest"])
    assert len(groups) == 5  # in three chunks: the sampler's batch holds 2 prompts x 6
    for g in groups:
        assert [c.dropped for c in g] == DROPPED


def test_duplicates_are_dropped_and_the_per_prompt_cap_holds(tiny_model):
    groups = scripted_groups(load_tokenizer(tiny_model), filters=["format"], max_per_prompt=2)
    for g in groups:
        assert [c.dropped for c in g] == ["", "unverified", "format", "", "duplicate", "per_prompt"]


def test_every_kept_generation_rescores_as_verified(tiny_model):
    groups = scripted_groups(load_tokenizer(tiny_model), filters=["format", "repetition"], max_per_prompt=0)
    rows = [dataset_row(c) for g in groups for c in g if not c.dropped]
    assert len(rows) == 10 and len({(r["prompt"], r["completion"]) for r in rows}) == len(rows)
    columns = {"answer": [r["answer"] for r in rows],
               **{k: [r["meta"][k] for r in rows] for k in rows[0]["meta"]}}
    prompts, completions = [r["prompt"] for r in rows], [r["completion"] for r in rows]
    total, _, errors = R.combine([(R.get("math", workers=0), 1.0)], prompts, completions, columns)
    assert all(t >= 1.0 for t in total) and not any(errors.values())
    assert R.get("format")(prompts, completions) == [1.0] * len(rows)
    assert rows[0]["messages"] == [{"role": "user", "content": rows[0]["prompt"]},
                                   {"role": "assistant", "content": rows[0]["completion"]}]


def test_filters_and_their_registry():
    assert is_repetitive("<think>" + "1+1+0=2>2;" * 8 + "</think>")
    assert not is_repetitive(solution_text(Problem(987, "*", 7), "worked"))
    ex = Example("1+1=", "2")

    def cand(n):
        return Candidate(ex, "1+1=", Rollout([], [0] * n, [], "stop", ""))

    assert longest_filter([cand(5), cand(9), cand(3), cand(9)]) == [True, False, True, False]
    assert longest_filter([cand(4), cand(4)]) == [True, True]
    with pytest.raises(UserError, match="unknown sample filter 'lenght'.*longest"):
        select([[cand(1)]], SampleConfig(filters=["lenght"]))


def has_digit(prompts, completions, **columns):
    """A user's reward: an untrained model writes digits now and then, never right answers."""
    return [float(any(ch.isdigit() for ch in c)) for c in completions]


def test_sample_stage_writes_a_dataset_and_statistics(tmp_path, tiny_model):
    ctx = StageContext(tmp_path, tmp_path / "rs", "rs", 0, tiny_model, resume=False)
    cfg = SampleConfig(prompts=16, samples=4, max_new_tokens=10, rewards={"tests.test_sample:has_digit": 1.0},
                       filters=["repetition"], max_per_prompt=2)
    assert run_sample(cfg, ctx) is None
    rows = [json.loads(x) for x in (tmp_path / "rs" / "data.jsonl").read_text().splitlines()]
    stats = json.loads((tmp_path / "rs" / "stats.json").read_text())
    assert stats["prompts"] == 16 and stats["generations"] == 64 and stats["kept"] == len(rows) > 0
    assert sum(s["kept"] for s in stats["by_task"].values()) == len(rows)
    assert set(stats["by_task"]) <= {"arithmetic/2", "arithmetic/3"}
    assert all(has_digit(None, [r["completion"]]) == [1.0] and r["reward"] >= 1.0 for r in rows)
    per_prompt = [r["prompt"] for r in rows]
    assert max(per_prompt.count(p) for p in per_prompt) <= 2
    held_out = {e.prompt for e in tasks.get("arithmetic").examples("test", n=200, seed=0)}
    assert not held_out & set(per_prompt)
    budget = json.loads((tmp_path / "rs" / "budget.json").read_text())  # every generation, prompt included
    assert 64 * 4 < budget["tokens"]["generation"] <= 64 * (8 + 10) and set(budget["phases"]) >= {"generation"}


def test_prompts_are_distinct_and_skip_the_evaluation_problems():
    from r1zero.sample import draw_prompts

    task = tasks.get("arithmetic", min_digits=1, max_digits=1, ops="+")  # 100 problems in all
    held_out = {e.prompt for e in task.examples("test", n=30, seed=0)}  # the few in the evaluation split
    drawn = draw_prompts(task, 200, 0, "rs", 30)
    assert 0 < len(held_out) < 10 and len(drawn) == 100 - len(held_out) and not held_out & {e.prompt for e in drawn}
    assert [e.prompt for e in drawn] == [e.prompt for e in draw_prompts(task, 200, 0, "rs", 30)]
