"""Advantage estimators: turn the rewards of G samples per prompt into one advantage per sample.

Every estimator is a registered pure function `(rewards[B, G], cfg) -> adv[B, G]`, where row b
holds the G completions sampled for prompt b. Outcome rewards only: one scalar per completion,
broadcast over its tokens by the loss.

Where these depart from their papers:
- `grpo` (DeepSeekMath, Shao et al. 2024) divides by the *sample* standard deviation of the group
  (Bessel-corrected, `torch.std` default), as TRL and verl do; the paper just says "std". A group
  whose rewards are all equal gets advantage exactly 0 (not NaN), and so does a group of one (G = 1).
- Every group-centred estimator centres with `_centred`, which sets a group of equal rewards to exactly 0.
  Plain `r - mean(r)` does not: the float32 mean of eight rewards of 0.1 is off by an ulp, and dividing that
  by a std of ~1e-8 plus eps gave every completion of the group -0.0074 (rewards of 1.2: +0.106), a push
  on completions that carried no signal; TRL's `(r - mean) / (std + 1e-4)` has the same rounding.
  Exact zeros also let the learner skip those rows (`rl.skip_zero_advantage`).
- `reinforce_pp` (REINFORCE++ with a group baseline, Hu 2025; verl's `reinforce_plus_plus_baseline`)
  subtracts the group mean, then divides by the sample std of those centred values over the whole
  batch. The paper also subtracts the batch mean; after group centring it is exactly 0, so we skip it.
  verl whitens over tokens (longer completions weigh more); we whiten over completions.
- `rloo` (Ahmadian et al. 2024) needs G >= 2 and says so rather than inventing a baseline.
- `gae` (PPO with a critic) lives in r1zero.algo.gae: its advantages are per token, from a value model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from r1zero.errors import UserError
from r1zero.registry import Registry

ADVANTAGES: Registry = Registry("advantage")


@dataclass(frozen=True)
class AdvantageConfig:
    """Options shared by the advantage estimators."""

    # Added to a standard deviation before dividing, so a group (or batch) with equal rewards
    # gives 0 instead of NaN. Default 1e-6 as in verl; TRL uses 1e-4. (grpo, reinforce_pp)
    eps: float = 1e-6
    # GAE's discount and trace decay (Schulman et al. 2016). 1.0 and 1.0 as verl defaults for outcome
    # rewards: the advantage of every token is the final reward minus the critic's value. (gae)
    gamma: float = 1.0
    lam: float = 1.0

    def __post_init__(self) -> None:
        if not (0 <= self.gamma <= 1 and 0 <= self.lam <= 1):
            raise UserError(f"gamma {self.gamma}, lam {self.lam}: expected both in [0, 1]")


def _sample_std(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Bessel-corrected std; 0 (not NaN) when only one value is reduced."""
    n = x.numel() if dim is None else x.shape[dim]
    return x.std(dim=dim, correction=min(1, n - 1), keepdim=keepdim)


def _as_groups(rewards: Tensor) -> Tensor:
    if rewards.ndim != 2:
        shape = tuple(rewards.shape)
        raise ValueError(f"rewards must be (B, G): prompts x samples per prompt; got shape {shape}")
    return rewards if rewards.is_floating_point() else rewards.to(torch.float32)


def _centred(rewards: Tensor) -> Tensor:
    """(B, G) `r - mean(group)`, exactly 0 for a group whose rewards are all equal (see the module docstring).

    >>> rewards = torch.full((1, 8), 0.1)
    >>> bool((rewards - rewards.mean(dim=1, keepdim=True)).abs().max() > 0), _centred(rewards).abs().max().item()
    (True, 0.0)
    """
    equal = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)  # (B, 1)
    return torch.where(equal, 0.0, rewards - rewards.mean(dim=1, keepdim=True))  # (B, G)


@ADVANTAGES.register("grpo")
def grpo_advantages(rewards: Tensor, cfg: AdvantageConfig) -> Tensor:
    """GRPO: `(r - mean(group)) / (std(group) + eps)`, sample std.

    >>> grpo_advantages(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), AdvantageConfig()).round(decimals=4)
    tensor([[ 0.8660,  0.8660, -0.8660, -0.8660]])
    """
    rewards = _as_groups(rewards)  # (B, G)
    centred = _centred(rewards)  # (B, G)
    std = _sample_std(rewards, dim=1, keepdim=True)  # (B, 1)
    return centred / (std + cfg.eps)  # (B, G)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(rewards: Tensor, cfg: AdvantageConfig) -> Tensor:
    """Dr. GRPO (Liu et al. 2025): `r - mean(group)`; no std division, which biases towards
    easy and hard questions (groups with little spread).

    >>> dr_grpo_advantages(torch.tensor([[1.0, 1.0, 1.0, 0.0]]), AdvantageConfig())
    tensor([[ 0.2500,  0.2500,  0.2500, -0.7500]])
    """
    rewards = _as_groups(rewards)  # (B, G)
    return _centred(rewards)  # (B, G)


@ADVANTAGES.register("rloo")
def rloo_advantages(rewards: Tensor, cfg: AdvantageConfig) -> Tensor:
    """RLOO: `r_i - mean_{j != i} r_j`, the mean of the *other* samples of the same prompt.

    Equal to `G / (G - 1) * (r_i - mean(group))`, which is how it is computed.

    >>> rloo_advantages(torch.tensor([[1.0, 1.0, 1.0, 0.0]]), AdvantageConfig()).round(decimals=4)
    tensor([[ 0.3333,  0.3333,  0.3333, -1.0000]])
    """
    rewards = _as_groups(rewards)  # (B, G)
    g = rewards.shape[1]
    if g < 2:
        raise UserError(f"advantage 'rloo' needs at least 2 samples per prompt; got {g}")
    return _centred(rewards) * (g / (g - 1))  # (B, G)


@ADVANTAGES.register("reinforce_pp")
def reinforce_pp_advantages(rewards: Tensor, cfg: AdvantageConfig) -> Tensor:
    """REINFORCE++ (group baseline): `(r - mean(group)) / (std over the batch + eps)`.

    The std is the sample std of the group-centred rewards over all B * G completions, so one
    scale is shared by every prompt (unlike `grpo`, which rescales each group on its own).

    >>> reinforce_pp_advantages(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), AdvantageConfig()).round(decimals=4)
    tensor([[ 1.2247, -1.2247],
            [ 0.0000,  0.0000]])
    """
    rewards = _as_groups(rewards)  # (B, G)
    centred = _centred(rewards)  # (B, G)
    return centred / (_sample_std(centred) + cfg.eps)  # (B, G) / ()


def advantage_config(**options: object) -> AdvantageConfig:
    """An AdvantageConfig from `rl.advantage_options`; an unknown key names the valid ones.

    >>> advantage_config(lam=0.95).lam
    0.95
    """
    valid = [f.name for f in fields(AdvantageConfig)]
    if unknown := sorted(set(options) - set(valid)):
        raise UserError(f"unknown advantage option(s) {', '.join(unknown)}; expected some of: {', '.join(valid)}")
    return AdvantageConfig(**options)
