"""Parameter and FLOP counts of a model, read from its Hugging Face config (no weights needed).

The usual rule is C = 6 N D for training and 2 N D for a forward pass (Kaplan et al. 2020), N the
parameters, D the tokens. Where this module departs from it:

- N is the *active matmul* parameters of one token: for MoE only the k routed-in experts, the
  shared experts and the router count (DeepSeek-V3's "37B activated of 671B"); the output
  projection (lm_head, h x V) counts even when tied to the embedding; the embedding lookup, norms
  and biases do not (they are gathers and elementwise work).
- Attention scores add 2 * layers * heads * (d_qk + d_v) FLOPs per token per key attended (QK^T and
  AV), forward. A token of a causal sequence of length T attends to (T + 1) / 2 keys on average.
  MLA is counted in its training (expanded) form; the absorbed decoding form does the same products.
- Training is 3x forward (backward = 2x forward). With LoRA the frozen weights need no weight
  gradient, so training is 2x forward over the base plus 6 N_lora. Gradient checkpointing recomputes
  one forward: those FLOPs are real work (`hardware` FLOPs) but not model FLOPs, so MFU leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelCounts:
    """The numbers that size a model's compute and memory; `model_counts(config)` fills them."""

    params: int  # every stored parameter, a tied embedding once
    active_params: int  # N: matmul weights one token goes through (see the module docstring)
    embedding_params: int  # V x h
    layers: int
    heads: int
    qk_head_dim: int  # d_qk per head (MLA: nope + rope)
    v_head_dim: int  # d_v per head
    hidden_size: int
    vocab_size: int
    kv_values_per_token: int  # values cached per token over all layers (MLA: latent + rope key)
    lora_targets: tuple[tuple[int, int], ...]  # (in, out) of every linear map in the layers (LoRA targets)
    mha_kv_values_per_token: int = 0  # what per-head K and V of every attention head would cache

    def forward_flops(self, tokens: float, context: float = 0.0) -> float:
        """Forward FLOPs of `tokens` tokens that attend to `context` keys each on average."""
        return tokens * (2 * self.active_params + self.attention_flops_per_key() * context)

    def train_flops(self, tokens: float, context: float = 0.0, lora_rank: int = 0) -> float:
        """Model FLOPs of forward + backward (3x forward; with LoRA, 2x forward + 6 N_lora)."""
        fwd = self.forward_flops(tokens, context)
        if lora_rank:
            return 2 * fwd + 6 * tokens * self.lora_params(lora_rank)
        return 3 * fwd

    def attention_flops_per_key(self) -> int:
        """Forward FLOPs per (query token, key) pair: QK^T and AV over every head and layer."""
        return 2 * self.layers * self.heads * (self.qk_head_dim + self.v_head_dim)

    def lora_params(self, rank: int) -> int:
        """Adapter parameters of rank `rank` on every linear map of the layers (peft "all-linear";
        for MoE within ~10% of what peft adapts, which varies by architecture)."""
        return sum(rank * (i + o) for i, o in self.lora_targets)

    def kv_cache_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        return self.kv_values_per_token * bytes_per_value


def kv_cache_line(config, bytes_per_value: int = 2) -> str:
    """One line comparing the model's KV cache per token with multi-head attention's, e.g. for MLA:
    'KV cache: 384 B/token in bf16 (MLA latent); multi-head attention of the same heads: 2,048 B/token (5.3x)'."""
    c = model_counts(config)
    mine, mha = c.kv_cache_bytes_per_token(bytes_per_value), c.mha_kv_values_per_token * bytes_per_value
    kind = ("MLA latent" if config_value(config, "kv_lora_rank")
            else "grouped-query" if c.kv_values_per_token < c.mha_kv_values_per_token else "multi-head")
    dtype = {2: "bf16", 4: "fp32"}.get(bytes_per_value, f"{bytes_per_value}-byte values")
    line = f"KV cache: {mine:,} B/token in {dtype} ({kind})"
    if mha != mine:
        line += f"; multi-head attention of the same heads: {mha:,} B/token ({mha / mine:.1f}x)"
    return line


