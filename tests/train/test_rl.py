"""The RL stage end to end on tiny models: parameters move, and a SIGKILLed run resumes bit-exactly."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig
from r1zero.stages import StageContext
from r1zero.train.rl import Scored, prompts_to_draw, run_rl
from tests.conftest import build_tiny, sigkill_once_written


def digit_share(prompts, completions, **columns):
    """A user's own reward (TRL's signature): the share of digits in the completion."""
    return [sum(c.isdigit() for c in text) / max(len(text), 1) for text in completions]


# An untrained model never answers correctly, so the tests reward digits instead: every group then
# has reward variance, nonzero advantages and real gradients.
DIGITS = "tests.train.test_rl:digit_share"
FAST = {"prompts_per_step": 4, "group_size": 4, "max_new_tokens": 12, "rewards": {DIGITS: 1.0, "numeric": 0.0},
            "dynamic_sampling": False, "lr": 1e-3, "checkpoint_every": 0}


def test_every_trained_parameter_changes_and_nothing_is_nan(tmp_path):
    from transformers import AutoModelForCausalLM

    base = build_tiny(tmp_path / "base")
    ctx = StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False)
    out = run_rl(RLConfig(steps=2, **FAST), ctx)
    before = AutoModelForCausalLM.from_pretrained(str(base)).state_dict()
    after = AutoModelForCausalLM.from_pretrained(str(out)).state_dict()
    params = dict(AutoModelForCausalLM.from_pretrained(str(base)).named_parameters())
    unchanged = [n for n in params if torch.equal(before[n], after[n])]
    assert not unchanged, f"parameters that did not change: {unchanged}"
    assert all(torch.isfinite(t).all() for t in after.values())
    rows = [line for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "NaN" not in "".join(rows)


def test_lora_with_kl_trains_adapters_against_the_base(tmp_path):
    base = build_tiny(tmp_path / "base")
    ctx = StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False)
    out = run_rl(RLConfig(steps=2, lora=True, lora_rank=4, loss="grpo", loss_options={"beta": 0.01},
                          num_iterations=2, **FAST), ctx)
    import json

    last = json.loads((tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["kl"] > 0 and last["ratio_max"] > 1.0  # second epoch: the policy moved off the sampler's
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()  # merged


def has_digit(prompts, completions, **columns):
    """1 for a completion with a digit in it: an accuracy an untrained model reaches about half the time."""
    return [float(any(c.isdigit() for c in text)) for text in completions]


def rl_cmd(model_dir, out_dir, *extra):
    return [sys.executable, "-m", "r1zero.cli", "rl", "--model", str(model_dir), "--out", str(out_dir),
            "steps=9", "prompts_per_step=4", "group_size=4", "max_new_tokens=10", "checkpoint_every=3",
            f"rewards={{{DIGITS!r}: 1.0}}", "lr=1e-3", "threads=1", *extra]


# The curriculum's state (frontier, windows of results) picks the prompts: it is part of the checkpoint.
CURRICULUM = ["accuracy_reward=tests.train.test_rl:has_digit",
              f"rewards={{{DIGITS!r}: 1.0, 'tests.train.test_rl:has_digit': 0.0}}",
              "curriculum={levels: [1, 2, 3, 4], threshold: 0.3, window: 8, min_samples: 8}"]


def test_sigkilled_rl_resumes_bit_exact(tmp_path):
    model_dir = build_tiny(tmp_path / "m")
    straight = tmp_path / "straight"
    subprocess.run(rl_cmd(model_dir, straight, *CURRICULUM), check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    ckpt = killed / "rl" / "checkpoints" / "step-6" / "state.pt"
    sigkill_once_written(rl_cmd(model_dir, killed, *CURRICULUM), ckpt)
    assert ckpt.exists() and not (killed / "rl" / "model").exists(), "the kill must land mid-run"
    subprocess.run(rl_cmd(model_dir, killed, *CURRICULUM, "--resume"), check=True, capture_output=True, timeout=300)

    a = load_file(straight / "rl" / "model" / "model.safetensors")
    b = load_file(killed / "rl" / "model" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    strip = lambda p: [{k: v for k, v in __import__("json").loads(x).items() if "seconds" not in k and k != "tokens_per_s"}
                       for x in p.read_text().splitlines()]
    assert strip(straight / "rl" / "metrics.jsonl") == strip(killed / "rl" / "metrics.jsonl")
    levels = [row["curriculum_level"] for row in strip(straight / "rl" / "metrics.jsonl")]
    assert levels[0] < levels[5] <= levels[-1], levels  # the curriculum moved, across the checkpoint


def test_dynamic_sampling_draws_the_expected_shortfall():
    cfg = RLConfig(prompts_per_step=16)
    assert prompts_to_draw(cfg, Scored()) == 16  # the first round: a whole batch
    kept_12_of_16 = Scored(examples=[None] * 12, groups_seen=16)
    assert prompts_to_draw(cfg, kept_12_of_16) == 7  # 4 missing / (12/16 kept) * 1.25 = 6.7
    assert prompts_to_draw(cfg, Scored(groups_seen=16)) == 16  # nothing kept yet: no rate to go by
    assert prompts_to_draw(cfg, Scored(examples=[None], groups_seen=16)) == 16  # capped at B


def fake_scores(per_sample):
    """A `score` for score_groups that returns fixed per-sample scores for every reward name."""
    def score(names, prompts, texts, columns, timeout_s):
        return {name: (list(per_sample), sum(per_sample) / len(per_sample), 0) for name in names}
    return score


def test_step_metrics_cover_every_sampled_rollout_and_the_kept_groups_under_kept():
    from r1zero.train.rl import score_groups, step_metrics
    from r1zero.types import Example, Rollout

    cfg = RLConfig(prompts_per_step=2, group_size=2, dynamic_sampling=True)
    examples = [Example(prompt=f"{i}+1=", answer="1", meta={}) for i in range(2)]
    rollouts = [Rollout([1], [2] * n, [0.0] * n, "stop", "x") for n in (1, 1, 3, 5)]
    scored = Scored()
    score_groups(cfg, examples, rollouts, {"exact": 1.0}, "exact", scored, fake_scores([1.0, 1.0, 0.0, 1.0]))
    row = step_metrics(1, scored, {}, 1.0, 1.0, 3.0, 10, 1e-4)
    assert row["reward"] == row["accuracy"] == 0.75 and row["response_length"] == 2.5  # all four rollouts
    assert row["kept/reward"] == 0.5 and row["kept/response_length"] == 4.0  # the group with variance
    assert row["groups_kept"] == 1


def raise_on_all(prompts, completions, **columns):
    raise KeyError("no_such_column")


def raise_on_some(prompts, completions, **columns):
    if len(completions[0]) % 2:
        raise ValueError("odd")
    return [1.0]


def test_a_reward_that_raises_on_every_completion_stops_the_run_naming_it(tmp_path):
    import pytest

    from r1zero.errors import UserError

    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64, layers=1)
    ctx = StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False)
    with pytest.raises(UserError, match="reward raise_on_all raised on every one of 16 completions.*KeyError"):
        run_rl(RLConfig(steps=1, **{**FAST, "rewards": {"tests.train.test_rl:raise_on_all": 1.0}}), ctx)
    ctx = StageContext(tmp_path, tmp_path / "rl2", "rl", 0, base, resume=False)
    run_rl(RLConfig(steps=1, **{**FAST, "rewards": {"tests.train.test_rl:raise_on_some": 1.0}}), ctx)
    row = __import__("json").loads((tmp_path / "rl2" / "metrics.jsonl").read_text())
    assert 0 < row["reward/tests.train.test_rl:raise_on_some/errors"] < 16  # occasional errors: counted
