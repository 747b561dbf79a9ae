"""Advantage estimators and policy losses: registered pure tensor functions (and PPO's critic side, GAE and the value loss).

The RL loop picks them by name (`ADVANTAGES.get(name)`, `LOSSES.get(name)` / `loss_config`), and
gets per-token log-probs and entropies from logits with `token_logprobs` / `token_entropy`.
Nothing here imports the training loop or the samplers.
"""

from r1zero.algo.advantages import ADVANTAGES, AdvantageConfig, advantage_config
from r1zero.algo.gae import (
    explained_variance,
    gae_advantages,
    masked_whiten,
    outcome_token_rewards,
    value_loss,
)
from r1zero.algo.logprobs import token_entropy, token_logprobs
from r1zero.algo.losses import (
    LOSSES,
    PolicyLoss,
    PolicyLossConfig,
    decoupled_weights,
    kl_k3,
    loss_config,
    policy_loss,
    tis_weights,
)

__all__ = [
    "ADVANTAGES",
    "LOSSES",
    "AdvantageConfig",
    "PolicyLoss",
    "PolicyLossConfig",
    "advantage_config",
    "decoupled_weights",
    "explained_variance",
    "gae_advantages",
    "kl_k3",
    "loss_config",
    "masked_whiten",
    "outcome_token_rewards",
    "policy_loss",
    "tis_weights",
    "token_entropy",
    "token_logprobs",
    "value_loss",
]
