"""On a pretrained tiny model (slow: pretrained here, ~2 minutes): self-consistency is at least
sampled pass@1, and budget forcing moves the thinking length the way it is asked to.

The model is the default build with hidden size 64 and 2 layers, pretrained on 1-2 digit sums and
differences, so that 300 small steps give a base model that solves some problems (pass@1 ~0.2).
"""

from __future__ import annotations

import pytest

from r1zero.eval.evaluate import EvalOptions, evaluate_model

pytestmark = pytest.mark.slow
PROBLEMS = {"min_digits": 1, "max_digits": 2, "ops": "+-"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from r1zero.pipeline import run_recipe
    from r1zero.recipe import resolve

    out = tmp_path_factory.mktemp("runs")
    recipe = resolve({"name": "base", "out_dir": str(out), "seed": 0, "threads": 1, "stages": ["build", "pretrain"],
                      "build": {"hidden_size": 64, "layers": 2}, "pretrain": {"steps": 300, "batch_size": 64, "checkpoint_every": 0,
                                                        **PROBLEMS}})
    run_recipe(recipe)
    return out / "base" / "pretrain" / "model"


def evaluate(model, **options):
    opts = EvalOptions(problems=64, samples=8, max_new_tokens=48, greedy=False, progress=False,
                       task_options=PROBLEMS, **options)
    return evaluate_model(model, opts, seed=0).summary


def test_majority_vote_is_at_least_sampled_pass_at_1(pretrained):
    s = evaluate(pretrained)  # the R1 paper's sampling: T=0.6, top-p 0.95
    assert s["sampled_pass@1"] > 0.05, s  # the base model solves some problems
    assert s["cons@8"] >= s["sampled_pass@1"], s
    assert s["pass@8"] >= s["cons@8"], s


def test_budget_forcing_moves_thinking_length(pretrained):
    base = evaluate(pretrained)["mean_think_length"]
    longer = evaluate(pretrained, min_think_tokens=int(base) + 16)["mean_think_length"]
    shorter = evaluate(pretrained, max_think_tokens=max(2, int(base) // 3))["mean_think_length"]
    assert longer > base + 8 and shorter < base * 0.6, (shorter, base, longer)
