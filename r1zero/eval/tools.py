"""Evaluation with tools: the same multi-turn loop as RL (`eval.tools`, `eval.max_turns`), and how often
and how well the model uses them.

`tool_generate` is `generate_samples` with a MultiTurnSampler (r1zero.rollout.multiturn) over the hf
sampler: a `<tool_call>` is run by the tool environment, its reply appended, and the model goes on,
up to `max_turns` turns. A completion's text holds the model's own words (its calls included, the
tools' replies not), so the task's reward scores the model's answer only.

`tool_summary` adds eval.json's tool figures, read from the completions' text: the share of sampled
completions that call a tool, calls per completion, accuracy with and without a call, and the
greedy answer's call share.
"""

from __future__ import annotations

from r1zero.rollout.base import SamplingParams
from r1zero.rollout.env import environment_factory
from r1zero.rollout.hf import HFSampler
from r1zero.rollout.multiturn import MultiTurnSampler
from r1zero.tools.format import parse_tool_calls
from r1zero.types import Rollout


def tool_generate(tools: list[str], max_turns: int, max_total_tokens: int = 0):
    """A `generate_samples` that runs `tools` between the model's turns (budget forcing does not apply)."""
    make_env = environment_factory("", list(tools))

    def generate(model, tokenizer, prompt_ids: list[list[int]], n: int, params: SamplingParams,
                 min_think_tokens: int = 0, max_think_tokens: int | None = None, wait_text: str = "Wait",
                 batch_size: int = 256, max_answer_tokens: int | None = None) -> list[Rollout]:
        if min_think_tokens > 0 or max_think_tokens is not None or max_answer_tokens:
            from r1zero.errors import UserError

            raise UserError("eval: budget forcing (min/max_think_tokens, max_answer_tokens) does not run with "
                            "eval.tools")
        sampler = MultiTurnSampler(HFSampler(model, tokenizer, batch_size), tokenizer, make_env, max_turns,
                                   max_total_tokens)
        return sampler.generate(prompt_ids, n, params)

    return generate


def calls(text: str) -> int:
    return len(parse_tool_calls(text))


def tool_summary(items: list[dict]) -> dict:
    """Tool figures over the items' sampled (and greedy) completions."""
    samples = [(calls(t), ok) for it in items for t, ok in zip(it["completions"], it["correct"])]
    n = max(1, len(samples))

    def accuracy(rows) -> float | None:
        rows = list(rows)
        return sum(ok for _, ok in rows) / len(rows) if rows else None

    out = {"tool_call_share": sum(c > 0 for c, _ in samples) / n, "tool_calls": sum(c for c, _ in samples) / n,
           "accuracy_with_tool": accuracy(s for s in samples if s[0]),
           "accuracy_without_tool": accuracy(s for s in samples if not s[0])}
    greedy = [it["greedy"]["text"] for it in items if it.get("greedy")]
    if greedy:
        out["greedy_tool_call_share"] = sum(calls(t) > 0 for t in greedy) / len(greedy)
    return out
