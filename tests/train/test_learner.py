"""Learner pieces that need no cluster: TIS in the loop, a rank's share of the loss, length pieces and
micro-steps that leave the gradient as it was, cluster options."""

import json

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig
from r1zero.errors import UserError
from r1zero.models.io import load_tokenizer
from r1zero.stages import StageContext
from r1zero.train.cluster import ClusterOptions
from r1zero.train.learner import LocalLearner, length_pieces, setup_policy, shard_share
from r1zero.train.rl import run_rl
from r1zero.train.rollout_batch import make_batch
from tests.conftest import build_tiny
from tests.train.test_rl import FAST
from tests.train.test_rollout_batch import rollouts


def test_tis_with_the_hf_sampler_weighs_every_token_about_one(tmp_path):
    """hf samples with the trainer's own weights, so pi_trainer / pi_sampler = 1 up to float noise:
    TIS must then leave the update (almost) as it was."""
    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64)
    outs = {}
    for cap in (0.0, 2.0):
        ctx = StageContext(tmp_path, tmp_path / f"rl-{cap}", "rl", 0, base, resume=False)
        outs[cap] = load_file(run_rl(RLConfig(steps=2, tis_cap=cap, **FAST), ctx) / "model.safetensors")
    last = json.loads((tmp_path / "rl-2.0" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["tis_weight_mean"] == pytest.approx(1.0, abs=1e-3) and last["tis_capped_frac"] == 0.0
    diff = max((outs[0.0][k] - outs[2.0][k]).abs().max().item() for k in outs[0.0])
    assert diff < 1e-5, diff


def test_a_ranks_share_of_the_normaliser():
    micro = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])  # 6 kept tokens
    mine = micro[[0, 2]]  # 5 of them, 2 of 3 sequences
    assert shard_share("token_mean", micro, mine) == pytest.approx(5 / 6)
    assert shard_share("seq_mean", micro, mine) == shard_share("constant", micro, mine) == pytest.approx(2 / 3)


def step_gradients(cfg, model_dir, batch) -> dict[str, torch.Tensor]:
    """The gradient a learner's step hands its optimizer."""
    torch.manual_seed(0)
    learner = LocalLearner(cfg, setup_policy(cfg, model_dir), model_dir)
    seen = {}
    learner.optimizer.step = lambda: seen.update(
        {n: p.grad.clone() for n, p in learner.model.named_parameters() if p.grad is not None})
    learner.step(batch)
    return seen


@pytest.mark.parametrize("loss", ["dapo", "grpo", "dr_grpo"])  # token_mean, seq_mean, constant
def test_length_pieces_and_micro_steps_give_the_whole_batch_gradient(tiny_model, loss):
    tok = load_tokenizer(tiny_model)
    rows = rollouts(tok, group=4)  # 12 rows, completions 1-8 tokens
    gen = torch.Generator().manual_seed(1)
    for r in rows:
        r.logprobs = (-torch.rand(len(r.completion_ids), generator=gen)).tolist()  # ratios != 1: clipping acts
    batch = make_batch(rows, torch.randn(len(rows), generator=gen), tok.pad_token_id)
    whole = step_gradients(RLConfig(loss=loss, length_buckets=1), tiny_model, batch)
    split = step_gradients(RLConfig(loss=loss, length_buckets=3, grad_accum=2), tiny_model, batch)
    assert whole.keys() == split.keys() and len(whole) > 10
    for name, grad in whole.items():
        assert torch.allclose(grad, split[name], atol=1e-6, rtol=1e-4), name


def test_length_pieces_sort_rows_by_kept_length():
    mask = torch.tensor([[True] * 5, [True] * 1 + [False] * 4, [True] * 3 + [False] * 2, [True] * 2 + [False] * 3])
    assert [p.tolist() for p in length_pieces(mask, 2)] == [[1, 3], [2, 0]]
    assert [p.tolist() for p in length_pieces(mask, 1)] == [[1, 3, 2, 0]]


def test_cluster_options_name_the_valid_keys():
    assert ClusterOptions.parse({"address": "auto"}).address == "auto"
    with pytest.raises(UserError, match="check_weights"):
        ClusterOptions.parse({"adress": "auto"})
    with pytest.raises(UserError, match="ddp, fsdp2"):
        ClusterOptions.parse({"strategy": "zero3"})
