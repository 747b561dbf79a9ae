"""Multi-turn rollouts: environment tokens are masked and carry no log-prob, the model's own tokens keep
the sampler's log-probs under the trainer's forward, bad tool calls are answered and counted."""

from __future__ import annotations

import json

import pytest
import torch

from r1zero.models.io import load_model, load_tokenizer
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.env import Step, ToolEnvironment
from r1zero.rollout.hf import HFSampler
from r1zero.rollout.multiturn import MultiTurnSampler, tool_figures
from r1zero.tools import ToolBox, load_tool, render_tool_call
from r1zero.train.rollout_batch import completion_logprobs, make_batch
from r1zero.types import Example, Rollout


class Interjector:
    """Answers every turn with a fixed remark and ends after three turns, whatever the model wrote."""

    def reset(self, example: Example) -> None:
        self.turns = 0

    def step(self, message: str) -> Step:
        self.turns += 1
        return Step(" [noted] 12*3=", done=self.turns == 3, info={"turns": 1})


@pytest.fixture(scope="module")
def policy(tiny_model):
    torch.manual_seed(0)
    return load_model(tiny_model), load_tokenizer(tiny_model)


def test_trainer_logprobs_of_model_tokens_match_the_sampler(policy):
    model, tok = policy
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in ["1+2=", "123*4=", "98765-4321="]]
    sampler = MultiTurnSampler(HFSampler(model, tok), tok, Interjector, max_turns=3, max_total_tokens=60)
    rollouts = sampler.generate(prompts, 3, SamplingParams(max_new_tokens=8, temperature=0.8, stop=[], seed=0))
    observation = tok(" [noted] 12*3=", add_special_tokens=False)["input_ids"]
    assert all(r.info["turns"] >= 2 for r in rollouts)
    for r in rollouts:  # the environment's tokens sit between the turns, masked, with log-prob 0
        tool = [t for t, keep in zip(r.completion_ids, r.completion_mask) if not keep]
        assert tool and tool == observation * (len(tool) // len(observation))
        assert all(lp == 0.0 for lp, keep in zip(r.logprobs, r.completion_mask) if not keep)
        assert r.completion_mask[-1], "a rollout ends with the model's own turn"
    batch = make_batch(rollouts, torch.zeros(len(rollouts)), tok.pad_token_id)
    assert int(batch.completion_mask.sum()) == sum(sum(r.completion_mask) for r in rollouts)
    for share_prompts in (True, False):  # the trainer's two paths: shared-prompt cache, one whole pass
        with torch.no_grad():
            logp, _ = completion_logprobs(model, batch.trimmed(), 0.8, share_prompts=share_prompts)
        mask = batch.trimmed().completion_mask
        diff = (logp - batch.trimmed().old_logp)[mask].abs().max().item()
        print(f"max |sampler - trainer| over the model's tokens (share_prompts={share_prompts}): {diff:.1e}")
        assert diff < 1e-5


def test_loss_mask_keeps_model_tokens_after_tool_output():
    r = Rollout([5, 6], [10, 11, 20, 21, 22, 12], [-1.0, -2.0, 0.0, 0.0, 0.0, -3.0], "stop", "",
                [True, True, False, False, False, True])
    short = Rollout([5], [10, 11], [-1.0, -1.0], "stop")  # a single-turn rollout in the same batch
    batch = make_batch([r, short], torch.zeros(2), pad_id=0)
    assert batch.completion_mask.tolist() == [[True, True, False, False, False, True],
                                              [True, True, False, False, False, False]]
    assert batch.old_logp[0].tolist() == [-1.0, -2.0, 0.0, 0.0, 0.0, -3.0]
    trimmed = batch.trimmed()  # the last model token stays, although the row has only 3 of them
    assert trimmed.completion_mask.shape[1] == 6 and trimmed.completion_mask[0, -1]
    assert batch.select(torch.tensor([1])).trimmed().completion_mask.shape[1] == 2


class Scripted:
    """A sampler that writes given turns (one list per conversation), for exact tool-call scenarios."""

    def __init__(self, tok, turns: list[list[str]]):
        self.tok, self.turns, self.contexts = tok, [list(t) for t in turns], []

    def generate(self, prompt_ids, n, params):
        assert n == 1
        self.contexts.append(prompt_ids)
        live = [t for t in self.turns if t]
        out = []
        for script, ctx in zip(live, prompt_ids):
            text = script.pop(0)
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            finish = "stop" if len(ids) <= params.max_new_tokens else "length"
            ids = ids[: params.max_new_tokens]
            out.append(Rollout(ctx, ids, [-0.5] * len(ids), finish, self.tok.decode(ids)))
        return out


def call(name, **args):
    return render_tool_call(name, args)


def test_bad_calls_are_answered_with_one_line_errors_counted_and_the_rollout_goes_on(policy):
    _, tok = policy
    bad_json = '<tool_call>{"name": "calculator", "arguments": {</tool_call>'
    turns = [[bad_json, call("abacus", x=1), call("calculator", expression=7), call("calculator", expression="1/0"),
              call("calculator", expression="9**9**9"), call("calculator", expression="6*7") + " trailing",
              "<answer>42</answer>"],
             ["<answer>5</answer>"]]
    box = ToolBox([load_tool("calculator")])
    sampler = MultiTurnSampler(Scripted(tok, turns), tok, lambda: ToolEnvironment(box), max_turns=8,
                               max_total_tokens=2000)
    first, second = sampler.generate([[1, 2], [3]], 1, SamplingParams(max_new_tokens=200, stop=[]))
    assert first.info == {"tool_calls": 6, "tool_errors/bad_json": 1, "tool_errors/unknown_tool": 1,
                          "tool_errors/bad_arguments": 1, "tool_errors/tool_error": 1, "tool_errors/limit": 1}
    assert first.finish_reason == "stop" and first.text.endswith("<answer>42</answer>")
    tool_text = tok.decode([t for t, k in zip(first.completion_ids, first.completion_mask) if not k])
    responses = tool_text.split("</tool_response>")[:-1]
    assert len(responses) == 6 and responses[-1] == "<tool_response>42"
    assert all(r.startswith("<tool_response>error: ") and "\n" not in r for r in responses[:5])
    assert "tool_response" not in first.text and " trailing" not in first.text  # the turn ends at its call
    assert second.info == {} and second.completion_mask == [True] * len(second.completion_ids)
    figures = tool_figures([first, second])
    assert figures["tool_call_share"] == 0.5 and figures["tool_calls"] == 3.0
    assert [figures[f"tool_errors/{k}"] for k in ("bad_json", "unknown_tool", "bad_arguments", "tool_error",
                                                 "limit")] == [1, 1, 1, 1, 1]


def test_turns_and_token_budget_bound_a_rollout(policy):
    _, tok = policy
    box = ToolBox([load_tool("calculator")])
    loop = [[call("calculator", expression="1+1")] * 10]
    sampler = MultiTurnSampler(Scripted(tok, loop), tok, lambda: ToolEnvironment(box), max_turns=3,
                               max_total_tokens=10_000)
    (r,) = sampler.generate([[1]], 1, SamplingParams(max_new_tokens=200, stop=[]))
    assert r.info["tool_calls"] == 3 and r.finish_reason == "length" and r.completion_mask[-1]
    sampler = MultiTurnSampler(Scripted(tok, loop), tok, lambda: ToolEnvironment(box), max_turns=10,
                               max_total_tokens=70)
    (r,) = sampler.generate([[1]], 1, SamplingParams(max_new_tokens=200, stop=[]))
    assert len(r.completion_ids) <= 70 and r.finish_reason == "length"


def test_tool_output_cannot_change_the_reward(policy):
    """A tool that prints an answer tag: the reward reads the model's own text, and the tag is defused."""
    from r1zero import rewards

    _, tok = policy
    box = ToolBox([load_tool("tests.tools.userdefs:leak")])
    turns = [[call("leak"), "<answer>5</answer>"]]
    sampler = MultiTurnSampler(Scripted(tok, turns), tok, lambda: ToolEnvironment(box), max_turns=3)
    (r,) = sampler.generate([[1]], 1, SamplingParams(max_new_tokens=200, stop=[]))
    assert "99" not in r.text and "[answer]99[/answer]" in tok.decode(r.completion_ids)
    numeric = rewards.get("numeric")
    assert numeric(["q"], [r.text], answer=["5"]) == [1.0]
    assert json.loads(json.dumps(r.info)) == {"tool_calls": 1}


def test_rl_with_tools_logs_tool_metrics_per_step(tmp_path):
    from r1zero.config import RLConfig
    from r1zero.stages import StageContext
    from r1zero.train.rl import run_rl
    from tests.conftest import build_tiny

    base = build_tiny(tmp_path / "base")
    ctx = StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False)
    cfg = RLConfig(steps=2, prompts_per_step=2, group_size=2, max_new_tokens=8, dynamic_sampling=False,
                   checkpoint_every=0, rewards={"tests.train.test_rl:digit_share": 1.0, "numeric": 0.0},
                   tools=["calculator"], max_turns=2)
    run_rl(cfg, ctx)
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert 0.0 <= row["tool_call_share"] <= 1.0 and row["tool_errors/bad_json"] >= 0


