"""Multi-turn rollouts: the model writes, an environment answers (tool results), the model goes on.

`MultiTurnSampler` wraps any Sampler (hf, vllm, ray): each turn is one `generate` call over the
conversations still running, with the prompt plus everything so far as the new prompt. After a turn
the environment reads the model's message; its observation (e.g. `<tool_response>...</tool_response>`)
is tokenized and appended, and the next turn starts, up to `max_turns` turns and `max_total_tokens`
completion tokens (the model's and the environment's together).

The rollout is one completion whose `completion_mask` is False on the environment's tokens: they get
log-prob 0 and no loss, and the trainer's forward pass over the whole completion gives the model's
own tokens the log-probs the sampler drew them with (the same prefix, the same positions). `text` holds
the model's own words only, so tool output cannot reach any reward.

A tool call ends a turn at its `</tool_call>`: as a stop token where the tokenizer has one, otherwise
by cutting the turn after the token that completes it. Tokens sampled after a cut are dropped with
their log-probs; what is kept is an exact sample of the policy up to the cut. Departure from verl and
TRL: the observation's tokens are appended as tokenized on their own, never re-tokenized together with
the model's text, so the trainer sees the very ids the sampler conditioned on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from r1zero.rollout.base import SamplingParams
from r1zero.rollout.env import Environment, environment_factory
from r1zero.tools import ERROR_KINDS
from r1zero.tools.format import TOOL_CALL_CLOSE
from r1zero.types import Example, Rollout


@dataclass
class Conversation:
    """One rollout being built, turn by turn."""

    prompt_ids: list[int]
    env: Environment
    ids: list[int] = field(default_factory=list)  # (T,) the model's and the environment's tokens
    mask: list[bool] = field(default_factory=list)  # (T,) True = the model's token
    logprobs: list[float] = field(default_factory=list)  # (T,) 0 on the environment's tokens
    texts: list[str] = field(default_factory=list)  # the model's messages
    info: Counter = field(default_factory=Counter)
    finish_reason: str | None = None  # set when the conversation is over

    def add(self, ids: list[int], logprobs: list[float] | None) -> None:
        self.ids += ids
        self.mask += [logprobs is not None] * len(ids)
        self.logprobs += logprobs if logprobs is not None else [0.0] * len(ids)

    def rollout(self) -> Rollout:
        return Rollout(self.prompt_ids, self.ids, self.logprobs, self.finish_reason or "length",
                       "".join(self.texts), self.mask, dict(self.info))


class MultiTurnSampler:
    def __init__(self, sampler, tokenizer, make_env: Callable[[], Environment], max_turns: int = 4,
                 max_total_tokens: int = 0):
        self.sampler, self.tokenizer, self.make_env = sampler, tokenizer, make_env
        self.max_turns, self.max_total_tokens = max_turns, max_total_tokens
        close = tokenizer(TOOL_CALL_CLOSE, add_special_tokens=False)["input_ids"]
        self.close_is_token = len(close) == 1

    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams,
                 examples: list[Example] | None = None) -> list[Rollout]:
        """`n` rollouts per prompt, prompt-major, as `Sampler.generate`; `examples[i]` resets the
        environments of prompt i."""
        convs = []
        for i, p in enumerate(prompt_ids):
            for _ in range(n):
                env = self.make_env()
                env.reset(examples[i] if examples else Example(prompt="", answer=""))
                convs.append(Conversation(list(p), env))
        total = self.max_total_tokens or params.max_new_tokens * self.max_turns
        stop = list(params.stop) + ([TOOL_CALL_CLOSE] if self.close_is_token else [])
        for turn in range(self.max_turns):
            live = [c for c in convs if c.finish_reason is None]
            if not live:
                break
            room = max(total - len(c.ids) for c in live)
            seed = None if params.seed is None else params.seed * 1009 + turn
            outs = self.sampler.generate([c.prompt_ids + c.ids for c in live], 1, replace(
                params, max_new_tokens=min(params.max_new_tokens, room), stop=stop, seed=seed))
            for c, out in zip(live, outs):
                self.take_turn(c, out, total, last=turn == self.max_turns - 1)
        return [c.rollout() for c in convs]

    def take_turn(self, c: Conversation, out: Rollout, total: int, last: bool) -> None:
        ids, logprobs, finish = out.completion_ids, out.logprobs, out.finish_reason
        cut = self.call_end(ids, out.text)
        if cut is not None:
            ids, logprobs, finish = ids[:cut], logprobs[:cut], "stop"
        if len(c.ids) + len(ids) >= total:  # the budget is spent: this turn is the last
            ids, logprobs, finish = ids[: total - len(c.ids)], logprobs[: total - len(c.ids)], "length"
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        c.add(ids, logprobs)
        c.texts.append(text)
        step = c.env.step(text)
        c.info.update(step.info)
        if step.reward is not None:
            c.info["env_reward"] = step.reward
        if step.done or len(c.ids) >= total:
            c.finish_reason = finish
            return
        obs = self.tokenizer(step.observation or "", add_special_tokens=False)["input_ids"]
        if last or len(c.ids) + len(obs) >= total:
            c.finish_reason = "length"  # the environment answered, but no room is left to read it
            return
        c.add(obs, None)

    def call_end(self, ids: list[int], text: str) -> int | None:
        """Tokens up to and including the one that completes the first `</tool_call>`, or None."""
        if TOOL_CALL_CLOSE not in text:
            return None
        for k in range(1, len(ids) + 1):
            if TOOL_CALL_CLOSE in self.tokenizer.decode(ids[:k], skip_special_tokens=True):
                return k
        return None


def make_multiturn(cfg, sampler, tokenizer) -> MultiTurnSampler | None:
    """The RL stage's multi-turn sampler (`rl.tools`, `rl.environment`), or None for single-turn tasks."""
    if not cfg.tools and not cfg.environment:
        return None
    return MultiTurnSampler(sampler, tokenizer, environment_factory(cfg.environment, cfg.tools),
                            cfg.max_turns, cfg.max_total_tokens)


def tool_figures(rollouts: list[Rollout]) -> dict:
    """Per-step tool metrics: share of rollouts with a call, calls per rollout, errors by kind."""
    n = max(len(rollouts), 1)
    out = {"tool_call_share": sum(r.info.get("tool_calls", 0) > 0 for r in rollouts) / n,
           "tool_calls": sum(r.info.get("tool_calls", 0) for r in rollouts) / n}
    for kind in ERROR_KINDS:
        out[f"tool_errors/{kind}"] = sum(r.info.get(f"tool_errors/{kind}", 0) for r in rollouts)
    return out
