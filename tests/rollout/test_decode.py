"""r1zero's own decode loop (the hf sampler's DeepSeek-V3 path): the tokens `generate` would pick, log-probs of a
full forward pass as rows stop and leave the batch, and `generate` itself for the models it does not cover."""

import pytest
import torch

from r1zero.algo import token_logprobs
from r1zero.models.io import load_model, load_tokenizer
from r1zero.rollout import decode
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.hf import HFSampler
from r1zero.train.rollout_batch import make_batch
from r1zero.types import Rollout
from tests.conftest import build_tiny

TEXTS = ["1+2=", "123*4=", "98765-4321=", "7*8="]


def left_padded(tok, texts, pad):
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, ids))
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in ids])  # (B, P)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ids])  # (B, P)
    return ids, input_ids, mask


def forward_logprobs(model, rollouts, pad, temperature=1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs of a plain whole-row forward, the sampler's) over the kept completion tokens."""
    batch = make_batch(rollouts, torch.zeros(len(rollouts)), pad)
    P, T = batch.prompt_width, batch.completion_mask.shape[1]
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                       position_ids=batch.position_ids, use_cache=False).logits[:, P - 1 : P + T - 1]
    logp = token_logprobs(logits / temperature, batch.input_ids[:, P:])  # (N, T)
    return logp[batch.completion_mask], batch.old_logp[batch.completion_mask]


def test_rows_that_stop_leave_the_batch_and_logprobs_still_match_a_forward_pass(tiny_model):
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    pad, T = tok.pad_token_id, 24
    prompts, input_ids, mask = left_padded(tok, TEXTS * 6, pad)  # (24, P)
    free = decode.Sampling(1.0, 0, 1.0, torch.tensor([tok.eos_token_id]), 0)
    torch.manual_seed(0)
    tokens, _ = decode.sample(model, input_ids, mask, T, free, pad)
    frequent = torch.bincount(tokens.flatten()).topk(3).indices  # stop ids most rows meet at different steps
    torch.manual_seed(1)
    tokens, logps = decode.sample(model, input_ids, mask, T, decode.Sampling(1.0, 0, 1.0, frequent, 0), pad)
    rollouts, ends = [], []
    for p, row, lp in zip(prompts, tokens.tolist(), logps.tolist()):
        end = next((t + 1 for t, x in enumerate(row) if x in frequent.tolist()), T)
        ends.append(end)
        rollouts.append(Rollout(prompt_ids=p, completion_ids=row[:end], logprobs=lp[:end], finish_reason="", text=""))
    early = sum(e < T // 2 for e in ends)
    assert early * 8 >= len(ends) and max(ends) > min(ends) + 4, ends  # the batch was compacted mid-way
    reference, sampled = forward_logprobs(model, rollouts, pad)
    assert (reference - sampled).abs().max().item() < 1e-4


def test_greedy_picks_generates_tokens_under_min_new_tokens_and_stops(tiny_model, monkeypatch):
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    sampler, greedy = HFSampler(model, tok), SamplingParams(max_new_tokens=12, temperature=0.0, stop=[])
    first = [r.completion_ids[2] for r in sampler.generate(prompts, 1, greedy)]  # tokens greedy meets by step 3
    stop = next(t for t in first if len(tok(tok.convert_ids_to_tokens(t), add_special_tokens=False)["input_ids"]) == 1)
    params = SamplingParams(max_new_tokens=12, temperature=0.0, stop=[tok.convert_ids_to_tokens(stop)])
    for min_new in (0, 5):
        model.generation_config.min_new_tokens = min_new
        assert decode.supports(model)
        ours = sampler.generate(prompts, 1, params)
        with monkeypatch.context() as m:
            m.setattr(decode, "supports", lambda _: False)
            theirs = sampler.generate(prompts, 1, params)
        assert [(r.completion_ids, r.finish_reason) for r in ours] == [(r.completion_ids, r.finish_reason) for r in theirs]
        stopped = [len(r.completion_ids) for r in ours if r.finish_reason == "stop"]
        assert min(stopped, default=12) >= min_new and (min_new or stopped)  # unconstrained, rows stop early


@pytest.mark.parametrize("truncation", [{"top_k": 1}, {"top_p": 1e-6}])
def test_top_k_and_top_p_truncate_as_generate_does(tiny_model, truncation):
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    sampler = HFSampler(model, tok)
    greedy = sampler.generate(prompts, 1, SamplingParams(max_new_tokens=10, temperature=0.0, stop=[]))
    narrow = sampler.generate(prompts, 2, SamplingParams(max_new_tokens=10, temperature=1.0, stop=[], seed=3,
                                                         **truncation))
    assert [r.completion_ids for r in narrow] == [r.completion_ids for r in greedy for _ in range(2)]


def test_qwen2_and_llama_sample_with_generate(tmp_path):
    for arch in ("qwen2", "llama"):
        folder = build_tiny(tmp_path / arch, arch=arch)
        model, tok = load_model(folder), load_tokenizer(folder)
        assert not decode.supports(model)
        prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
        rollouts = HFSampler(model, tok).generate(prompts, 2, SamplingParams(max_new_tokens=8, seed=0, stop=[]))
        reference, sampled = forward_logprobs(model, rollouts, tok.pad_token_id)
        assert (reference - sampled).abs().max().item() < 1e-4
