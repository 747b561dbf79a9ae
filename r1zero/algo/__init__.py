"""Advantage estimators and policy losses: registered pure tensor functions.

The RL loop picks them by name (`ADVANTAGES.get(name)`, `LOSSES.get(name)` / `loss_config`), and
gets per-token log-probs and entropies from logits with `token_logprobs` / `token_entropy`.
Nothing here imports the training loop or the samplers.
"""

from r1zero.algo.advantages import ADVANTAGES, AdvantageConfig
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
    "decoupled_weights",
    "kl_k3",
    "loss_config",
    "policy_loss",
    "tis_weights",
    "token_entropy",
    "token_logprobs",
]
