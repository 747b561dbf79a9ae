"""Pretraining: MoE load balancing works, and a SIGKILLed run resumes to bit-identical weights."""

import functools
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import PretrainConfig
from r1zero.models.io import load_model, load_tokenizer
from r1zero.train.corpus import corpus_batch, length_buckets, lm_batch
from r1zero.train.data_parallel import GradientHelpers, backward_pieces, split_pieces, step_pieces
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


def pretrain_cmd(model_dir, setting, out_dir, *extra):
    return [sys.executable, "-m", "r1zero.cli", "pretrain", "--model", str(model_dir), "--out", str(out_dir),
            "steps=24", "batch_size=8", "checkpoint_every=8", "warmup_steps=5", "threads=1", setting, *extra]


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkilled_pretrain_resumes_bit_exact(tmp_path, processes):
    """With a helper process too: a run is deterministic, and its helper goes with a killed trainer."""
    model_dir = build_tiny(tmp_path / "m")
    straight = tmp_path / "straight"
    cmd = functools.partial(pretrain_cmd, model_dir, f"processes={processes}")
    subprocess.run(cmd(straight), check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    ckpt = killed / "pretrain" / "checkpoints" / "step-16" / "state.pt"
    sigkill_once_written(cmd(killed), ckpt)
    assert ckpt.exists() and not (killed / "pretrain" / "model").exists(), "the kill must land mid-run"

    again = subprocess.run(cmd(killed), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr  # never silently clobbered
    subprocess.run(cmd(killed, "--resume"), check=True, capture_output=True, timeout=300)

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


def test_split_pieces_gives_contiguous_runs_of_about_equal_area():
    pieces = [{"input_ids": torch.zeros(rows, width)} for rows, width in [(8, 10), (8, 20), (8, 30), (8, 40)]]
    runs = split_pieces(pieces, 2)
    assert [len(r) for r in runs] == [3, 1]  # areas 480 | 320, closest to half of 800
    assert [p for run in runs for p in run] == pieces
    assert split_pieces(pieces, 1) == [pieces]
    assert sorted(len(r) for r in split_pieces(pieces[:1], 3)) == [0, 0, 1]  # fewer pieces than processes


def test_a_helper_process_adds_the_rest_of_the_batch_gradient(tiny_model):
    """The trainer's share plus the helper's (on the shared parameters) is the whole batch's gradient, and
    the expert loads counted by both are the whole batch's."""
    torch.manual_seed(0)
    cfg = PretrainConfig(batch_size=24, length_buckets=4)
    model, tok = load_model(tiny_model), load_tokenizer(tiny_model)
    balancer = ExpertLoadBalancer(model, gamma=0.0)
    pieces, n_labels = step_pieces(tok, cfg, 0, 5)
    backward_pieces(model, pieces, n_labels)
    whole = [p.grad.clone() for p in model.parameters()]
    counts = [c.clone() for c in balancer.counts]
    model.zero_grad(set_to_none=True)
    balancer.reset()

    helpers = GradientHelpers(2, model, balancer, cfg, 0, tiny_model, threads=1)
    try:
        helpers.start(5)
        mine = split_pieces(pieces, 2)[0]
        assert 0 < len(mine) < len(pieces)
        backward_pieces(model, mine, n_labels)
        helpers.add_to(torch.zeros(()))
    finally:
        helpers.close()
    for p, g in zip(model.parameters(), whole):
        assert torch.allclose(p.grad, g, atol=1e-7, rtol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(balancer.counts, counts))
    assert all(not h.is_alive() for h in helpers.helpers)
