"""Rollout batches: running each distinct prompt once gives the logits and gradients of whole rows."""

import pytest
import torch

from r1zero.algo import token_logprobs
from r1zero.models.io import load_model, load_tokenizer
from r1zero.train.rollout_batch import completion_logprobs, make_batch, shared_prompt_logits
from r1zero.types import Rollout


def rollouts(tok, group: int = 3) -> list[Rollout]:
    """Groups of `group` completions per prompt, prompts of different lengths (so left padding)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for text in ["1+2=", "123*4=", "98765-4321="]:
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        for _ in range(group):
            t = int(torch.randint(1, 9, (), generator=gen))
            out.append(Rollout(prompt_ids=prompt, completion_ids=torch.randint(3, 300, (t,), generator=gen).tolist(),
                               logprobs=[0.0] * t, finish_reason="length", text=""))
    return out


def whole_rows(model, batch) -> torch.Tensor:
    """log-probs (N, T) from one forward over every whole row, as before prompts were shared."""
    P, T = batch.prompt_width, batch.completion_mask.shape[1]
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                   use_cache=False).logits[:, P - 1 : P + T - 1]  # (N, T, V)
    return token_logprobs(logits, batch.input_ids[:, P:])


@pytest.mark.parametrize("checkpointing", [False, True])
def test_shared_prompts_give_the_logprobs_and_gradients_of_whole_rows(tiny_model, checkpointing):
    model, tok = load_model(tiny_model).train(), load_tokenizer(tiny_model)
    if checkpointing:
        model.gradient_checkpointing_enable()
    batch = make_batch(rollouts(tok), torch.zeros(9), tok.pad_token_id)
    assert shared_prompt_logits(model, batch) is not None  # 3 prompts for 9 rows: the shared path runs
    grads = []
    for logprobs in (lambda: whole_rows(model, batch), lambda: completion_logprobs(model, batch, 1.0)[0]):
        logp = logprobs()  # (N, T)
        (logp * batch.completion_mask).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        model.zero_grad(set_to_none=True)
        grads[-1]["logp"] = logp.detach()[batch.completion_mask]
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-5, rtol=1e-4), name
    assert all(m.gradient_checkpointing == checkpointing for m in model.model.layers)  # flags restored


def test_distinct_prompts_run_whole_rows(tiny_model):
    model, tok = load_model(tiny_model).train(), load_tokenizer(tiny_model)
    assert shared_prompt_logits(model, make_batch(rollouts(tok, group=1), torch.zeros(3), tok.pad_token_id)) is None
