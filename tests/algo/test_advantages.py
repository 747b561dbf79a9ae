"""Advantage estimators against hand-computed groups, plus the registry contract."""

import doctest

import pytest
import torch

import r1zero.algo.advantages as advantages_module
from r1zero.algo import ADVANTAGES, AdvantageConfig
from r1zero.errors import UserError

CFG = AdvantageConfig()
# Two prompts, four samples each.
#   group 0: mean 0.5, deviations +-0.5, sample std sqrt(4 * 0.25 / 3) = sqrt(1/3) = 0.57735
#   group 1: mean 0.75, deviations (.25, .25, .25, -.75), sum of squares 0.75, sample std sqrt(0.25) = 0.5
REWARDS = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])


def test_grpo_hand_computed():
    adv = ADVANTAGES.get("grpo")(REWARDS, CFG)
    # group 0: +-0.5 / 0.57735 = +-0.866025; group 1: deviations / 0.5
    expected = torch.tensor([[0.866025, -0.866025, -0.866025, 0.866025], [0.5, 0.5, 0.5, -1.5]])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)


def test_grpo_uses_sample_std_like_torch_std():
    rewards = torch.rand(5, 8)
    adv = ADVANTAGES.get("grpo")(rewards, AdvantageConfig(eps=0.0))
    expected = (rewards - rewards.mean(1, keepdim=True)) / rewards.std(1, keepdim=True)  # unbiased, as TRL
    torch.testing.assert_close(adv, expected)


def test_dr_grpo_hand_computed():
    adv = ADVANTAGES.get("dr_grpo")(REWARDS, CFG)
    expected = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]])  # r - group mean
    torch.testing.assert_close(adv, expected)


def test_rloo_hand_computed():
    adv = ADVANTAGES.get("rloo")(REWARDS, CFG)
    # group 0: a 1 sees others {0, 0, 1} -> 1 - 1/3 = 2/3; a 0 sees {1, 0, 1} -> 0 - 2/3
    # group 1: a 1 sees {1, 1, 0} -> 1 - 2/3 = 1/3; the 0 sees {1, 1, 1} -> -1
    expected = torch.tensor([[2 / 3, -2 / 3, -2 / 3, 2 / 3], [1 / 3, 1 / 3, 1 / 3, -1.0]])
    torch.testing.assert_close(adv, expected)


def test_rloo_matches_explicit_leave_one_out():
    rewards = torch.rand(3, 5)
    others = (rewards.sum(1, keepdim=True) - rewards) / 4  # mean of the other 4
    torch.testing.assert_close(ADVANTAGES.get("rloo")(rewards, CFG), rewards - others)


def test_rloo_rejects_groups_of_one():
    with pytest.raises(UserError, match="at least 2"):
        ADVANTAGES.get("rloo")(torch.ones(3, 1), CFG)


def test_reinforce_pp_hand_computed():
    adv = ADVANTAGES.get("reinforce_pp")(REWARDS, CFG)
    # centred = dr_grpo's values, batch mean 0, sum of squares 4 * .25 + 3 * .0625 + .5625 = 1.75,
    # sample std over 8 values sqrt(1.75 / 7) = 0.5, so adv = centred / 0.5
    expected = torch.tensor([[1.0, -1.0, -1.0, 1.0], [0.5, 0.5, 0.5, -1.5]])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "reinforce_pp"])
def test_equal_rewards_and_single_samples_give_zero_not_nan(name):
    fn = ADVANTAGES.get(name)
    assert torch.equal(fn(torch.full((2, 4), 0.7), CFG), torch.zeros(2, 4))
    assert torch.equal(fn(torch.tensor([[1.0], [0.0]]), CFG), torch.zeros(2, 1))  # G = 1


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_equal_rewards_give_exactly_zero_whatever_float_rounding_does_to_the_mean(name):
    # A group of eight 0.1s has a float32 mean an ulp off 0.1: r - mean(r) was ~1e-8, and grpo's
    # division by (std ~1e-8) + eps turned that into -0.0074 for every completion of the group.
    fn = ADVANTAGES.get(name)
    values = [0.1, 0.2, 0.3, 0.7, 1.1, 1.2, 1.3, 2.1, 0.55]
    for g in range(2, 17):
        rewards = torch.tensor(values).unsqueeze(1).expand(-1, g)  # (9, G): each group all equal
        assert torch.equal(fn(rewards, CFG), torch.zeros(len(values), g)), (name, g)
    mixed = torch.tensor([[0.1] * 7 + [1.1], [0.1] * 8])  # one group with signal beside an equal one
    adv = fn(mixed, CFG)
    assert adv[0].abs().min() > 0.1 and torch.equal(adv[1], torch.zeros(8))


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "reinforce_pp"])
def test_every_estimator_is_zero_mean_per_group_and_accepts_int_rewards(name):
    adv = ADVANTAGES.get(name)(torch.tensor([[1, 0, 0], [1, 1, 0]]), CFG)
    assert adv.dtype == torch.float32 and adv.shape == (2, 3)
    torch.testing.assert_close(adv.sum(1), torch.zeros(2), atol=1e-6, rtol=0)


def test_rejects_flat_rewards():
    with pytest.raises(ValueError, match=r"\(B, G\)"):
        ADVANTAGES.get("grpo")(torch.ones(8), CFG)


def test_registry_lists_valid_names_and_rejects_duplicates():
    assert ADVANTAGES.names() == ["dr_grpo", "gae", "grpo", "reinforce_pp", "rloo"]
    with pytest.raises(UserError, match=r"unknown advantage 'ppo'.*dr_grpo, gae, grpo, reinforce_pp, rloo"):
        ADVANTAGES.get("ppo")
    with pytest.raises(ValueError, match="already registered"):
        ADVANTAGES.register("grpo")(lambda rewards, cfg: rewards)
    assert ADVANTAGES.get("grpo") is advantages_module.grpo_advantages


def test_docstring_examples():
    assert doctest.testmod(advantages_module).failed == 0
