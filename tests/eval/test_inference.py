"""Budget forcing (s1) and sample-then-choose, on a scripted sampler and on a tiny model."""

from __future__ import annotations

import pytest

from r1zero.eval.inference import (
    THINK_END,
    budget_forced_generate,
    generate_samples,
    sample_and_choose,
    single_token_id,
    think_length,
)
from r1zero.models.io import load_model, load_tokenizer
from r1zero.rollout.base import SamplingParams
from r1zero.types import Rollout


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(tiny_model)


class ScriptedSampler:
    """A 'model' that thinks `<think>77` (two digits after `<think>` or after each "Wait"), closes
    the thinking, then answers `<answer>4</answer>`. Each sampled token has log-prob -1."""

    def __init__(self, tokenizer, wait_text: str = "Wait"):
        self.tok = tokenizer
        one = lambda s: single_token_id(tokenizer, s)
        self.think, self.end, self.ans, self.ans_end = one("<think>"), one(THINK_END), one("<answer>"), one("</answer>")
        self.seven, self.four = one("7"), one("4")
        self.wait_last = tokenizer(wait_text, add_special_tokens=False)["input_ids"][-1]
        self.calls = 0

    def next_token(self, seq: list[int]) -> int:
        if self.think not in seq:
            return self.think
        if self.end not in seq:
            marks = [i for i, t in enumerate(seq) if t in (self.think, self.wait_last)]
            return self.seven if len(seq) - marks[-1] - 1 < 2 else self.end
        return {self.end: self.ans, self.ans: self.four}.get(seq[-1], self.ans_end)

    def generate(self, prompt_ids, n, params):
        self.calls += 1
        stops = {single_token_id(self.tok, s) for s in params.stop} | {self.tok.eos_token_id}
        out = []
        for prompt in (p for p in prompt_ids for _ in range(n)):
            ids, finish = [], "length"
            while len(ids) < params.max_new_tokens:
                ids.append(self.next_token(list(prompt) + ids))
                if ids[-1] in stops:
                    finish = "stop"
                    break
            out.append(Rollout(list(prompt), ids, [-1.0] * len(ids), finish, self.tok.decode(ids)))
        return out


def forced(tokenizer, max_new=40, **budget):
    sampler = ScriptedSampler(tokenizer)
    prompt = tokenizer("12+3=", add_special_tokens=False)["input_ids"]
    (r,) = budget_forced_generate(None, tokenizer, [prompt], SamplingParams(max_new, seed=0), sampler=sampler,
                                  **budget)
    return r, think_length(r.completion_ids, single_token_id(tokenizer, THINK_END))


def test_no_budget_leaves_the_completion_alone(tokenizer):
    r, think = forced(tokenizer)
    assert r.text == "<think>77</think><answer>4</answer>"
    assert think == 3 and r.finish_reason == "stop"
    assert r.logprobs == [-1.0] * len(r.completion_ids)


def test_min_budget_replaces_early_end_of_thinking_with_wait(tokenizer):
    r, think = forced(tokenizer, min_think_tokens=8)
    assert think >= 8
    assert r.text.startswith("<think>77Wait77") and r.text.endswith("</think><answer>4</answer>")
    assert r.text.count(THINK_END) == 1 and r.finish_reason == "stop"
    wait_ids = tokenizer("Wait", add_special_tokens=False)["input_ids"]
    assert len(r.logprobs) == len(r.completion_ids)
    assert r.logprobs.count(0.0) == r.text.count("Wait") * len(wait_ids)  # inserted tokens: log-prob 0


def test_max_budget_closes_thinking_and_forces_the_answer(tokenizer):
    r, think = forced(tokenizer, max_think_tokens=2)
    assert think == 2
    assert r.text == "<think>7</think><answer>4</answer>"
    assert r.logprobs[2:4] == [0.0, 0.0]  # the forced `</think><answer>`


def test_the_answer_cap_cuts_an_answer_after_thinking(tokenizer):
    r, _ = forced(tokenizer, max_think_tokens=2, max_answer_tokens=1)  # forced: `<answer>` is inserted, then 1
    assert r.text == "<think>7</think><answer>4" and r.finish_reason == "length"
    r, _ = forced(tokenizer, max_think_tokens=2, max_answer_tokens=2)
    assert r.text == "<think>7</think><answer>4</answer>" and r.finish_reason == "stop"
    r, _ = forced(tokenizer, max_answer_tokens=2)  # thinking closed by the model: `<answer>4` is its answer
    assert r.text == "<think>77</think><answer>4" and r.finish_reason == "length"


def test_min_and_max_budget_together(tokenizer):
    r, think = forced(tokenizer, min_think_tokens=6, max_think_tokens=6)
    assert think == 6 and r.text.endswith("</think><answer>4</answer>")


def test_total_token_limit_wins(tokenizer):
    r, _ = forced(tokenizer, max_new=5, min_think_tokens=50)
    assert len(r.completion_ids) <= 5 and r.finish_reason == "length"
    r, _ = forced(tokenizer, max_new=3, max_think_tokens=2)
    assert len(r.completion_ids) == 3 and r.finish_reason == "length"  # `</think>` fits, `<answer>` does not
    r, think = forced(tokenizer, max_think_tokens=0)
    assert think == 0 and r.text.startswith("</think><answer>")


def test_bad_wait_text(tokenizer):
    with pytest.raises(ValueError, match="wait_text"):
        forced(tokenizer, min_think_tokens=4, wait_text="")


def test_budget_forcing_on_a_model_is_batched_and_deterministic(tiny_model, tokenizer):
    model = load_model(tiny_model)
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in ("12+3=", "45*6=", "9-2=")]
    params = SamplingParams(12, temperature=0.6, top_p=0.95, seed=3)
    a = budget_forced_generate(model, tokenizer, prompts, params, min_think_tokens=4, max_think_tokens=6)
    b = budget_forced_generate(model, tokenizer, prompts, params, min_think_tokens=4, max_think_tokens=6)
    assert len(a) == 3 and [r.completion_ids for r in a] == [r.completion_ids for r in b]
    end = single_token_id(tokenizer, THINK_END)
    for r, p in zip(a, prompts):
        assert r.prompt_ids == p and len(r.completion_ids) <= 12 and len(r.logprobs) == len(r.completion_ids)
        assert think_length(r.completion_ids, end) <= 6


def test_sample_and_choose(tiny_model, tokenizer):
    model = load_model(tiny_model)
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in ("12+3=", "45*6=")]
    params = SamplingParams(8, temperature=1.0, seed=0)
    choices = sample_and_choose(model, tokenizer, prompts, params, n=3)
    assert len(choices) == 2 and all(len(c.samples) == 3 and c.rollout in c.samples for c in choices)
    samples = generate_samples(model, tokenizer, prompts, 3, params)
    assert [r.completion_ids for c in choices for r in c.samples] == [r.completion_ids for r in samples]

    def prefers_long(prompts, completions, **_):
        return [float(len(c)) for c in completions]

    choices = sample_and_choose(model, tokenizer, prompts, params, n=3, strategy="best_of_n", verifier=prefers_long,
                                max_think_tokens=2)
    for c in choices:
        assert c.scores == [float(len(r.text)) for r in c.samples]
        assert len(c.rollout.text) == max(len(r.text) for r in c.samples)
    with pytest.raises(ValueError, match="verifier"):
        sample_and_choose(model, tokenizer, prompts, params, n=2, strategy="best_of_n")
