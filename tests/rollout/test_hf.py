"""Sampler `hf`: its log-probs are those of a full forward pass; stops and finish reasons are right."""

import pytest
import torch

from r1zero.algo import token_logprobs
from r1zero.models.io import load_model, load_tokenizer
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.hf import HFSampler
from r1zero.train.rollout_batch import make_batch


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sampler_logprobs_match_a_full_forward_pass(tiny_model, temperature):
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in ["1+2=", "123*4=", "98765-4321="]]
    rollouts = HFSampler(model, tok).generate(prompts, 3, SamplingParams(max_new_tokens=20, temperature=temperature,
                                                                         seed=0))
    assert len(rollouts) == 9 and [r.prompt_ids for r in rollouts[:3]] == [prompts[0]] * 3
    batch = make_batch(rollouts, torch.zeros(len(rollouts)), tok.pad_token_id)
    P, T = batch.prompt_width, batch.completion_mask.shape[1]
    with torch.no_grad():  # one plain forward over whole rows, no cache
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, use_cache=False).logits[:, P - 1 : P + T - 1]  # (N, T, V)
        logp = token_logprobs(logits / temperature, batch.input_ids[:, P:])  # (N, T)
    diff = (logp - batch.old_logp)[batch.completion_mask].abs().max().item()
    print(f"max |sampler - forward| log-prob difference at T={temperature}: {diff:.2e}")
    assert diff < 1e-4


def test_sampling_is_seeded_and_stops_at_answer_close(tiny_model):
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    sampler = HFSampler(model, tok)
    prompt = [tok("12+3=", add_special_tokens=False)["input_ids"]]
    a = sampler.generate(prompt, 4, SamplingParams(max_new_tokens=12, seed=5))
    b = sampler.generate(prompt, 4, SamplingParams(max_new_tokens=12, seed=5))
    assert [r.completion_ids for r in a] == [r.completion_ids for r in b]
    close = tok.convert_tokens_to_ids("</answer>")
    stops = {tok.eos_token_id, close}
    for r in sampler.generate(prompt, 16, SamplingParams(max_new_tokens=12, seed=1)):
        assert len(r.completion_ids) == len(r.logprobs) <= 12
        if r.finish_reason == "stop":
            assert r.completion_ids[-1] in stops and not stops & set(r.completion_ids[:-1])
        else:
            assert len(r.completion_ids) == 12 and not stops & set(r.completion_ids)
    greedy = sampler.generate(prompt, 2, SamplingParams(max_new_tokens=12, temperature=0.0))
    assert greedy[0].completion_ids == greedy[1].completion_ids


def test_absorbed_mla_decoding_matches_the_original_attention(tiny_model):
    """The sampler's decode path (attention over the compressed cache) changes no token."""
    from r1zero.models.io import load_model as fresh

    tok = load_tokenizer(tiny_model)
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in ["1+2=", "123*4=", "98765-4321="]]
    plain = fresh(tiny_model)
    ids = torch.tensor([[tok.pad_token_id] * 7 + prompts[0], prompts[2]])
    mask = (ids != tok.pad_token_id).long()
    with torch.no_grad():
        reference = plain.generate(input_ids=ids, attention_mask=mask, max_new_tokens=16, do_sample=False,
                                   pad_token_id=tok.pad_token_id, eos_token_id=None)
    patched = HFSampler(fresh(tiny_model), tok).generate([prompts[0], prompts[2]], 1,
                                                         SamplingParams(max_new_tokens=16, temperature=0.0, stop=[]))
    for row, r in zip(reference[:, ids.shape[1]:].tolist(), patched):
        assert r.completion_ids == row[: len(r.completion_ids)]