def causal_context(seq_len: float) -> float:
    """Mean keys a token attends to in a causal sequence of `seq_len` tokens."""
    return (seq_len + 1) / 2 if seq_len > 0 else 0.0


def config_value(config, name: str, default=None):
    """`config.name`, or `default` where the config lacks it or holds None."""
    value = getattr(config, name, None)
    return default if value is None else value


def attention_counts(config) -> dict:
    """Matmul weights, other weights, head dims, cached values and LoRA targets of one attention block."""
    h, H = config.hidden_size, config.num_attention_heads
    if config_value(config, "kv_lora_rank"):  # MLA (DeepSeek-V2/V3)
        r, rope, nope, dv = config.kv_lora_rank, config.qk_rope_head_dim, config.qk_nope_head_dim, config.v_head_dim
        dqk, qr = nope + rope, config_value(config, "q_lora_rank")
        q = [(h, qr), (qr, H * dqk)] if qr else [(h, H * dqk)]
        linears = [*q, (h, r + rope), (r, H * (nope + dv)), (H * dv, h)]
        other = r + (qr or 0)  # the latents' RMSNorms
        cached = r + rope  # what MLA caches: the compressed latent and the shared rope key
    else:
        d = config_value(config, "head_dim", h // H)
        kv = config_value(config, "num_key_value_heads", H)
        dqk = dv = d
        linears = [(h, H * d), (h, kv * d), (h, kv * d), (H * d, h)]
        qkv_bias = config.model_type == "qwen2" or config_value(config, "attention_bias", False)
        other = (H * d + 2 * kv * d if qkv_bias else 0) + (h if config_value(config, "attention_bias", False) else 0)
        cached = 2 * kv * d
    return {"matmul": sum(i * o for i, o in linears), "other": other, "dqk": dqk, "dv": dv,
            "cached": cached, "linears": linears}


def ffn_counts(config, layer: int) -> dict:
    """Stored and active matmul weights of one layer's FFN (dense, or MoE with shared experts)."""
    h = config.hidden_size
    n_experts = config_value(config, "n_routed_experts") or config_value(config, "num_local_experts") or 0
    first_dense = config_value(config, "first_k_dense_replace", 0)
    if not n_experts or layer < first_dense:
        size = config.intermediate_size
        return {"stored": 3 * h * size, "active": 3 * h * size, "linears": [(h, size), (h, size), (size, h)]}
    m, k = config.moe_intermediate_size, config.num_experts_per_tok
    shared = m * config_value(config, "n_shared_experts", 0)
    router = n_experts * h
    # LoRA: peft adapts the fused routed experts too (per expert, as below) where it knows the
    # architecture; its exact choice differs by model, so the adapter count is approximate.
    linears = [(h, m), (h, m), (m, h)] * n_experts + ([(h, shared), (h, shared), (shared, h)] if shared else [])
    return {"stored": router + 3 * h * m * n_experts + 3 * h * shared,
            "active": router + 3 * h * m * k + 3 * h * shared, "linears": linears}


def model_counts(config) -> ModelCounts:
    """Counts for a transformers config of a decoder-only model (DeepSeek-V3, Qwen2, Llama, ...)."""
    h, L, V = config.hidden_size, config.num_hidden_layers, config.vocab_size
    attn = attention_counts(config)
    params, active, targets = V * h + h, V * h, []  # embedding + final norm; lm_head matmul
    if not config_value(config, "tie_word_embeddings", False):
        params += V * h
    for layer in range(L):
        ffn = ffn_counts(config, layer)
        params += attn["matmul"] + attn["other"] + ffn["stored"] + 2 * h  # + the two RMSNorms
        active += attn["matmul"] + ffn["active"]
        targets += attn["linears"] + ffn["linears"]
    return ModelCounts(
        params=params, active_params=active, embedding_params=V * h, layers=L,
        heads=config.num_attention_heads, qk_head_dim=attn["dqk"], v_head_dim=attn["dv"], hidden_size=h,
        vocab_size=V, kv_values_per_token=attn["cached"] * L, lora_targets=tuple(targets),
        mha_kv_values_per_token=L * config.num_attention_heads * (attn["dqk"] + attn["dv"]))
