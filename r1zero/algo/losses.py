"""Clipped policy-gradient losses: GRPO, DAPO, Dr. GRPO, GSPO, decoupled PPO and CISPO as options of one function.

`policy_loss(logp, old_logp, ref_logp, adv, mask, cfg) -> (loss, metrics)` computes, per kept token,

    rho = exp(logp - old_logp)                       (or GSPO's one ratio per sequence)
    surrogate = min(rho * A, clip(rho, 1 - eps_low, 1 + eps_high) * A)
    per_token = -surrogate + beta * k3(ref, logp)    k3 = exp(ref - logp) - (ref - logp) - 1

Off-policy variants change two things: with `prox_logp` given (decoupled PPO), rho is taken against
the proximal policy, exp(logp - prox_logp), and the surrogate is weighted by pi_prox / pi_behav
(old_logp being the behaviour policy's); with `objective="cispo"` the surrogate is
sg(clip(rho)) * A * logp, whose gradient no clip ever zeroes.

and aggregates it as the config says. The registered names in `LOSSES` are that same function with
different defaults (`loss_config(name, **overrides)` gives a variant's config with fields changed);
nothing calling them needs to know which one it has.

Where this departs from the papers:
- GRPO (DeepSeekMath; DeepSeek-R1): the objective and k3 KL are the paper's, but `grpo` defaults
  to beta = 0 (no reference model), as TRL does; R1-Zero used beta = 0.001 (pass `beta=0.001`).
- DAPO (Yu et al. 2025): only clip-higher and token-mean aggregation live here; overlong reward
  shaping and dynamic sampling act on rewards and batches, so they belong to the RL loop.
- Dr. GRPO (Liu et al. 2025): the constant normaliser is `max_completion_length`; left unset it
  falls back to the padded width T of the batch (verl's default), which is constant only if
  rollouts are padded to the generation budget.
- GSPO (Zheng et al. 2025): the sequence ratio is used directly (the sequence-level objective,
  not the GSPO-token rewrite; their gradients agree when A is per sequence). The paper has no KL;
  with beta > 0 we add the per-token k3 term. With "token_mean" aggregation a sequence would weigh
  by its length; `gspo` uses "seq_mean", which is the paper's objective.
- TIS (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL training"):
  when the sampler (vLLM) and the trainer disagree on log-probs, the RL loop takes old_logp from
  a trainer forward pass and passes `token_weight = tis_weights(...)`, min(pi_trainer / pi_sampler,
  cap), which scales the surrogate of each token (not the KL term), as verl does.
- Decoupled PPO (AReaL, Fu et al. 2025, arXiv 2505.24298): the learner passes `prox_logp`, a
  no-grad forward of its own policy before this update; the behaviour (sampler) policy enters only
  through the weight pi_prox / pi_behav, a constant per token, and the clip is around pi_prox. As in
  AReaL, `behav_weight_cap` drops (weight 0) tokens whose weight exceeds it rather than truncating
  them; unset (AReaL's default) nothing is dropped. Without `prox_logp` it is the plain surrogate
  (pi_prox = pi_behav). `decoupled_ppo` takes AReaL's eps 0.2 / 0.2 and token-mean aggregation.
- CISPO (MiniMax-M1, arXiv 2506.13585): per token -sg(clip(rho, 1 - eps_low, 1 + eps_high)) * A *
  logp, REINFORCE weighted by the clipped importance weight, so tokens whose ratio left the range
  keep their gradient. As the paper, no lower bound (eps_low = 1: the weight is clipped below at 0)
  and token-mean aggregation; the paper does not publish its eps_high, `cispo` takes 4.0 (weights
  at most 5), our choice. The loss value (it contains logp) is not comparable with the surrogate's;
  its gradient is. The paper's optional token mask (its "unified" form) is not implemented.
- Everywhere: log-ratios are clamped to [-20, 20] before exp (as verl does) and zeroed at masked
  positions, so padding with arbitrary log-probs cannot produce inf or NaN. No dual clip, no
  entropy bonus.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from r1zero.errors import UserError
from r1zero.registry import Registry

AGGREGATIONS = ("token_mean", "seq_mean", "constant")
RATIO_LEVELS = ("token", "sequence")
OBJECTIVES = ("clipped", "cispo")
MAX_LOG_RATIO = 20.0  # exp(20) ~ 5e8: far past any clip range, still finite in float32


@dataclass(frozen=True)
class PolicyLossConfig:
    """Options of `policy_loss`. The defaults are GRPO's; registered variants change some."""

    # Lower clip range: rho is clipped below at 1 - eps_low. 0.2 (PPO, GRPO, DAPO); GSPO 3e-4;
    # CISPO 1.0 (no lower bound on the importance weight).
    eps_low: float = 0.2
    # Upper clip range: rho is clipped above at 1 + eps_high. 0.2 (PPO, GRPO); DAPO's
    # "clip-higher" 0.28 lets unlikely tokens grow, against entropy collapse; GSPO 4e-4.
    eps_high: float = 0.2
    # How per-token losses become one number (all over kept tokens only):
    #   "seq_mean"   mean over each sequence's tokens, then over sequences (GRPO); long and short
    #                completions weigh the same, so each token of a long one counts less.
    #   "token_mean" sum over all tokens / number of tokens in the batch (DAPO).
    #   "constant"   sum over all tokens / (N * max_completion_length) (Dr. GRPO): no length bias.
    aggregation: str = "seq_mean"
    # The constant of "constant" aggregation: the generation budget in tokens (Dr. GRPO).
    # None: the padded width T of the batch (verl's default). Unused by other aggregations.
    max_completion_length: int | None = None
    # "token": one ratio per token (PPO, GRPO, DAPO). "sequence": one ratio per sequence,
    # exp(mean over its kept tokens of logp - old_logp), clipped as a whole (GSPO). GSPO's
    # sequence ratios sit much closer to 1, hence its far smaller clip ranges (3e-4 / 4e-4).
    ratio_level: str = "token"
    # Weight of the per-token k3 KL to the reference policy, exp(ref - logp) - (ref - logp) - 1
    # (Schulman's k3, as in DeepSeekMath). DeepSeekMath 0.04, R1-Zero 0.001; 0 (TRL's default,
    # DAPO, Dr. GRPO, GSPO) drops the term and ref_logp may be None.
    beta: float = 0.0
    # "clipped": PPO's min(rho * A, clip(rho) * A); a token whose ratio left the range on the side
    # that would help gets no gradient. "cispo": -sg(clip(rho)) * A * logp (MiniMax-M1); every
    # kept token keeps its gradient, scaled by its clipped importance weight.
    objective: str = "clipped"
    # Decoupled PPO (AReaL): the learner computes its own log-probs before the update (pi_prox) and
    # passes them as `prox_logp`; the ratio is taken against them and each token is weighted by
    # pi_prox / pi_behav. False: no such forward pass, the ratio is against old_logp.
    decoupled: bool = False
    # Decoupled PPO: tokens whose pi_prox / pi_behav exceeds this are dropped (AReaL's
    # behav_imp_weight_cap). None: no cap.
    behav_weight_cap: float | None = None

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise UserError(f"aggregation {self.aggregation!r}: expected one of {', '.join(AGGREGATIONS)}")
        if self.ratio_level not in RATIO_LEVELS:
            raise UserError(f"ratio_level {self.ratio_level!r}: expected one of {', '.join(RATIO_LEVELS)}")
        if self.objective not in OBJECTIVES:
            raise UserError(f"objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if not 0 <= self.eps_low <= 1 or self.eps_high < 0:
            raise UserError(f"clip range: expected 0 <= eps_low <= 1 and eps_high >= 0; got "
                            f"eps_low={self.eps_low}, eps_high={self.eps_high}")
        if self.beta < 0:
            raise UserError(f"beta {self.beta}: expected >= 0")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise UserError(f"max_completion_length {self.max_completion_length}: expected a positive int")
        if self.behav_weight_cap is not None and self.behav_weight_cap <= 0:
            raise UserError(f"behav_weight_cap {self.behav_weight_cap}: expected > 0 (or unset: no cap)")


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi || ref) from samples of pi: >= 0, 0 where they agree."""
    log_ref_ratio = ref_logp - logp  # (N, T)
    return log_ref_ratio.exp() - log_ref_ratio - 1  # (N, T)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    adv: Tensor,
    mask: Tensor,
    cfg: PolicyLossConfig,
    token_weight: Tensor | None = None,
    prox_logp: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate or CISPO term (+ beta * k3 KL), aggregated; gradients flow through `logp` only.

    logp, old_logp, ref_logp: (N, T) log-probs of the sampled tokens under the policy being
    trained, the policy that sampled them (the behaviour policy), and the reference policy.
    adv: (N,) one advantage per sequence, or (N, T) one per token (GAE).
    mask: (N, T) bool, True = completion token that counts.
    token_weight: (N, T) or None, a constant weight on each token's surrogate (truncated
    importance sampling, `tis_weights`). prox_logp: (N, T) or None, the proximal policy's log-probs
    (decoupled PPO): rho is taken against them and the surrogate weighted by pi_prox / pi_behav.

    Returns the scalar loss and metrics over kept tokens: clip_frac (share where the clip was
    active: for "clipped", the token got no gradient from the surrogate; for "cispo", its weight
    was clipped), clip_frac_low / clip_frac_high, ratio_mean, ratio_max (the importance weight
    rho), adv_mean, kl (mean k3, when ref_logp is given), and with prox_logp behav_weight_mean,
    behav_weight_max (pi_prox / pi_behav) and behav_dropped_frac (above `behav_weight_cap`).
    """
    _check_inputs(logp, old_logp, ref_logp, adv, mask, cfg, prox_logp)
    keep = mask.to(logp.dtype)  # (N, T) 1.0 = kept
    anchor = old_logp if prox_logp is None else prox_logp  # (N, T): the policy the clip is around
    log_ratio = torch.where(mask, logp - anchor.detach(), 0.0)  # (N, T); 0 at padding
    if cfg.ratio_level == "sequence":
        seq_log_ratio = log_ratio.sum(-1) / keep.sum(-1).clamp(min=1)  # (N,) mean over kept tokens
        log_ratio = seq_log_ratio.unsqueeze(-1).expand_as(logp)  # (N, T): one ratio per sequence
    ratio = log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO).exp()  # (N, T)
    a = adv.detach().to(logp.dtype)
    a = a.unsqueeze(-1) if a.ndim == 1 else a  # (N, 1) or (N, T)
    clipped_ratio = ratio.clamp(1 - cfg.eps_low, 1 + cfg.eps_high)  # (N, T)
    if cfg.objective == "cispo":
        # d/dlogp = clip(rho) * A: the PPO gradient inside the range, a capped one outside it
        surrogate = clipped_ratio.detach() * a * torch.where(mask, logp, 0.0)  # (N, T)
    else:
        surrogate = torch.minimum(ratio * a, clipped_ratio * a)  # (N, T)
    behav = None if prox_logp is None else decoupled_weights(prox_logp, old_logp, mask, cfg.behav_weight_cap)
    for weight in (token_weight, behav):
        if weight is not None:
            surrogate = surrogate * weight.detach()  # (N, T)
    per_token = -surrogate  # (N, T)

    kl = None
    if ref_logp is not None:
        kl = kl_k3(logp, torch.where(mask, ref_logp.detach(), logp.detach()))  # (N, T); 0 at padding
        if cfg.beta > 0:
            per_token = per_token + cfg.beta * kl  # (N, T)

    loss = _aggregate(per_token * keep, keep, cfg)  # ()
    with torch.no_grad():
        metrics = _metrics(ratio, a, kl, behav, mask, keep, cfg)
    return loss, metrics