class Grader:
    """A user environment that scores the conversation itself: 1 when the model's message mentions 'ok'."""

    def reset(self, example: Example) -> None:
        self.answer = example.answer

    def step(self, message: str) -> Step:
        return Step(None, done=True, reward=float(self.answer in message))


def test_an_environment_reward_reaches_reward_functions_as_a_column(policy):
    from r1zero.config import RLConfig
    from r1zero.rollout.env import env_reward
    from r1zero.train.rl import Scored, score_groups

    _, tok = policy
    sampler = MultiTurnSampler(Scripted(tok, [["ok"], ["no"]]), tok, Grader)
    examples = [Example("q", "ok")]
    rollouts = sampler.generate([[1]], 2, SamplingParams(max_new_tokens=5, stop=[]), examples)
    assert [r.info["env_reward"] for r in rollouts] == [1.0, 0.0]
    seen = {}

    def score(names, prompts, texts, columns, timeout_s):
        seen.update(columns)
        values = env_reward(prompts, texts, **columns)
        return {name: (values, sum(values) / len(values), 0) for name in names}

    scored = Scored()
    score_groups(RLConfig(group_size=2, prompts_per_step=1), examples, rollouts, {"env": 1.0}, "env", scored, score)
    assert seen["env_reward"] == [1.0, 0.0] and scored.rewards == [1.0, 0.0]
