"""Memory of a stage before it runs: weights, gradients, optimizer state, activations (with and
without gradient checkpointing), the reference model, and the KV cache of the rollout batch.

The activation count is per token and per layer, in values saved for backward by the Hugging Face
implementations (SDPA attention, fp32 softmax), counted from their saved tensors rather than from
Megatron's 34*s*b*h formula, which assumes fused kernels: ~8 h-sized tensors per layer (norms,
residuals, projections), q/k/v/output of every head, the attention mask (one value per key),
4 FFN intermediates per active expert, plus the logits (3 V per token: logits, log-softmax, grad).
`tests/budget/test_memory.py` holds this to the saved tensors of dense and MoE models.
Gradient checkpointing keeps each layer's input and recomputes one layer at a time.

On CPU the process's peak RSS also holds the Python/torch baseline (`devices.CPU_BASELINE_GB`)
and what glibc keeps of freed activation blocks: `CPU_ALLOCATOR_FACTOR`, measured as peak RSS
over saved activations in the tiny recipes (1.2-1.5; bench/README.md). GPUs use PyTorch's caching
allocator: `GPU_ALLOCATOR_FACTOR`. Optimizer: AdamW keeps two fp32 moments per trainable
parameter, plus an fp32 master copy when weights are bf16. GB means 2^30 bytes throughout, as
peak RSS and GPU memory are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1zero.budget.devices import CPU_STAGE_BASELINE_GB
from r1zero.budget.flops import attention_counts, config_value, model_counts

CPU_ALLOCATOR_FACTOR = 1.35
GPU_ALLOCATOR_FACTOR = 1.1
GB = 2**30


def dtype_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def layer_activation_values(config, layer: int, seq_len: float) -> float:
    """Values one token saves for backward in decoder layer `layer` (see the module docstring)."""
    h, H = config.hidden_size, config.num_attention_heads
    attn = attention_counts(config)
    values = 8 * h + seq_len  # + the mask row (padded batches)
    if config_value(config, "kv_lora_rank"):  # MLA: q, k, v, output of every head, and the latents
        values += H * 2 * (attn["dqk"] + attn["dv"]) + 3 * config.kv_lora_rank + 2 * (config_value(config, "q_lora_rank") or 0)
    else:  # q and output per head, k and v per KV head (SDPA takes grouped K/V as they are)
        values += H * (attn["dqk"] + attn["dv"]) + config_value(config, "num_key_value_heads", H) * (attn["dqk"] + attn["dv"])
    n_experts = config_value(config, "n_routed_experts") or config_value(config, "num_local_experts") or 0
    if not n_experts or layer < config_value(config, "first_k_dense_replace", 0):
        return values + 4 * config.intermediate_size
    m, k = config.moe_intermediate_size, config.num_experts_per_tok
    shared = m * config_value(config, "n_shared_experts", 0)
    return values + k * (2 * h + 3 * m) + 4 * shared + 2 * n_experts


def activation_values_per_token(config, seq_len: float, checkpointing: bool = False) -> float:
    """Values held per token at the peak of a training micro-step."""
    layers = [layer_activation_values(config, i, seq_len) for i in range(config.num_hidden_layers)]
    logits = 3 * config.vocab_size
    if checkpointing:  # each layer's input, plus one layer recomputed in backward
        return config.num_hidden_layers * config.hidden_size + max(layers) + logits
    return sum(layers) + logits


@dataclass
class MemoryEstimate:
    """Bytes held the whole stage (`resident`) and by each phase; the peak is the largest phase."""

    resident: dict[str, float] = field(default_factory=dict)
    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    alternatives: dict[str, float] = field(default_factory=dict)  # not held: e.g. activations without checkpointing

    @property
    def peak(self) -> float:
        return sum(self.resident.values()) + max((sum(p.values()) for p in self.phases.values()), default=0.0)

    def components(self) -> dict[str, float]:
        """Every component, phases merged by taking each one's largest value."""
        out = dict(self.resident)
        for phase in self.phases.values():
            for k, v in phase.items():
                out[k] = max(out.get(k, 0.0), v)
        return out


def training_bytes(config, seqs: int, width: int, dtype: str, checkpointing: bool, allocator: float) -> float:
    return seqs * width * activation_values_per_token(config, width, checkpointing) * dtype_bytes(dtype) * allocator


def generation_bytes(config, seqs: int, prompt: int, new: int, dtype: str) -> dict[str, float]:
    """KV cache of `seqs` sequences of `prompt + new` tokens and the sampler's kept logits. (Decode
    attention works on the cache itself: MLA is absorbed in the hf sampler, r1zero/models/mla.py.)"""
    b = dtype_bytes(dtype)
    return {"kv_cache": seqs * (prompt + new) * model_counts(config).kv_cache_bytes_per_token(b),
            # generate keeps each step's logits; the hf sampler stacks them and takes a log-softmax (fp32)
            "generation_logits": 3 * seqs * new * config.vocab_size * 4}


def estimate_memory(workload, device, dtype: str = "float32") -> MemoryEstimate:
    """Peak memory of a stage's `workload` (see `workload.py`) on `device`."""
    config, b = workload.config, dtype_bytes(dtype)
    counts = model_counts(config)
    allocator = CPU_ALLOCATOR_FACTOR if device.is_cpu else GPU_ALLOCATOR_FACTOR
    baseline = CPU_STAGE_BASELINE_GB.get(workload.kind, device.baseline_gb) if device.is_cpu else device.baseline_gb
    est = MemoryEstimate(resident={"baseline": baseline * GB})
    if workload.kind == "report":  # reads metrics and eval results, no model
        return est
    est.resident["weights"] = counts.params * b
    trainable = workload.trainable_params(counts)
    if trainable:
        est.resident["optimizer"] = trainable * (8 if dtype == "float32" else 12)
    if workload.reference:
        est.resident["reference"] = counts.params * b
    critic = counts.params if workload.critic else 0  # PPO's value model: weights, AdamW states, gradients
    if critic:
        est.resident["critic"] = critic * (b + (8 if dtype == "float32" else 12))
    if workload.train:
        seqs, width = max(((s, w) for _, s, w in workload.train), key=lambda sw: sw[0] * sw[1])
        ckpt = workload.gradient_checkpointing
        est.phases["train"] = {"gradients": (trainable + critic) * b,
                               "activations": training_bytes(config, seqs, width, dtype, ckpt, allocator)}
        other = "activations_no_checkpointing" if ckpt else "activations_checkpointed"
        est.alternatives[other] = training_bytes(config, seqs, width, dtype, not ckpt, allocator)
    if workload.generate:
        seqs, prompt, new = max(((s, p, n) for _, s, p, n in workload.generate), key=lambda x: x[0] * (x[1] + x[2]))
        est.phases["generation"] = generation_bytes(config, seqs, prompt, new, dtype)
    return est
