"""Policy losses: hand-computed values for every registered variant, the on-policy gradient
against REINFORCE, clipping, the k3 KL, GSPO's sequence ratio, the off-policy corrections (TIS,
decoupled PPO, CISPO), and the registry contract."""

import doctest
import math
from dataclasses import replace

import pytest
import torch

import r1zero.algo.losses as losses_module
from r1zero.algo import (
    LOSSES,
    PolicyLoss,
    PolicyLossConfig,
    decoupled_weights,
    kl_k3,
    loss_config,
    policy_loss,
    token_logprobs,
)
from r1zero.errors import UserError

# Two sequences, three token slots; the last slot of sequence 0 is padding (its ratio 3.0 must
# count nowhere). Sequence 0 has A = +1, sequence 1 has A = -1.
RATIO = torch.tensor([[1.1, 1.5, 3.0], [0.9, 0.5, 1.0]])
MASK = torch.tensor([[True, True, False], [True, True, True]])
ADV = torch.tensor([1.0, -1.0])
OLD = torch.full((2, 3), -1.0)
LOGP = OLD + RATIO.log()
# With eps 0.2 / 0.2 the per-token losses -min(rho * A, clip(rho) * A) are
#   sequence 0 (A = +1): -min(1.1, 1.1) = -1.1;  -min(1.5, 1.2) = -1.2  (clipped high)
#   sequence 1 (A = -1): -min(-.9, -.9) = 0.9;   -min(-.5, -.8) = 0.8;  -min(-1, -1) = 1.0  (0.5 clipped low)
# With DAPO's eps_high 0.28 the clipped 1.2 becomes 1.28.


def run(name, ref=None, **overrides):
    return LOSSES.get(name)(LOGP, OLD, ref, ADV, MASK, loss_config(name, **overrides))


def test_grpo_hand_computed():
    loss, metrics = run("grpo")
    # seq_mean: sequence 0 mean (-1.1 - 1.2) / 2 = -1.15, sequence 1 (0.9 + 0.8 + 1.0) / 3 = 0.9
    assert loss.item() == pytest.approx((-1.15 + 0.9) / 2)  # -0.125
    # 2 of 5 kept tokens clipped (one high, one low); ratios of kept tokens sum to 5.0
    assert metrics == pytest.approx({"clip_frac": 0.4, "clip_frac_low": 0.2, "clip_frac_high": 0.2,
                                     "ratio_mean": 1.0, "ratio_max": 1.5, "adv_mean": 0.0})


def test_dapo_hand_computed():
    loss, metrics = run("dapo")
    # token_mean: (-1.1 - 1.28 + 0.9 + 0.8 + 1.0) / 5 kept tokens
    assert loss.item() == pytest.approx(0.32 / 5)  # 0.064
    assert metrics["clip_frac"] == pytest.approx(0.4)  # 1.5 > 1.28 still clips


def test_dr_grpo_hand_computed():
    loss, _ = run("dr_grpo", max_completion_length=4)
    # constant: (-1.1 - 1.2 + 0.9 + 0.8 + 1.0) / (N * L) = 0.4 / (2 * 4)
    assert loss.item() == pytest.approx(0.05)
    loss, _ = run("dr_grpo")  # unset: the padded width T = 3
    assert loss.item() == pytest.approx(0.4 / 6)
    with pytest.raises(ValueError, match="max_completion_length=2"):
        run("dr_grpo", max_completion_length=2)


def test_gspo_hand_computed():
    loss, metrics = run("gspo")
    # sequence ratios: exp(mean(log 1.1, log 1.5)) = sqrt(1.65) = 1.284523 and
    # exp(mean(log .9, log .5, log 1)) = 0.45 ** (1/3) = 0.766309; eps 3e-4 / 4e-4 clips both:
    #   sequence 0: -min(1.284523, 1.0004) = -1.0004;  sequence 1: -min(-0.766309, -0.9997) = 0.9997
    assert loss.item() == pytest.approx((-1.0004 + 0.9997) / 2, abs=1e-6)  # -0.00035
    assert metrics["clip_frac"] == pytest.approx(1.0)  # every kept token belongs to a clipped sequence
    assert metrics["ratio_max"] == pytest.approx(math.sqrt(1.65))
    assert metrics["ratio_mean"] == pytest.approx((2 * math.sqrt(1.65) + 3 * 0.45 ** (1 / 3)) / 5)


