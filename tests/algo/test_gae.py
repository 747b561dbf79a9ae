"""PPO's critic side (r1zero.algo.gae) against hand-computed examples."""

import doctest

import pytest
import torch

from r1zero.algo import (
    ADVANTAGES,
    LOSSES,
    advantage_config,
    explained_variance,
    gae_advantages,
    masked_whiten,
    outcome_token_rewards,
    value_loss,
)
from r1zero.algo import gae as gae_module
from r1zero.errors import UserError

MASK = torch.tensor([[True, True, True], [True, True, False]])


def test_outcome_reward_sits_on_the_last_kept_token():
    holes = torch.tensor([[True, False, True, False], [False, False, False, False]])  # tool output, all padding
    got = outcome_token_rewards(torch.tensor([3.0, 5.0]), holes)
    assert torch.equal(got, torch.tensor([[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))


def test_gae_by_hand_with_discount_and_padding():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.2], [1.0, 0.5, 9.0]])  # 9.0 sits on padding: never read
    adv, ret = gae_advantages(rewards, values, MASK, gamma=0.9, lam=0.5)
    # Row 0: d2 = 1 - 0.2 = 0.8; d1 = 0 + 0.9*0.2 - 0.4 = -0.22; d0 = 0.9*0.4 - 0.5 = -0.14
    #   A2 = 0.8; A1 = -0.22 + 0.45*0.8 = 0.14; A0 = -0.14 + 0.45*0.14 = -0.077
    # Row 1: d1 = 2 - 0.5 = 1.5 (the episode ends: V after it is 0); d0 = 0.9*0.5 - 1 = -0.55
    #   A1 = 1.5; A0 = -0.55 + 0.45*1.5 = 0.125
    want = torch.tensor([[-0.077, 0.14, 0.8], [0.125, 1.5, 0.0]])
    assert torch.allclose(adv, want, atol=1e-6)
    assert torch.allclose(ret, torch.tensor([[0.423, 0.54, 1.0], [1.125, 2.0, 0.0]]), atol=1e-6)


def test_gae_with_gamma_and_lam_one_is_reward_minus_value():
    values = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.0]])
    rewards = outcome_token_rewards(torch.tensor([1.0, 0.0]), MASK)
    adv, ret = gae_advantages(rewards, values, MASK)
    assert torch.allclose(adv, torch.tensor([[0.9, 0.8, 0.7], [-0.4, -0.5, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))


def test_gae_skips_holes_in_the_mask():
    holes = torch.tensor([[True, False, True]])  # the middle token is a tool's output
    adv, _ = gae_advantages(torch.tensor([[0.0, 7.0, 1.0]]), torch.tensor([[0.5, 9.0, 0.25]]), holes, gamma=0.5, lam=1.0)
    # As if the row were [t0, t2]: A2 = 1 - 0.25 = 0.75; A0 = 0.5*0.25 - 0.5 + 0.5*0.75 = 0.0
    assert torch.allclose(adv, torch.tensor([[0.0, 0.0, 0.75]]))


def test_whitening_uses_kept_tokens_only():
    got = masked_whiten(torch.tensor([[2.0, 4.0, 100.0], [6.0, 8.0, -100.0]]), MASK[[1, 1]])
    std = torch.tensor([2.0, 4.0, 6.0, 8.0]).std(correction=0)
    assert torch.allclose(got, torch.tensor([[-3.0, -1.0, 0.0], [1.0, 3.0, 0.0]]) / std)


def test_clipped_value_loss_by_hand():
    values = torch.tensor([[1.0, 0.2, 0.6]], requires_grad=True)
    old = torch.tensor([[0.0, 0.0, 0.5]])
    returns = torch.tensor([[1.0, 1.0, 0.0]])
    loss, m = value_loss(values, old, returns, torch.tensor([[True, True, False]]), cliprange_value=0.5)
    # t0: plain (1-1)^2 = 0, clipped (0.5-1)^2 = 0.25 -> 0.25 (clipped wins); t1: both (0.2-1)^2 = 0.64
    assert loss.item() == pytest.approx(0.5 * (0.25 + 0.64) / 2)
    assert m["value_clip_frac"] == pytest.approx(0.5) and m["value_mean"] == pytest.approx(0.6)
    loss.backward()
    # The clipped term is constant in V where it wins: t0 gets no gradient; t2 is padding.
    assert torch.allclose(values.grad, torch.tensor([[0.0, 0.5 * 2 * (0.2 - 1.0) / 2, 0.0]]))


def test_explained_variance():
    returns = torch.tensor([[1.0, 0.0, 3.0]])
    assert explained_variance(returns, returns, MASK[:1]) == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 3), 4 / 3), returns, MASK[:1]) == pytest.approx(0.0)
    assert explained_variance(torch.zeros(1, 3), torch.ones(1, 3), MASK[:1]) == 0.0  # nothing to explain


def test_registered_gae_passes_rewards_and_makes_whitened_token_advantages():
    estimator, cfg = ADVANTAGES.get("gae"), advantage_config()
    rewards = torch.tensor([[1.0, 0.0]])
    assert torch.equal(estimator(rewards, cfg), rewards)
    adv, ret = estimator.token_advantages(torch.tensor([1.0, 0.0]), torch.zeros(2, 3), MASK, cfg)
    assert torch.allclose(ret, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    assert torch.allclose(adv, masked_whiten(ret, MASK))  # V = 0: the advantages are the returns, whitened
    assert adv[MASK].mean().abs() < 1e-6


def test_advantage_options_are_checked():
    assert advantage_config(gamma=0.99, lam=0.95).gamma == 0.99
    with pytest.raises(UserError, match="expected some of: eps, gamma, lam"):
        advantage_config(lambda_=0.9)
    with pytest.raises(UserError, match="gamma"):
        advantage_config(gamma=1.5)


def test_policy_loss_takes_per_token_advantages():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.7, -4.0]])
    old = logp + torch.tensor([[0.1, -0.3, 0.0], [0.5, 0.0, 0.2]])
    per_seq = torch.tensor([0.7, -1.2])
    loss_fn = LOSSES.get("dapo")
    a, _ = loss_fn(logp, old, None, per_seq, MASK)
    b, _ = loss_fn(logp, old, None, per_seq[:, None].expand(2, 3), MASK)  # the same advantage on every token
    assert torch.allclose(a, b)
    varying = torch.tensor([[1.0, -1.0, 0.0], [0.0, 2.0, 5.0]])
    _, metrics = loss_fn(logp, old, None, varying, MASK)
    assert metrics["adv_mean"] == pytest.approx(2.0 / 5)  # over kept tokens only
    with pytest.raises(ValueError, match="adv must be"):
        loss_fn(logp, old, None, torch.zeros(2, 4), MASK)


def test_docstring_examples():
    assert doctest.testmod(gae_module).failed == 0
