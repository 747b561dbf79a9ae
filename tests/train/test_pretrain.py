"""Pretraining: MoE load balancing works, and a SIGKILLed run resumes to bit-identical weights."""

import subprocess
import sys

import torch
from safetensors.torch import load_file

from r1zero.config import PretrainConfig
from r1zero.models.io import load_model, load_tokenizer
from r1zero.train.corpus import corpus_batch, length_buckets, lm_batch
from r1zero.train.moe_balance import ExpertLoadBalancer
from tests.conftest import build_tiny, sigkill_once_written


def imbalance_after_training(model_dir, gamma: float, steps: int = 40) -> float:
    torch.manual_seed(0)
    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    model.train()
    # Skew the router so that one expert takes most tokens at the start, as happens in practice.
    for router in [m for m in model.modules() if hasattr(m, "e_score_correction_bias")]:
        with torch.no_grad():
            router.weight[0] += 0.5
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    balancer = ExpertLoadBalancer(model, gamma)
    cfg = PretrainConfig(batch_size=16)
    last = []
    for step in range(steps):
        loss = model(**lm_batch(tok, corpus_batch(cfg, 0, step))).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        last.append(balancer.step())
    return sum(last[-10:]) / 10


def test_bias_updates_lower_expert_load_imbalance(tmp_path):
    model_dir = build_tiny(tmp_path / "m")
    without = imbalance_after_training(model_dir, gamma=0.0, steps=80)
    with_balancing = imbalance_after_training(model_dir, gamma=0.01, steps=80)
    print(f"expert imbalance (max/mean) after 80 steps: gamma=0 {without:.3f}, gamma=0.01 {with_balancing:.3f}")
    assert with_balancing < without - 0.1


def pretrain_cmd(model_dir, out_dir, *extra):
    return [sys.executable, "-m", "r1zero.cli", "pretrain", "--model", str(model_dir), "--out", str(out_dir),
            "steps=24", "batch_size=8", "checkpoint_every=8", "warmup_steps=5", "threads=1",
            *extra]


def test_sigkilled_pretrain_resumes_bit_exact(tmp_path):
    model_dir = build_tiny(tmp_path / "m")
    straight = tmp_path / "straight"
    subprocess.run(pretrain_cmd(model_dir, straight), check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    ckpt = killed / "pretrain" / "checkpoints" / "step-16" / "state.pt"
    sigkill_once_written(pretrain_cmd(model_dir, killed), ckpt)
    assert ckpt.exists() and not (killed / "pretrain" / "model").exists(), "the kill must land mid-run"

    again = subprocess.run(pretrain_cmd(model_dir, killed), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr  # never silently clobbered
    subprocess.run(pretrain_cmd(model_dir, killed, "--resume"), check=True, capture_output=True, timeout=300)

    a = load_file(straight / "pretrain" / "model" / "model.safetensors")
    b = load_file(killed / "pretrain" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    steps = [line for line in (killed / "pretrain" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 3  # steps 10, 20, 24, none duplicated by the resume


def test_length_buckets_give_the_whole_batch_gradient(tiny_model):
    """Micro-batches sorted by length and cut to their own width sum to the unbucketed gradient."""
    torch.manual_seed(0)
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    batch = lm_batch(tok, corpus_batch(PretrainConfig(batch_size=24), 0, 1))

    def gradient(buckets: int) -> tuple[torch.Tensor, int]:
        model.zero_grad()
        n_labels = (batch["labels"][:, 1:] != -100).sum()
        micros = list(length_buckets(batch, buckets))
        for micro in micros:
            model(**micro, num_items_in_batch=n_labels).loss.backward()
        padded = sum(m["input_ids"].numel() for m in micros)
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), padded

    whole, padded_whole = gradient(1)
    bucketed, padded_bucketed = gradient(3)
    assert torch.allclose(whole, bucketed, atol=1e-6, rtol=1e-4)
    assert padded_bucketed < 0.9 * padded_whole, "sorting by length should cut the padding"