def test_grpo_with_kl_hand_computed():
    # ref - logp on kept tokens: [log 2, 0, .], [0, log .5, 0]
    #   k3(log 2) = 2 - log 2 - 1 = 0.306853,  k3(log .5) = .5 + log 2 - 1 = 0.193147,  k3(0) = 0
    # The padded slot gets a ref that would be huge, and must not count.
    ref = LOGP + torch.tensor([[math.log(2), 0.0, 50.0], [0.0, math.log(0.5), 0.0]])
    loss, metrics = run("grpo", ref=ref, beta=0.1)
    assert metrics["kl"] == pytest.approx(0.5 / 5)  # the two non-zero k3 sum to exactly 0.5
    kl_term = 0.1 * (0.306853 / 2 + 0.193147 / 3) / 2  # seq_mean of the k3 values, times beta
    assert loss.item() == pytest.approx(-0.125 + kl_term)


def test_registered_variants_and_their_defaults():
    assert LOSSES.names() == ["cispo", "dapo", "decoupled_ppo", "dr_grpo", "grpo", "gspo"]
    assert loss_config("grpo") == PolicyLossConfig(eps_low=0.2, eps_high=0.2, aggregation="seq_mean",
                                                   ratio_level="token", beta=0.0)
    assert loss_config("dapo") == PolicyLossConfig(eps_high=0.28, aggregation="token_mean")
    assert loss_config("dr_grpo").aggregation == "constant"
    assert loss_config("gspo") == PolicyLossConfig(eps_low=3e-4, eps_high=4e-4, ratio_level="sequence")
    assert loss_config("decoupled_ppo") == PolicyLossConfig(aggregation="token_mean", decoupled=True)
    assert loss_config("cispo") == PolicyLossConfig(eps_low=1.0, eps_high=4.0, aggregation="token_mean",
                                                    objective="cispo")


def test_registry_rejects_unknown_and_duplicate_names():
    with pytest.raises(UserError, match=r"unknown policy loss 'ppo'.*cispo, dapo, decoupled_ppo, dr_grpo, grpo, gspo"):
        LOSSES.get("ppo")
    with pytest.raises(UserError, match="unknown policy loss 'ppo'"):
        loss_config("ppo")
    with pytest.raises(ValueError, match="already registered"):
        LOSSES.register("grpo")(PolicyLoss(PolicyLossConfig()))


def test_loss_config_overrides_and_validation():
    cfg = loss_config("dapo", beta=0.001, max_completion_length=512)
    assert (cfg.eps_high, cfg.aggregation) == (0.28, "token_mean")
    assert (cfg.beta, cfg.max_completion_length) == (0.001, 512)
    with pytest.raises(UserError, match=r"unknown policy loss option.*epsilon.*eps_low, eps_high"):
        loss_config("grpo", epsilon=0.3)
    with pytest.raises(UserError, match=r"aggregation 'sum'.*token_mean, seq_mean, constant"):
        loss_config("grpo", aggregation="sum")
    with pytest.raises(UserError, match="ratio_level"):
        PolicyLossConfig(ratio_level="group")
    with pytest.raises(UserError, match="beta"):
        PolicyLossConfig(beta=-1.0)
    with pytest.raises(UserError, match="eps_low"):
        PolicyLossConfig(eps_low=1.5)
    with pytest.raises(UserError, match=r"objective 'ppo'.*clipped, cispo"):
        PolicyLossConfig(objective="ppo")
    with pytest.raises(UserError, match="behav_weight_cap"):
        loss_config("decoupled_ppo", behav_weight_cap=0.0)


