"""Per-token log-probabilities and entropies from logits, without holding more than one
(T, V) float32 temporary at a time.

The vocabulary axis V is the big one (32k-150k), so both functions work one sequence at a time
and never build a full (N, T, V) log-softmax: `token_logprobs` gathers the chosen logit and
subtracts a logsumexp. Both compute in float32 whatever the logits' dtype (bf16 logsumexp over
a large vocabulary loses about two digits) and return float32.

Alignment is the caller's: `logits[:, t]` must be the distribution that predicted `ids[:, t]`.
For a causal LM that means shifting by one:

    logits = model(input_ids).logits  # (N, P + T, V)
    logp = token_logprobs(logits[:, P - 1 : -1], input_ids[:, P:])  # (N, T): completion tokens
"""

from __future__ import annotations

import torch
from torch import Tensor


def token_logprobs(logits: Tensor, ids: Tensor) -> Tensor:
    """log p(ids[n, t]) under softmax(logits[n, t]): (N, T, V), (N, T) int -> (N, T) float32.

    Differentiable with respect to `logits`.
    """
    if logits.shape[:-1] != ids.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and ids {tuple(ids.shape)} must agree on (N, T)")
    rows = []
    # One sequence at a time, so the float32 temporaries are (T, V), never (N, T, V).
    for row_logits, row_ids in zip(logits, ids, strict=True):  # (T, V), (T,)
        row_logits = row_logits.float()  # (T, V); a no-op for float32 logits
        chosen = row_logits.gather(-1, row_ids.unsqueeze(-1)).squeeze(-1)  # (T,)
        rows.append(chosen - torch.logsumexp(row_logits, dim=-1))  # (T,)
    return torch.stack(rows) if rows else logits.new_zeros(ids.shape, dtype=torch.float32)  # (N, T)


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) at each position, in nats: (N, T, V) -> (N, T) float32.

    Uses H = logsumexp(z) - sum_v softmax(z)_v * z_v. Differentiable, but usually logged under
    `torch.no_grad()` (entropy bonuses are not part of the R1 recipe).
    """
    rows = []
    for row_logits in logits:  # (T, V)
        row_logits = row_logits.float()  # (T, V)
        probs = torch.softmax(row_logits, dim=-1)  # (T, V)
        rows.append(torch.logsumexp(row_logits, dim=-1) - (probs * row_logits).sum(-1))  # (T,)
    return torch.stack(rows) if rows else logits.new_zeros(logits.shape[:-1], dtype=torch.float32)  # (N, T)