def _aggregate(masked: Tensor, keep: Tensor, cfg: PolicyLossConfig) -> Tensor:
    """(N, T) per-token losses, already zero at padding -> scalar, as `cfg.aggregation` says."""
    if cfg.aggregation == "token_mean":
        return masked.sum() / keep.sum().clamp(min=1)  # ()
    if cfg.aggregation == "seq_mean":
        return (masked.sum(-1) / keep.sum(-1).clamp(min=1)).mean()  # (N,) -> ()
    n, t = masked.shape
    return masked.sum() / (n * (cfg.max_completion_length or t))  # (): "constant"


def _metrics(ratio: Tensor, a: Tensor, kl: Tensor | None, behav: Tensor | None, mask: Tensor, keep: Tensor,
             cfg: PolicyLossConfig) -> dict[str, float]:
    n_kept = keep.sum().clamp(min=1)  # ()
    low = (ratio < 1 - cfg.eps_low) & mask  # (N, T)
    high = (ratio > 1 + cfg.eps_high) & mask  # (N, T)
    if cfg.objective == "clipped":
        # The clip is active (no surrogate gradient) only where it also wins the min, i.e. where
        # moving further would help: rho below the range with A < 0, or above it with A > 0.
        low, high = low & (a < 0), high & (a > 0)  # (N, T)
    values = {
        "clip_frac": (low | high).sum() / n_kept,
        "clip_frac_low": low.sum() / n_kept,
        "clip_frac_high": high.sum() / n_kept,
        "ratio_mean": (ratio * keep).sum() / n_kept,
        "ratio_max": torch.where(mask, ratio, 0.0).max(),
        "adv_mean": a.mean() if a.shape[1] == 1 else (a * keep).sum() / n_kept,
    }
    if kl is not None:
        values["kl"] = (kl * keep).sum() / n_kept
    if behav is not None:
        values["behav_weight_mean"] = (behav * keep).sum() / n_kept
        values["behav_weight_max"] = behav.max()  # 0 at padding, so the max is a kept token's
        values["behav_dropped_frac"] = ((behav == 0) & mask).sum() / n_kept
    numbers = torch.stack([v.float() for v in values.values()]).tolist()  # one device sync
    return dict(zip(values, numbers, strict=True))


