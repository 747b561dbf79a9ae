"""Memory estimates: the activation count against saved tensors, and the arithmetic of the parts."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from r1zero.budget.devices import Device
from r1zero.budget.flops import model_counts
from r1zero.budget.memory import GB, activation_values_per_token, estimate_memory, generation_bytes
from r1zero.budget.workload import Workload
from tests.budget.test_flops import DENSE, MOE

GPU = Device("gpu", 16, 100, 10, 1000, 1.0, baseline_gb=0.5)


def saved_activation_bytes(config, seqs: int, width: int) -> int:
    """Bytes autograd saves for backward in one training forward (weights excluded)."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(3, config.vocab_size, (seqs, width))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    return sum(saved.values())


@pytest.mark.parametrize("config", [DENSE, MOE], ids=["dense", "moe"])
def test_activation_count_is_close_to_the_saved_tensors(config):
    measured = saved_activation_bytes(config, 8, 32)
    estimated = 8 * 32 * activation_values_per_token(config, 32) * 4
    assert 0.9 < estimated / measured < 1.4  # logits counted 3x (with their gradient): above, never far below


def test_checkpointing_keeps_layer_inputs_and_one_layer():
    full = activation_values_per_token(MOE, 32)
    ckpt = activation_values_per_token(MOE, 32, checkpointing=True)
    assert ckpt < full
    assert ckpt == pytest.approx(2 * 64 + (full - 3 * 100) / 2 + 3 * 100, rel=0.1)  # layers roughly equal


def test_training_memory_arithmetic():
    w = Workload("pretrain", "pretrain", MOE, train=[(10, 4, 32)])
    est = estimate_memory(w, GPU, "bfloat16")
    params = 84832  # tests/budget/test_flops.py
    assert est.resident == {"baseline": 0.5 * GB, "weights": 2 * params, "optimizer": 12 * params}
    assert est.phases["train"]["gradients"] == 2 * params
    act = 4 * 32 * activation_values_per_token(MOE, 32) * 2 * 1.1  # bf16, GPU allocator factor
    assert est.phases["train"]["activations"] == pytest.approx(act)
    assert est.peak == pytest.approx(0.5 * GB + 16 * params + act)
    assert est.alternatives["activations_checkpointed"] < act


def test_lora_and_reference_memory():
    w = Workload("rl", "rl", DENSE, train=[(1, 2, 16)], lora_rank=4, reference=False)
    est = estimate_memory(w, GPU, "float32")
    n_lora = 4 * sum(i + o for i, o in model_counts(DENSE).lora_targets)
    assert est.resident["optimizer"] == 8 * n_lora and est.phases["train"]["gradients"] == 4 * n_lora
    w.reference, w.lora_rank = True, 0
    assert estimate_memory(w, GPU, "float32").resident["reference"] == 4 * 86848


def test_generation_memory_is_kv_cache_plus_kept_logits():
    out = generation_bytes(MOE, seqs=8, prompt=10, new=6, dtype="bfloat16")
    assert out["kv_cache"] == 8 * 16 * 48 * 2  # seqs x tokens x cached values x bf16
    assert out["generation_logits"] == 3 * 8 * 6 * 100 * 4
    assert generation_bytes(DENSE, 8, 10, 6, "bfloat16")["kv_cache"] == 8 * 16 * (2 * 2 * 2 * 16) * 2
    w = Workload("eval", "eval", MOE, generate=[(3, 8, 10, 6), (1, 2, 10, 6)])
    est = estimate_memory(w, GPU, "bfloat16")
    assert est.peak == pytest.approx(0.5 * GB + 2 * 84832 + sum(out.values()))  # the largest call counts
