"""FLOP and parameter counts against hand counts for a small dense and a small MoE model."""

import pytest
from transformers import AutoModelForCausalLM, DeepseekV3Config, LlamaConfig

from r1zero.budget.flops import causal_context, kv_cache_line, model_counts

# Dense: V=100, h=64, 2 layers, 4 heads of 16, 2 KV heads, FFN 128, untied lm_head.
DENSE = LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=False)
# MoE (DeepSeek-V3): layer 0 dense FFN 128; layer 1 has 4 experts of 32, 2 routed per token, 1 shared;
# MLA with latent 16, rope 8 + nope 8 query/key dims, value 16; tied embedding.
MOE = DeepseekV3Config(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, intermediate_size=128, n_routed_experts=4, num_experts_per_tok=2,
                       n_shared_experts=1, moe_intermediate_size=32, first_k_dense_replace=1, n_group=1,
                       topk_group=1, kv_lora_rank=16, q_lora_rank=None, qk_rope_head_dim=8, qk_nope_head_dim=8,
                       v_head_dim=16, tie_word_embeddings=True)


def test_dense_hand_count():
    attn = 64 * 64 + 64 * 32 + 64 * 32 + 64 * 64  # q, k, v (2 KV heads x 16), o = 12288
    ffn = 3 * 64 * 128  # gate, up, down = 24576
    c = model_counts(DENSE)
    assert c.params == 2 * (attn + ffn + 2 * 64) + 100 * 64 * 2 + 64  # layers + embedding + lm_head + norm
    assert c.active_params == 2 * (attn + ffn) + 100 * 64  # lm_head counts, the embedding lookup does not
    assert c.active_params == 80128
    assert c.attention_flops_per_key() == 2 * 2 * 4 * (16 + 16)  # 2 FLOPs x layers x heads x (d_qk + d_v)
    # 10 tokens of a 16-token causal sequence attend to 8.5 keys each on average.
    assert c.forward_flops(10, causal_context(16)) == 10 * (2 * 80128 + 512 * 8.5)
    assert c.train_flops(10, causal_context(16)) == 3 * c.forward_flops(10, 8.5)
    assert c.kv_cache_bytes_per_token(2) == 2 * 2 * 2 * 16 * 2  # layers x (K, V) x KV heads x 16 x bf16


def test_moe_hand_count_counts_only_routed_in_experts():
    attn = 64 * 64 + 64 * (16 + 8) + 16 * 4 * (8 + 16) + 4 * 16 * 64  # q, kv_a, kv_b, o = 11264
    dense_ffn = 3 * 64 * 128
    router, expert, shared = 4 * 64, 3 * 64 * 32, 3 * 64 * 32
    c = model_counts(MOE)
    assert c.params == (100 * 64 + 64  # tied embedding, final norm
                        + attn + 16 + dense_ffn + 128  # layer 0 (+ latent norm, 2 norms)
                        + attn + 16 + router + 4 * expert + shared + 128)  # layer 1: every expert stored
    assert c.active_params == 100 * 64 + attn + dense_ffn + attn + router + 2 * expert + shared  # 2 of 4 experts
    assert c.active_params == 72192
    assert (c.qk_head_dim, c.v_head_dim) == (16, 16)
    assert c.train_flops(1) == 6 * 72192
    assert c.kv_values_per_token == 2 * (16 + 8)  # MLA caches the latent and the rope key, per layer


@pytest.mark.parametrize("config", [DENSE, MOE], ids=["dense", "moe"])
def test_parameter_count_matches_the_model(config):
    model = AutoModelForCausalLM.from_config(config)
    assert model_counts(config).params == sum(p.numel() for p in model.parameters())


def test_lora_training_skips_frozen_weight_gradients():
    c = model_counts(DENSE)
    n_lora = 8 * sum(i + o for i, o in c.lora_targets)
    assert c.lora_params(8) == n_lora
    assert c.train_flops(100, 0, lora_rank=8) == 100 * (2 * 2 * c.active_params + 6 * n_lora)


def test_kv_cache_agrees_with_build_and_compares_with_mha():
    from r1zero.models.build import kv_cache_bytes_per_token

    for config in (DENSE, MOE):
        assert model_counts(config).kv_cache_bytes_per_token(2) == kv_cache_bytes_per_token(config)
    assert kv_cache_line(MOE) == ("KV cache: 96 B/token in bf16 (MLA latent); "
                                  "multi-head attention of the same heads: 512 B/token (5.3x)")