def _check_inputs(logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, adv: Tensor, mask: Tensor,
                  cfg: PolicyLossConfig, prox_logp: Tensor | None = None) -> None:
    optional = {"ref_logp": ref_logp, "prox_logp": prox_logp}
    named = {"old_logp": old_logp, "mask": mask} | {k: v for k, v in optional.items() if v is not None}
    for name, tensor in named.items():
        if tensor.shape != logp.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected logp's {tuple(logp.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (True = keep); got {mask.dtype}")
    if adv.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(f"adv must be (N,) = {tuple(logp.shape[:1])}, one per sequence, or (N, T); "
                         f"got {tuple(adv.shape)}")
    if cfg.beta > 0 and ref_logp is None:
        raise ValueError(f"beta={cfg.beta} needs ref_logp; pass reference log-probs or set beta=0")
    horizon = cfg.max_completion_length
    if cfg.aggregation == "constant" and horizon is not None and logp.shape[1] > horizon:
        raise ValueError(f"completions are {logp.shape[1]} tokens wide, "
                         f"more than max_completion_length={horizon}")


def tis_weights(trainer_logp: Tensor, sampler_logp: Tensor, mask: Tensor, cap: float) -> Tensor:
    """Truncated importance weights min(pi_trainer / pi_sampler, cap) per token; 0 at padding.

    trainer_logp, sampler_logp: (N, T) log-probs of the sampled tokens under the trainer's weights
    (a no-grad forward before the update) and as the sampler reported them. mask: (N, T) bool.

    >>> tis_weights(torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]]), torch.tensor([[True, True]]), 1.5)
    tensor([[1.5000, 0.3679]])
    """
    if cap <= 0:
        raise ValueError(f"tis cap {cap}: expected > 0")
    log_w = torch.where(mask, trainer_logp - sampler_logp, 0.0).clamp(max=MAX_LOG_RATIO)  # (N, T)
    return torch.where(mask, log_w.exp().clamp(max=cap), 0.0)  # (N, T)