def test_a_given_config_wins_over_the_variant_defaults():
    via_grpo, _ = LOSSES.get("grpo")(LOGP, OLD, None, ADV, MASK, loss_config("dapo"))
    assert via_grpo.item() == pytest.approx(run("dapo")[0].item())
    assert LOSSES.get("dapo")(LOGP, OLD, None, ADV, MASK)[0].item() == pytest.approx(0.064)  # cfg=None


# --- gradients -----------------------------------------------------------------------------------

def small_policy(seed=0, n=3, t=5, v=7):
    """Logits as a leaf, sampled ids, a ragged mask (lengths 5, 2, 4) and random advantages."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, t, v, generator=g).requires_grad_()
    ids = torch.randint(0, v, (n, t), generator=g)
    mask = torch.arange(t) < torch.tensor([5, 2, 4]).unsqueeze(1)  # (N, T)
    adv = torch.randn(n, generator=g)
    return logits, ids, mask, adv


def reinforce_weights(aggregation, mask, max_len):
    n = mask.shape[0]
    lengths = mask.sum(1, keepdim=True).float()  # (N, 1)
    return {"token_mean": torch.full_like(lengths, 1 / mask.sum().item()),
            "seq_mean": 1 / (n * lengths),
            "constant": torch.full_like(lengths, 1 / (n * max_len))}[aggregation]  # (N, 1)


@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean", "constant"])
def test_on_policy_gradient_is_reinforce(aggregation, ratio_level):
    # One optimisation step per batch (old_logp = logp.detach()): rho = 1 and never clipped, so
    # grad(loss) = grad(-sum_t w_t * A * logp_t) with the aggregation's per-token weights w.
    # For the sequence ratio, grad(rho_seq) = mean_t grad(logp_t), which gives the same weights.
    logits, ids, mask, adv = small_policy()
    cfg = PolicyLossConfig(aggregation=aggregation, ratio_level=ratio_level, max_completion_length=8)
    logp = token_logprobs(logits, ids)  # (N, T)
    loss, metrics = policy_loss(logp, logp.detach(), None, adv, mask, cfg)
    (grad,) = torch.autograd.grad(loss, logits)

    weights = reinforce_weights(aggregation, mask, 8)  # (N, 1)
    reinforce = -(adv.unsqueeze(1) * token_logprobs(logits, ids) * weights * mask).sum()
    (expected,) = torch.autograd.grad(reinforce, logits)
    torch.testing.assert_close(grad, expected)
    assert metrics["clip_frac"] == 0.0 and metrics["ratio_max"] == pytest.approx(1.0)


def test_clipped_tokens_get_no_gradient_and_clip_fraction_counts_kept_tokens_only():
    # Four one-token sequences plus a padded second slot whose ratio 1.5 would clip for A > 0.
    #   row 0: rho 1.5, A +1 -> clipped high, no gradient
    #   row 1: rho 0.5, A -1 -> clipped low, no gradient
    #   row 2: rho 1.5, A -1 -> -min(-1.5, -1.2) = 1.5, unclipped: d/dlogp = rho * 1 / 4 rows = 0.375
    #   row 3: rho 0.5, A +1 -> -min(0.5, 0.8) = -0.5, unclipped: d/dlogp = -0.5 / 4 = -0.125
    ratio = torch.tensor([[1.5, 1.5], [0.5, 1.5], [1.5, 1.5], [0.5, 1.5]])
    mask = torch.tensor([[True, False]] * 4)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    old = torch.full((4, 2), -2.0)
    logp = (old + ratio.log()).requires_grad_()
    loss, metrics = policy_loss(logp, old, None, adv, mask, loss_config("grpo"))
    loss.backward()
    expected = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.375, 0.0], [-0.125, 0.0]])
    torch.testing.assert_close(logp.grad, expected)
    clip = (metrics["clip_frac"], metrics["clip_frac_low"], metrics["clip_frac_high"])
    assert clip == pytest.approx((0.5, 0.25, 0.25))


def test_gspo_clips_whole_sequences():
    # Sequence 0 (A = +1) has ratio sqrt(1.65) > 1.0004: every token of it loses its gradient.
    logp = LOGP.clone().requires_grad_()
    loss, _ = policy_loss(logp, OLD, None, torch.tensor([1.0, 1.0]), MASK, loss_config("gspo"))
    loss.backward()
    assert torch.all(logp.grad[0] == 0)
    assert torch.all(logp.grad[1][MASK[1]] != 0)  # sequence 1's ratio 0.766 < 1: unclipped for A > 0


def test_gspo_sequence_ratio_is_exp_of_masked_mean_log_ratio():
    logits, ids, mask, _ = small_policy(seed=1)
    logp = token_logprobs(logits, ids).detach()  # (N, T)
    old = logp + 0.3 * torch.randn(logp.shape, generator=torch.Generator().manual_seed(2))  # (N, T)
    old = torch.where(mask, old, 123.0)  # padding must not enter the mean
    expected = torch.stack([(logp[i][mask[i]] - old[i][mask[i]]).mean().exp() for i in range(3)])  # (N,)
    # With a clip range wider than any ratio and A = 1, the seq_mean loss is -mean_i(rho_i).
    cfg = PolicyLossConfig(ratio_level="sequence", eps_low=0.99, eps_high=100.0)
    loss, metrics = policy_loss(logp, old, None, torch.ones(3), mask, cfg)
    assert loss.item() == pytest.approx(-expected.mean().item())
    assert metrics["ratio_max"] == pytest.approx(expected.max().item())


# --- KL ------------------------------------------------------------------------------------------

def test_k3_is_zero_at_the_reference_and_positive_elsewhere():
    logp = torch.randn(4, 6)
    assert torch.equal(kl_k3(logp, logp), torch.zeros(4, 6))
    other = logp + torch.randn(4, 6)
    assert torch.all(kl_k3(logp, other) > 0)
    _, metrics = policy_loss(logp, logp, logp, torch.ones(4), torch.ones(4, 6, dtype=torch.bool),
                             loss_config("grpo", beta=0.001))
    assert metrics["kl"] == 0.0


def test_k3_gradient():
    # d/dlogp [exp(ref - logp) - (ref - logp) - 1] = 1 - exp(ref - logp); with A = 0 only the KL
    # term moves, and token_mean spreads beta over the 5 kept tokens.
    g = torch.Generator().manual_seed(3)
    logp = torch.randn(2, 3, generator=g).requires_grad_()
    ref = torch.randn(2, 3, generator=g)
    cfg = PolicyLossConfig(aggregation="token_mean", beta=0.5)
    loss, _ = policy_loss(logp, logp.detach(), ref, torch.zeros(2), MASK, cfg)
    loss.backward()
    expected = 0.5 * (1 - (ref - logp.detach()).exp()) * MASK / 5
    torch.testing.assert_close(logp.grad, expected)


def test_beta_zero_needs_no_reference_and_beta_positive_does():
    loss, metrics = run("grpo")
    assert "kl" not in metrics and torch.isfinite(loss)
    _, metrics = run("grpo", ref=LOGP)  # a reference given with beta = 0 is logged, not trained on
    assert metrics["kl"] == 0.0
    with pytest.raises(ValueError, match="needs ref_logp"):
        run("grpo", beta=0.001)


# --- robustness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["grpo", "dapo", "dr_grpo", "gspo", "decoupled_ppo", "cispo"])
def test_padding_contents_change_nothing(name):
    # Garbage log-probs at padded positions (exp would overflow) give the same loss and gradient.
    logits, ids, mask, adv = small_policy(seed=4)
    logp = token_logprobs(logits, ids)  # (N, T)
    old = logp.detach() + 0.1
    ref = logp.detach() - 0.2
    cfg = loss_config(name, beta=0.01)
    clean, _ = policy_loss(logp, old, ref, adv, mask, cfg)
    (clean_grad,) = torch.autograd.grad(clean, logits, retain_graph=True)
    junk = torch.where(mask, 0.0, 1e4)  # (N, T)
    dirty, _ = policy_loss(torch.where(mask, logp, -1e4), old - junk, ref + junk, adv, mask, cfg)
    (dirty_grad,) = torch.autograd.grad(dirty, logits)
    torch.testing.assert_close(dirty, clean)
    torch.testing.assert_close(dirty_grad, clean_grad)


def test_input_shapes_are_checked():
    with pytest.raises(ValueError, match="adv must be"):
        policy_loss(LOGP, OLD, None, ADV.unsqueeze(1), MASK, loss_config("grpo"))  # (N, 1): neither (N,) nor (N, T)
    with pytest.raises(ValueError, match="mask must be bool"):
        policy_loss(LOGP, OLD, None, ADV, MASK.float(), loss_config("grpo"))
    with pytest.raises(ValueError, match="old_logp has shape"):
        policy_loss(LOGP, OLD[:, :2], None, ADV, MASK, loss_config("grpo"))


def test_docstring_examples():
    assert doctest.testmod(losses_module).failed == 0


def test_tis_weights_hand_computed():
    from r1zero.algo import tis_weights

    trainer = torch.tensor([[-1.0, -2.0, -0.5], [-3.0, -1.0, 0.0]])
    sampler = torch.tensor([[-1.5, -1.0, -0.5], [-1.0, -1.2, 9.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # exp(0.5) = 1.6487 -> capped at 1.5; exp(-1) = 0.3679; exp(0) = 1; exp(-2) = 0.1353; exp(0.2) = 1.2214;
    # the padded slot (whose sampler log-prob 9.0 is garbage) weighs 0.
    expected = torch.tensor([[1.5, math.exp(-1), 1.0], [math.exp(-2), math.exp(0.2), 0.0]])
    assert torch.allclose(tis_weights(trainer, sampler, mask, cap=1.5), expected)


def test_tis_weight_scales_each_tokens_surrogate_and_not_the_kl():
    # DAPO token-mean over the 5 kept tokens of the shared example; per-token losses
    # [-1.1, -1.28, (pad)], [0.9, 0.8, 1.0]. Weights w: [2, 0.5, 7], [1, 0, 3].
    w = torch.tensor([[2.0, 0.5, 7.0], [1.0, 0.0, 3.0]])
    loss, _ = LOSSES.get("dapo")(LOGP, OLD, None, ADV, MASK, loss_config("dapo"), token_weight=w)
    assert loss.item() == pytest.approx((-1.1 * 2 - 1.28 * 0.5 + 0.9 * 1 + 0.8 * 0 + 1.0 * 3) / 5)  # 0.212
    # With the KL term on, only the surrogate is weighted: the KL adds beta * (unweighted mean k3).
    ref = LOGP - 0.3
    loss_kl, _ = LOSSES.get("dapo")(LOGP, OLD, ref, ADV, MASK, loss_config("dapo", beta=0.5), token_weight=w)
    k3 = math.exp(-0.3) + 0.3 - 1  # 0.0408 on every kept token
    assert loss_kl.item() - loss.item() == pytest.approx(0.5 * k3)
    weighted = LOGP.clone().requires_grad_()
    policy_loss(weighted, OLD, None, ADV, MASK, loss_config("dapo"), token_weight=w)[0].backward()
    assert weighted.grad[1, 1] == 0 and weighted.grad[0, 2] == 0  # zero weight, padding: no gradient


# --- decoupled PPO -------------------------------------------------------------------------------

# Behaviour weights pi_prox / pi_behav on the shared example; the padded slot's 9.0 must count nowhere.
BEHAV_W = torch.tensor([[2.0, 0.5, 9.0], [1.0, 1.5, 0.25]])
BEHAV = OLD - BEHAV_W.log()  # the sampler's log-probs; OLD is now the proximal policy's


def test_decoupled_ppo_hand_computed():
    # The ratio is against pi_prox (OLD): the shared per-token losses [-1.1, -1.2, .], [0.9, 0.8, 1.0]
    # (eps 0.2 / 0.2), each times its behaviour weight, token-mean over 5 kept tokens:
    #   (-1.1 * 2 - 1.2 * 0.5 + 0.9 * 1 + 0.8 * 1.5 + 1.0 * 0.25) / 5 = -0.45 / 5
    logp = LOGP.clone().requires_grad_()
    loss, metrics = LOSSES.get("decoupled_ppo")(logp, BEHAV, None, ADV, MASK, prox_logp=OLD)
    assert loss.item() == pytest.approx(-0.09)
    assert metrics == pytest.approx({"clip_frac": 0.4, "clip_frac_low": 0.2, "clip_frac_high": 0.2,
                                     "ratio_mean": 1.0, "ratio_max": 1.5, "adv_mean": 0.0,
                                     "behav_weight_mean": 1.05, "behav_weight_max": 2.0, "behav_dropped_frac": 0.0})
    loss.backward()
    # d/dlogp of -rho * A * w / 5: token (0, 0) -1.1 * 2 / 5; the clip around pi_prox zeroes (0, 1) and (1, 1)
    # although their ratios to pi_behav, 1.5 * 0.5 = 0.75 and 0.5 * 1.5 = 0.75, would not clip.
    expected = torch.tensor([[-0.44, 0.0, 0.0], [0.9 / 5, 0.0, 0.25 / 5]])
    torch.testing.assert_close(logp.grad, expected)

    # AReaL's cap drops the token of weight 2 (its weight becomes 0): (-0.6 + 0.9 + 1.2 + 0.25) / 5
    loss, metrics = LOSSES.get("decoupled_ppo")(LOGP, BEHAV, None, ADV, MASK,
                                                loss_config("decoupled_ppo", behav_weight_cap=1.8), prox_logp=OLD)
    assert loss.item() == pytest.approx(0.35)
    assert (metrics["behav_weight_max"], metrics["behav_dropped_frac"]) == pytest.approx((1.5, 0.2))


def test_decoupled_weights_hand_computed():
    prox = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 5.0]])
    behav = torch.tensor([[-1.5, -1.0, -3.0], [-0.5, -1.0, -50.0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # exp(0.5) = 1.6487, exp(-1) = 0.3679, exp(3) = 20.09 > cap 10 -> dropped; exp(0) = 1, exp(1) = 2.7183
    expected = torch.tensor([[math.exp(0.5), math.exp(-1), 0.0], [1.0, math.e, 0.0]])
    torch.testing.assert_close(decoupled_weights(prox, behav, mask, cap=10.0), expected)
    assert decoupled_weights(prox, behav, mask)[0, 2].item() == pytest.approx(math.exp(3))  # no cap


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean", "constant"])
def test_decoupled_ppo_with_prox_equal_to_behaviour_is_the_plain_clipped_surrogate(aggregation):
    logits, ids, mask, adv = small_policy(seed=5)
    logp = token_logprobs(logits, ids)  # (N, T)
    behav = logp.detach() + 0.3 * torch.randn(logp.shape, generator=torch.Generator().manual_seed(6))  # (N, T)
    cfg = loss_config("decoupled_ppo", aggregation=aggregation, max_completion_length=8)
    decoupled, metrics = policy_loss(logp, behav, None, adv, mask, cfg, prox_logp=behav.clone())
    (decoupled_grad,) = torch.autograd.grad(decoupled, logits, retain_graph=True)
    plain, plain_metrics = policy_loss(logp, behav, None, adv, mask, replace(cfg, decoupled=False))
    (plain_grad,) = torch.autograd.grad(plain, logits)
    torch.testing.assert_close(decoupled, plain)
    torch.testing.assert_close(decoupled_grad, plain_grad)
    assert metrics == pytest.approx(plain_metrics | {"behav_weight_mean": 1.0, "behav_weight_max": 1.0,
                                                     "behav_dropped_frac": 0.0})
    assert plain_metrics["clip_frac"] > 0  # the example exercises the clip


# --- CISPO ---------------------------------------------------------------------------------------

def test_cispo_hand_computed():
    # eps 0.2 / 0.2: clipped weights [1.1, 1.2, .], [0.9, 0.8, 1.0]; per token -w * A * logp,
    # logp = -1 + log(rho); token-mean over the 5 kept tokens.
    logp = LOGP.clone().requires_grad_()
    loss, metrics = LOSSES.get("cispo")(logp, OLD, None, ADV, MASK, loss_config("cispo", eps_low=0.2, eps_high=0.2))
    lp = [[-1 + math.log(1.1), -1 + math.log(1.5)], [-1 + math.log(0.9), -1 + math.log(0.5), -1.0]]
    expected_loss = (-(1.1 * lp[0][0] + 1.2 * lp[0][1]) + (0.9 * lp[1][0] + 0.8 * lp[1][1] + 1.0 * lp[1][2])) / 5
    assert loss.item() == pytest.approx(expected_loss)  # -0.34... - (-0.66...) ... see the numbers above
    # CISPO counts a clipped weight on either side whatever the sign of A: 1.5 high, 0.5 low.
    assert metrics == pytest.approx({"clip_frac": 0.4, "clip_frac_low": 0.2, "clip_frac_high": 0.2,
                                     "ratio_mean": 1.0, "ratio_max": 1.5, "adv_mean": 0.0})
    loss.backward()
    expected = torch.tensor([[-1.1, -1.2, 0.0], [0.9, 0.8, 1.0]]) / 5  # -w * A / 5; nothing at padding
    torch.testing.assert_close(logp.grad, expected)


def test_cispo_keeps_the_gradient_of_tokens_that_ppo_clips():
    # The four one-token sequences of the PPO clipping test: PPO zeroes rows 0 (rho 1.5, A +1) and
    # 1 (rho 0.5, A -1). CISPO's gradient is -clip(rho) * A / 4 on every row (token-mean):
    #   row 0: -1.2 / 4,  row 1: 0.8 / 4,  row 2 (rho 1.5, A -1): 1.2 / 4,  row 3 (rho 0.5, A +1): -0.8 / 4
    ratio = torch.tensor([[1.5, 1.5], [0.5, 1.5], [1.5, 1.5], [0.5, 1.5]])
    mask = torch.tensor([[True, False]] * 4)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    old = torch.full((4, 2), -2.0)
    cfg = loss_config("cispo", eps_low=0.2, eps_high=0.2)
    grads = {}
    for name, c in (("ppo", replace(cfg, objective="clipped")), ("cispo", cfg)):
        logp = (old + ratio.log()).requires_grad_()
        loss, metrics = policy_loss(logp, old, None, adv, mask, c)
        loss.backward()
        grads[name] = logp.grad[:, 0]
    assert torch.equal(grads["ppo"][:2], torch.zeros(2))
    torch.testing.assert_close(grads["cispo"], torch.tensor([-0.3, 0.2, 0.3, -0.2]))
    assert (metrics["clip_frac"], metrics["clip_frac_low"], metrics["clip_frac_high"]) == (1.0, 0.5, 0.5)


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean", "constant"])
def test_cispo_on_policy_gradient_is_reinforce(aggregation):
    logits, ids, mask, adv = small_policy(seed=7)
    cfg = loss_config("cispo", aggregation=aggregation, max_completion_length=8)
    logp = token_logprobs(logits, ids)  # (N, T)
    (grad,) = torch.autograd.grad(policy_loss(logp, logp.detach(), None, adv, mask, cfg)[0], logits)
    reinforce = -(adv.unsqueeze(1) * token_logprobs(logits, ids) * reinforce_weights(aggregation, mask, 8) * mask).sum()
    (expected,) = torch.autograd.grad(reinforce, logits)
    torch.testing.assert_close(grad, expected)
