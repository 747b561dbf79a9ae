"""Sampler `hf`: batched sampling in this process, with the trainer's own model object.

DeepSeek-V3 folders decode in r1zero's own loop (r1zero.rollout.decode: absorbed MLA over a
preallocated latent cache, fused MoE, finished rows dropped); other architectures (qwen2, llama),
LoRA-wrapped models and generation configs that loop does not model use Hugging Face `generate`;
both draw tokens with r1zero.rollout.sampling.draw_tokens.

Log-probabilities are those of the temperature-scaled full distribution, `log_softmax(logits / T)`,
taken from the raw logits, before any processor (the same convention as TRL and vLLM's default); with
top-p / top-k on, the tokens are drawn from the truncated distribution but their log-probs are not
renormalised. Greedy (T = 0) reports `log_softmax(logits)`.
A stop string that is one token (like `</answer>`) stops generation as an extra EOS id.
"""

from __future__ import annotations

import torch

from r1zero.rollout.base import SamplingParams
from r1zero.types import Rollout


class HFSampler:
    def __init__(self, model, tokenizer, batch_size: int = 256):
        from r1zero.models.mla import enable_absorbed_mla

        enable_absorbed_mla(model)  # decode over the compressed KV cache (DeepSeek-V3 only)
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @classmethod
    def create(cls, model, tokenizer, model_dir=None, batch_size: int = 256) -> HFSampler:
        """The registry's constructor: samples with the trainer's own model object (no weight copy),
        or, given `model=None` (a Ray sampler actor), with its own copy loaded from `model_dir`."""
        if model is None:
            from r1zero.models.io import load_model

            model = load_model(model_dir)
        return cls(model, tokenizer, batch_size)

    def stop_ids(self, params: SamplingParams) -> list[int]:
        ids = [self.tokenizer.eos_token_id]
        for s in params.stop:
            tok = self.tokenizer(s, add_special_tokens=False)["input_ids"]
            if len(tok) != 1:
                raise ValueError(f"stop string {s!r} is {len(tok)} tokens; the hf sampler stops on one-token strings")
            ids.append(tok[0])
        return ids

    def update_weights(self, state_dict: dict) -> None:
        self.model.load_state_dict(state_dict)

    @torch.no_grad()
    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams) -> list[Rollout]:
        if params.seed is not None:
            torch.manual_seed(params.seed)
        flat = [p for p in prompt_ids for _ in range(n)]
        out: list[Rollout] = []
        for start in range(0, len(flat), self.batch_size):
            out += self._generate_chunk(flat[start : start + self.batch_size], params)
        return out

    def _generate_chunk(self, prompts: list[list[int]], params: SamplingParams) -> list[Rollout]:
        pad, stops = self.tokenizer.pad_token_id, self.stop_ids(params)
        width = max(map(len, prompts))
        input_ids = torch.full((len(prompts), width), pad)  # (B, P) left-padded
        mask = torch.zeros_like(input_ids)
        for i, p in enumerate(prompts):
            input_ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = 1
        # imported here, so importing the samplers stays light (no transformers models)
        from r1zero.rollout import decode

        was_training = self.model.training
        self.model.eval()
        if decode.supports(self.model):
            how = decode.Sampling(params.temperature, params.top_k, params.top_p, torch.tensor(stops),
                                  self.model.generation_config.min_new_tokens or 0)
            new, logp = decode.sample(self.model, input_ids, mask, params.max_new_tokens, how, pad)  # (B, T) x2
        else:
            new, logp = self._hf_generate(input_ids, mask, params, stops)
        self.model.train(was_training)
        rollouts = []
        stop_set = set(stops)
        for i, p in enumerate(prompts):
            row = new[i].tolist()
            end = next((t + 1 for t, tok in enumerate(row) if tok in stop_set), None)
            ids = row[:end] if end else row
            rollouts.append(Rollout(
                prompt_ids=list(p), completion_ids=ids, logprobs=logp[i, : len(ids)].tolist(),
                finish_reason="stop" if end else "length",
                text=self.tokenizer.decode(ids, skip_special_tokens=True)))
        return rollouts

    def _hf_generate(self, input_ids, mask, params: SamplingParams, stops: list[int]):
        """(tokens (B, T), log-probs (B, T)) from Hugging Face `generate` and the raw logits it returns.
        `generate` runs greedily over `DrawProcessor`, which draws each token with r1zero's own
        `draw_tokens` (temperature, top-k, top-p), so every backend samples one way."""
        from transformers import LogitsProcessorList

        from r1zero.rollout.sampling import DrawProcessor

        greedy = params.temperature <= 0
        drawing = LogitsProcessorList([] if greedy else [DrawProcessor(params.temperature, params.top_p, params.top_k)])
        input_ids, mask = input_ids.to(self.model.device), mask.to(self.model.device)  # a policy on CUDA
        gen = self.model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=params.max_new_tokens,
            do_sample=False, eos_token_id=stops, pad_token_id=self.tokenizer.pad_token_id,
            return_dict_in_generate=True, output_logits=True, logits_processor=drawing)
        new = gen.sequences[:, input_ids.shape[1] :]  # (B, T)
        logits = torch.stack(gen.logits, dim=1).float()  # (B, T, V)
        scale = 1.0 if greedy else params.temperature
        return new, torch.log_softmax(logits / scale, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