def decoupled_weights(prox_logp: Tensor, behav_logp: Tensor, mask: Tensor, cap: float | None = None) -> Tensor:
    """Decoupled PPO's behaviour weights pi_prox / pi_behav per token; 0 at padding and above `cap`.

    prox_logp: (N, T) the learner's log-probs before this update; behav_logp: (N, T) the sampler's.
    A token whose weight exceeds `cap` is dropped (weight 0), as AReaL's behav_imp_weight_cap does.

    >>> decoupled_weights(torch.tensor([[-1.0, 0.0]]), torch.tensor([[-1.5, -2.0]]), torch.tensor([[True, True]]), 5.0)
    tensor([[1.6487, 0.0000]])
    """
    log_w = torch.where(mask, prox_logp - behav_logp, 0.0).clamp(max=MAX_LOG_RATIO)  # (N, T)
    weight = log_w.exp()  # (N, T)
    kept = mask if cap is None else mask & (weight <= cap)  # (N, T)
    return torch.where(kept, weight, 0.0).detach()  # (N, T)


@dataclass(frozen=True)
class PolicyLoss:
    """A registered policy loss: `policy_loss` with one variant's default config.

    Called with the policy-loss signature; `cfg=None` uses `defaults`, a given cfg wins.
    """

    defaults: PolicyLossConfig

    def __call__(self, logp: Tensor, old_logp: Tensor, ref_logp: Tensor | None, adv: Tensor, mask: Tensor,
                 cfg: PolicyLossConfig | None = None, token_weight: Tensor | None = None,
                 prox_logp: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        return policy_loss(logp, old_logp, ref_logp, adv, mask, self.defaults if cfg is None else cfg, token_weight,
                           prox_logp)


LOSSES: Registry = Registry("policy loss")
LOSSES.register("grpo")(PolicyLoss(PolicyLossConfig()))
LOSSES.register("dapo")(PolicyLoss(PolicyLossConfig(eps_high=0.28, aggregation="token_mean")))
LOSSES.register("dr_grpo")(PolicyLoss(PolicyLossConfig(aggregation="constant")))
LOSSES.register("gspo")(PolicyLoss(PolicyLossConfig(eps_low=3e-4, eps_high=4e-4, ratio_level="sequence")))
LOSSES.register("decoupled_ppo")(PolicyLoss(PolicyLossConfig(aggregation="token_mean", decoupled=True)))
LOSSES.register("cispo")(PolicyLoss(PolicyLossConfig(eps_low=1.0, eps_high=4.0, aggregation="token_mean",
                                                     objective="cispo")))


def loss_config(name: str, **overrides: object) -> PolicyLossConfig:
    """The config of registered loss `name`, with `overrides` replacing its fields.

    >>> loss_config("dapo", beta=0.001).eps_high
    0.28
    """
    valid = [f.name for f in fields(PolicyLossConfig)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise UserError(f"unknown policy loss option(s) {', '.join(unknown)}; "
                        f"expected some of: {', '.join(valid)}")
    return replace(LOSSES.get(name).defaults, **overrides)
