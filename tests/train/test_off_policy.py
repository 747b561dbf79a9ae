"""Off-policy losses in the RL stage (issue 19): `loss=decoupled_ppo` and `loss=cispo` train a tiny model.

In the synchronous loop the proximal policy (the learner's before the update) and the sampler's agree
up to numerics, so decoupled PPO's behaviour weights sit at 1; what is checked here is the wiring: the
learner's no-grad forward reaches the loss as `prox_logp`, and the weights move.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig
from r1zero.stages import StageContext
from r1zero.train.rl import run_rl
from tests.conftest import build_tiny
from tests.train.test_rl import FAST


def weights(folder):
    return load_file(str(next(folder.glob("*.safetensors"))))


@pytest.mark.parametrize("loss", ["decoupled_ppo", "cispo"])
def test_off_policy_losses_train_two_steps(tmp_path, loss):
    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64, layers=1)
    ctx = StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False)
    out = run_rl(RLConfig(steps=2, loss=loss, **FAST), ctx)
    before, after = weights(base), weights(out)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(t).all() for t in after.values())
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    if loss == "decoupled_ppo":  # pi_prox from the learner's forward pass, pi_behav from the sampler
        assert all(abs(row["behav_weight_mean"] - 1) < 0.05 for row in rows)
