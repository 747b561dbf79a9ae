"""Stage `build`: a tokenizer and a tiny randomly initialised model, saved as a Hugging Face folder.

The default architecture is DeepSeek-V3 (multi-head latent attention, MoE with a shared expert and
sigmoid-routed experts), at toy size; Qwen2 and Llama are selectable. The tokenizer is a byte-level
BPE trained here with the `tokenizers` library on text from the task generators; digits are split
one per token (arithmetic is learnable digit by digit) and the reasoning tags are single tokens; with
`tool_tokens` the tool tags are too, and the call's JSON words are merged (a calculator call in ~22
tokens instead of ~70, which a tiny model can learn to write: recipes/tiny-tools.yaml).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from r1zero.tasks.arithmetic import ArithmeticGenerator, corpus_line
from r1zero.tasks.templates import R1_ZERO_TEMPLATE
from r1zero.tools.format import TOOL_TOKENS
from r1zero.tools.template import TOOL_CHAT_TEMPLATE

REASONING_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]
EOS, PAD = "<|end|>", "<|pad|>"
# Plain turns: the system text, then "User: ..." / "Assistant: ..." lines; eos ends each reply.
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] }}\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)


@dataclass
class ModelShape:
    """The few numbers that size a tiny model (see `r1zero.config.BuildConfig` for the docs)."""

    arch: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    experts: int
    experts_per_token: int
    shared_experts: int
    moe_intermediate_size: int
    kv_lora_rank: int
    max_position_embeddings: int
    tool_tokens: bool = False  # tool tags as single tokens, the call's JSON words in the BPE text


def tokenizer_corpus(n_lines: int, seed: int, tools: bool = False) -> list[str]:
    """Text to learn merges from: arithmetic work, the templates and the tags; with `tools`, also
    calculator calls, so that the call's JSON words (`"calculator"`, `"arguments"`, ...) get merged."""
    rng, gen = random.Random(seed), ArithmeticGenerator(min_digits=1, max_digits=5)
    lines = [corpus_line(gen.problem(rng), rng, 0.3, 0.0) for _ in range(n_lines)]
    lines += [R1_ZERO_TEMPLATE] * 50 + ["User: Assistant: system user assistant"] * 20
    if tools:
        from r1zero.tasks.tool_corpus import tool_solution

        lines += [tool_solution(gen.problem(rng)) for _ in range(n_lines // 4)]
    return lines


def train_tokenizer(vocab_size: int, seed: int, tool_tokens: bool = False):
    """A byte-level BPE with one token per digit; returns a `PreTrainedTokenizerFast`. With
    `tool_tokens`, the tool tags are single tokens too and the BPE text holds calculator calls."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(2000, seed, tool_tokens), trainer)
    # The tags are ordinary added tokens (not "special"), so decoding keeps them in the text.
    tok.add_tokens(REASONING_TOKENS + (TOOL_TOKENS if tool_tokens else []))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD)
    fast.chat_template = TOOL_CHAT_TEMPLATE  # CHAT_TEMPLATE's rendering, plus OpenAI-style tool calls
    fast.padding_side = "left"
    return fast


def model_config(shape: ModelShape, tokenizer):
    """A transformers config for `shape.arch` in deepseek_v3 | qwen2 | llama."""
    from transformers import DeepseekV3Config, LlamaConfig, Qwen2Config

    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": shape.hidden_size,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.heads,
        "intermediate_size": shape.intermediate_size,
        "max_position_embeddings": shape.max_position_embeddings,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
        "tie_word_embeddings": True,
        "rope_theta": 10000.0,
    }
    if shape.arch == "deepseek_v3":
        head = shape.hidden_size // shape.heads
        return DeepseekV3Config(
            **common,
            n_routed_experts=shape.experts,
            num_experts_per_tok=shape.experts_per_token,
            n_shared_experts=shape.shared_experts,
            moe_intermediate_size=shape.moe_intermediate_size,
            first_k_dense_replace=1,  # as in V3, the first layer keeps a dense FFN
            n_group=1,
            topk_group=1,
            kv_lora_rank=shape.kv_lora_rank,
            q_lora_rank=None,
            qk_rope_head_dim=head // 2,
            qk_nope_head_dim=head // 2,
            v_head_dim=head,
            routed_scaling_factor=1.0,
            norm_topk_prob=True,
        )
    if shape.arch == "qwen2":
        return Qwen2Config(**common)
    if shape.arch == "llama":
        return LlamaConfig(**common)
    raise ValueError(f"unknown arch {shape.arch!r}")


def kv_cache_bytes_per_token(config, bytes_per_value: int = 2) -> int:
    """KV-cache bytes per token: MLA caches the compressed latent + rope key, not per-head K and V."""
    if getattr(config, "kv_lora_rank", None):
        per_layer = config.kv_lora_rank + config.qk_rope_head_dim
    else:
        head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        per_layer = 2 * config.num_key_value_heads * head
    return per_layer * config.num_hidden_layers * bytes_per_value


def build_model(shape: ModelShape, out_dir: Path, seed: int) -> Path:
    """Train the tokenizer, initialise the model, and save both (plus a README) into `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(shape.vocab_size, seed, shape.tool_tokens)
    config = model_config(shape, tokenizer)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True,
        temperature=1.0, top_p=1.0, max_new_tokens=80,
    )
    from r1zero.models.io import save_model_folder

    n_params = sum(p.numel() for p in model.parameters())
    readme = (
        f"# r1zero tiny model ({shape.arch})\n\nBuilt by `r1zero build` with seed {seed}.\n\n"
        f"- parameters: {n_params:,}\n- vocabulary: {len(tokenizer)} tokens\n"
        f"- KV cache: {kv_cache_bytes_per_token(config)} bytes per token in bf16\n"
    )
    save_model_folder(model, tokenizer, out_dir, readme=readme)
    return out_dir


def run_build(cfg, ctx) -> Path:
    """Stage `build`: writes the model folder to `<stage_dir>/model`."""
    from dataclasses import asdict

    shape = ModelShape(**asdict(cfg))
    out = build_model(shape, ctx.stage_dir / "model", ctx.seed)
    config_path = out / "config.json"
    print(f"built {cfg.arch} model in {out} ({config_path.stat().st_size} bytes of config); "
          f"see {out / 'README.md'}")
    return out
