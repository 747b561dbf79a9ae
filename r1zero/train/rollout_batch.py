"""Rollouts -> padded training tensors, and the policy's log-probs over them.

Layout (the same positions the sampler used): prompts left-padded to P, completions right-padded
to T, position ids counted over real tokens only. Logits at positions P-1 .. P+T-2 predict the
T completion tokens; they are divided by the sampling temperature, as in TRL, so log-probs are
those of the distribution that was sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1zero.algo import token_entropy, token_logprobs
from r1zero.types import Rollout


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # (N, P+T)
    attention_mask: torch.Tensor  # (N, P+T) long
    position_ids: torch.Tensor  # (N, P+T)
    completion_mask: torch.Tensor  # (N, T) bool, True = completion token
    old_logp: torch.Tensor  # (N, T) sampling-policy log-probs (0 on padding)
    adv: torch.Tensor  # (N,)
    prompt_width: int  # P

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, idx: torch.Tensor) -> RolloutBatch:
        return RolloutBatch(self.input_ids[idx], self.attention_mask[idx], self.position_ids[idx],
                            self.completion_mask[idx], self.old_logp[idx], self.adv[idx], self.prompt_width)


def make_batch(rollouts: list[Rollout], adv: torch.Tensor, pad_id: int) -> RolloutBatch:
    n = len(rollouts)
    P = max(len(r.prompt_ids) for r in rollouts)
    T = max(max(len(r.completion_ids) for r in rollouts), 1)
    input_ids = torch.full((n, P + T), pad_id)  # (N, P+T)
    attn = torch.zeros((n, P + T), dtype=torch.long)  # (N, P+T)
    comp_mask = torch.zeros((n, T), dtype=torch.bool)  # (N, T)
    old_logp = torch.zeros((n, T))  # (N, T)
    for i, r in enumerate(rollouts):
        p, t = len(r.prompt_ids), len(r.completion_ids)
        input_ids[i, P - p : P] = torch.tensor(r.prompt_ids)
        attn[i, P - p : P + t] = 1
        if t:
            input_ids[i, P : P + t] = torch.tensor(r.completion_ids)
            comp_mask[i, :t] = True
            old_logp[i, :t] = torch.tensor(r.logprobs)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # (N, P+T)
    return RolloutBatch(input_ids, attn, position_ids, comp_mask, old_logp, adv.float(), P)


def completion_logprobs(model, batch: RolloutBatch, temperature: float, with_entropy: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp (N, T), entropy (N, T) or None) of the completion tokens under `model`."""
    P, T = batch.prompt_width, batch.completion_mask.shape[1]
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=batch.position_ids, use_cache=False).logits  # (N, P+T, V)
    logits = logits[:, P - 1 : P + T - 1] / (temperature if temperature > 0 else 1.0)  # (N, T, V)
    logp = token_logprobs(logits, batch.input_ids[:, P:])  # (N, T)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = token_entropy(logits.detach())  # (N, T)
    return logp, entropy
