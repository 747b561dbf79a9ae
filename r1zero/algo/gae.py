"""PPO's critic side: GAE advantages from a learned value model, and the clipped value loss.

GRPO's reason to exist (DeepSeekMath, DeepSeek-R1) is that it needs no critic: the group mean
stands in for the value baseline. This module is the thing it drops, so the two can be compared
on one budget. The registered advantage `gae` is PPO as TinyZero and verl run it on outcome
rewards: a critic gives a value V_t for every completion token, the reward sits on the last kept
token only, and

    delta_t = r_t + gamma * V_{t+1} - V_t           (V after the last token = 0)
    A_t     = delta_t + gamma * lam * A_{t+1}        (GAE, Schulman et al. 2016)
    R_t     = A_t + V_t                              (the critic's regression target)

then the advantages are whitened over the batch's kept tokens (verl's `masked_whiten`), and the
critic is fitted with the clipped value loss of `value_loss`.

Where this departs from the papers:
- gamma = lam = 1 by default (verl's default for outcome rewards): A_t = R - V_t, the Monte Carlo
  return minus the baseline. PPO's Atari defaults (0.99 / 0.95) discount a reward that arrives only
  at the end and would make early tokens' advantages smaller for no reason.
- Positions outside the mask (padding, tool output in multi-turn rollouts) are skipped: the
  recursion runs over kept tokens only, as if the others were not there, and they get 0.
- No KL-in-reward (InstructGPT, verl's `use_kl_in_reward`); a KL term, if wanted, is the loss's beta.
- `gae` as a registered estimator has the `(rewards[B, G], cfg)` signature of the others and returns
  the rewards unchanged: per-completion scores are all that exists before a critic has seen the
  tokens. Its `token_advantages` does the rest; the learner, which holds the critic, calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from r1zero.algo.advantages import ADVANTAGES, AdvantageConfig, _as_groups


def outcome_token_rewards(scores: Tensor, mask: Tensor) -> Tensor:
    """Per-token rewards (N, T) with each completion's score on its last kept token, 0 elsewhere.

    scores: (N,) one outcome reward per completion; mask: (N, T) bool, True = kept token. A row with
    no kept token gets no reward.

    >>> outcome_token_rewards(torch.tensor([1.0, 2.0]), torch.tensor([[True, True, False], [True, True, True]]))
    tensor([[0., 1., 0.],
            [0., 0., 2.]])
    """
    T = mask.shape[1]
    last = torch.where(mask, torch.arange(T, device=mask.device), -1).max(dim=1).values  # (N,) -1: none kept
    rewards = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)  # (N, T)
    rows = (last >= 0).nonzero().squeeze(-1)  # (N',)
    rewards[rows, last[rows]] = scores[rows].float()
    return rewards


def gae_advantages(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
                   lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over each row's kept tokens: (advantages, returns), both (N, T).

    rewards, values: (N, T) per-token rewards and the critic's values V_t; mask: (N, T) bool. The
    value after a row's last kept token is 0 (the episode ends). Masked positions are skipped and
    get 0 in both outputs.

    >>> adv, ret = gae_advantages(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.25, 0.75]]),
    ...                           torch.tensor([[True, True, True]]), gamma=1.0, lam=1.0)
    >>> adv, ret
    (tensor([[0.5000, 0.7500, 0.2500]]), tensor([[1., 1., 1.]]))
    """
    rewards, values = rewards.float(), values.float()
    N, T = rewards.shape
    next_value = torch.zeros(N, device=rewards.device)  # (N,) V of the next kept token; 0 past the end
    next_adv = torch.zeros(N, device=rewards.device)  # (N,)
    advantages = torch.zeros_like(rewards)  # (N, T)
    for t in reversed(range(T)):
        keep = mask[:, t]  # (N,)
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (N,)
        adv_t = delta + gamma * lam * next_adv  # (N,)
        advantages[:, t] = torch.where(keep, adv_t, 0.0)
        next_value = torch.where(keep, values[:, t], next_value)  # a skipped position passes the later one on
        next_adv = torch.where(keep, adv_t, next_adv)
    returns = torch.where(mask, advantages + values, 0.0)  # (N, T)
    return advantages, returns


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(x - mean) / (std + eps) over the kept entries (population std, as verl); 0 at masked ones.

    >>> masked_whiten(torch.tensor([[1.0, 3.0, 9.0]]), torch.tensor([[True, True, False]]))
    tensor([[-1.,  1.,  0.]])
    """
    kept = x[mask]  # (K,)
    if kept.numel() == 0:
        return torch.zeros_like(x)
    std = kept.std(correction=0)  # ()
    return torch.where(mask, (x - kept.mean()) / (std + eps), 0.0)  # (N, T)


def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
               cliprange_value: float) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped value loss, token mean over kept tokens: (loss, metrics).

        V_clip = old_V + clip(V - old_V, -c, c)
        loss   = 0.5 * mean_t max((V - R)^2, (V_clip - R)^2)

    values: (N, T) the critic being trained (gradients flow through it); old_values: (N, T) the
    critic's values when the batch was made (that made the advantages); returns: (N, T) targets R;
    mask: (N, T) bool. Metrics: value_loss, value_clip_frac (share of kept tokens where the clipped
    term won, so the token gave no gradient), value_mean.

    >>> loss, m = value_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]]),
    ...                      torch.tensor([[True, True]]), cliprange_value=0.5)
    >>> loss, m["value_clip_frac"]
    (tensor(0.3125), 0.5)
    """
    keep = mask.to(values.dtype)  # (N, T)
    n_kept = keep.sum().clamp(min=1)  # ()
    old_values, returns = old_values.detach(), returns.detach()
    clipped = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)  # (N, T)
    plain_sq = (values - returns) ** 2  # (N, T)
    clipped_sq = (clipped - returns) ** 2  # (N, T)
    loss = 0.5 * (torch.maximum(plain_sq, clipped_sq) * keep).sum() / n_kept  # ()
    with torch.no_grad():
        clip_frac = ((clipped_sq > plain_sq) & mask).sum() / n_kept
        value_mean = (values * keep).sum() / n_kept
    return loss, {"value_loss": loss.item(), "value_clip_frac": clip_frac.item(), "value_mean": value_mean.item()}


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor, eps: float = 1e-8) -> float:
    """1 - Var(R - V) / Var(R) over kept tokens: 1 for a perfect critic, 0 for one no better than the mean
    return, below 0 for worse. 0 when the returns hardly vary (Var(R) <= eps): there is nothing to explain.

    >>> explained_variance(torch.tensor([[0.0, 1.0, 0.5]]), torch.tensor([[0.0, 1.0, 1.0]]),
    ...                    torch.tensor([[True, True, True]]))
    0.75
    """
    kept_returns, kept_values = returns[mask].float(), values[mask].float()  # (K,)
    var_returns = kept_returns.var(correction=0) if kept_returns.numel() else torch.tensor(0.0)
    if var_returns <= eps:
        return 0.0
    return (1 - (kept_returns - kept_values).var(correction=0) / var_returns).item()


@dataclass(frozen=True)
class CriticAdvantage:
    """A registered advantage estimator that needs a critic (the learner builds one when the estimator
    has `token_advantages`). Called as the others are, it passes the per-completion rewards through."""

    def __call__(self, rewards: Tensor, cfg: AdvantageConfig) -> Tensor:
        return _as_groups(rewards)  # (B, G) scores; the critic turns them into per-token advantages

    def token_advantages(self, scores: Tensor, values: Tensor, mask: Tensor,
                         cfg: AdvantageConfig) -> tuple[Tensor, Tensor]:
        """(whitened advantages, returns), both (N, T), from scores (N,) and the critic's values (N, T)."""
        rewards = outcome_token_rewards(scores, mask)  # (N, T)
        advantages, returns = gae_advantages(rewards, values, mask, cfg.gamma, cfg.lam)  # (N, T), (N, T)
        return masked_whiten(advantages, mask), returns


ADVANTAGES.register("gae")(CriticAdvantage())
