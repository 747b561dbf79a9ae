"""Learner pieces that need no cluster: TIS in the loop, a rank's share of the loss, length pieces and
micro-steps that leave the gradient as it was, cluster options."""

import json

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig
from r1zero.distributed.cluster import ClusterOptions
from r1zero.errors import UserError
from r1zero.models.io import load_tokenizer
from r1zero.stages import StageContext
from r1zero.train.learner import LocalLearner, length_pieces, setup_policy, shard_share
from r1zero.train.rl import run_rl
from r1zero.train.rollout_batch import make_batch
from tests.conftest import build_tiny
from tests.train.test_rl import FAST
from tests.train.test_rollout_batch import rollouts


def test_tis_with_the_hf_sampler_weighs_every_token_about_one(tmp_path):
    """hf samples with the trainer's own weights, so pi_trainer / pi_sampler = 1 up to float noise:
    TIS must then leave the update (almost) as it was."""
    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64)
    outs = {}
    for cap in (0.0, 2.0):
        ctx = StageContext(tmp_path, tmp_path / f"rl-{cap}", "rl", 0, base, resume=False)
        outs[cap] = load_file(run_rl(RLConfig(steps=2, tis_cap=cap, **FAST), ctx) / "model.safetensors")
    last = json.loads((tmp_path / "rl-2.0" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["tis_weight_mean"] == pytest.approx(1.0, abs=1e-3) and last["tis_capped_frac"] == 0.0
    diff = max((outs[0.0][k] - outs[2.0][k]).abs().max().item() for k in outs[0.0])
    assert diff < 1e-5, diff


def test_a_ranks_share_of_the_normaliser():
    micro = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])  # 6 kept tokens
    mine = micro[[0, 2]]  # 5 of them, 2 of 3 sequences
    assert shard_share("token_mean", micro, mine) == pytest.approx(5 / 6)
    assert shard_share("seq_mean", micro, mine) == shard_share("constant", micro, mine) == pytest.approx(2 / 3)


def step_gradients(cfg, model_dir, batch) -> dict[str, torch.Tensor]:
    """The gradient a learner's step hands its optimizer."""
    torch.manual_seed(0)
    learner = LocalLearner(cfg, setup_policy(cfg, model_dir), model_dir)
    seen = {}
    learner.optimizer.step = lambda: seen.update(
        {n: p.grad.clone() for n, p in learner.model.named_parameters() if p.grad is not None})
    learner.step(batch)
    return seen


@pytest.mark.parametrize("loss", ["dapo", "grpo", "dr_grpo"])  # token_mean, seq_mean, constant
def test_length_pieces_and_micro_steps_give_the_whole_batch_gradient(tiny_model, loss):
    tok = load_tokenizer(tiny_model)
    rows = rollouts(tok, group=4)  # 12 rows, completions 1-8 tokens
    gen = torch.Generator().manual_seed(1)
    for r in rows:
        r.logprobs = (-torch.rand(len(r.completion_ids), generator=gen)).tolist()  # ratios != 1: clipping acts
    batch = make_batch(rows, torch.randn(len(rows), generator=gen), tok.pad_token_id)
    whole = step_gradients(RLConfig(loss=loss, length_buckets=1), tiny_model, batch)
    split = step_gradients(RLConfig(loss=loss, length_buckets=3, grad_accum=2), tiny_model, batch)
    assert whole.keys() == split.keys() and len(whole) > 10
    for name, grad in whole.items():
        assert torch.allclose(grad, split[name], atol=1e-6, rtol=1e-4), name


@pytest.mark.parametrize("loss", ["dapo", "grpo", "dr_grpo", "gspo"])  # token_mean, seq_mean, constant, sequence ratio
def test_rows_with_zero_advantage_are_left_out_with_the_same_gradient(tiny_model, loss, monkeypatch):
    from r1zero.algo import ADVANTAGES, advantage_config
    from r1zero.train import learner as L

    tok = load_tokenizer(tiny_model)
    rows = rollouts(tok, group=4)  # 3 groups of 4
    gen = torch.Generator().manual_seed(1)
    for r in rows:
        r.logprobs = (-torch.rand(len(r.completion_ids), generator=gen)).tolist()
    rewards = torch.tensor([[0.1] * 4, [1.1, 0.1, 0.1, 1.1], [1.1] * 4])  # two groups with equal rewards
    batch = make_batch(rows, ADVANTAGES.get("grpo")(rewards, advantage_config()).flatten(), tok.pad_token_id)
    assert (batch.adv == 0).sum() == 8
    ran = []
    real = L.PieceWork.backward
    monkeypatch.setattr(L.PieceWork, "backward", lambda self, model: ran.append(len(self.piece)) or real(self, model))
    for cfg in ({"length_buckets": 2}, {"length_buckets": 1, "grad_accum": 2}, {"minibatches": 2, "num_iterations": 2}):
        full = step_gradients(RLConfig(loss=loss, skip_zero_advantage=False, **cfg), tiny_model, batch)
        assert sum(ran) == 12 * cfg.get("num_iterations", 1)
        ran.clear()
        left_out = step_gradients(RLConfig(loss=loss, **cfg), tiny_model, batch)
        assert sum(ran) <= 4 * cfg.get("num_iterations", 1) + 6 * (cfg.get("minibatches", 1) - 1), cfg
        ran.clear()
        assert full.keys() == left_out.keys() and len(full) > 10
        for name, grad in full.items():
            assert torch.allclose(grad, left_out[name], atol=1e-6, rtol=1e-4), (cfg, name)


def test_a_step_whose_rows_all_have_zero_advantage_still_steps_adamw(tiny_model):
    tok = load_tokenizer(tiny_model)
    batch = make_batch(rollouts(tok, group=4), torch.zeros(12), tok.pad_token_id)
    after = []
    for skip in (False, True):
        cfg = RLConfig(loss="dapo", lr=1e-2, skip_zero_advantage=skip)
        learner = LocalLearner(cfg, setup_policy(cfg, tiny_model), tiny_model)
        learner.step(grpo_batch(tok), step=1)  # momentum to carry
        metrics = learner.step(batch, step=2)
        assert metrics["grad_norm"] == 0 and "entropy" in metrics
        after.append([p.detach().clone() for p in learner.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*after))


def test_length_pieces_sort_rows_by_kept_length():
    mask = torch.tensor([[True] * 5, [True] * 1 + [False] * 4, [True] * 3 + [False] * 2, [True] * 2 + [False] * 3])
    assert [p.tolist() for p in length_pieces(mask, 2)] == [[1, 3], [2, 0]]
    assert [p.tolist() for p in length_pieces(mask, 1)] == [[1, 3, 2, 0]]


def test_cluster_options_name_the_valid_keys():
    assert ClusterOptions.parse({"address": "auto"}).address == "auto"
    with pytest.raises(UserError, match="check_weights"):
        ClusterOptions.parse({"adress": "auto"})
    with pytest.raises(UserError, match="ddp, fsdp2"):
        ClusterOptions.parse({"strategy": "zero3"})


def grpo_batch(tok, seed: int = 1):
    """12 rows in 3 groups with random old log-probs and advantages."""
    rows = rollouts(tok, group=4)
    gen = torch.Generator().manual_seed(seed)
    for r in rows:
        r.logprobs = (-torch.rand(len(r.completion_ids), generator=gen)).tolist()
    return make_batch(rows, torch.randn(len(rows), generator=gen), tok.pad_token_id)


def test_reference_logprobs_are_computed_once_per_batch_and_equal_the_per_piece_values(tiny_model, monkeypatch):
    from r1zero.train import learner as L

    cfg = RLConfig(loss="grpo", loss_options={"beta": 0.01}, length_buckets=3, num_iterations=2, minibatches=2)
    batch = grpo_batch(load_tokenizer(tiny_model))
    learner = LocalLearner(cfg, setup_policy(cfg, tiny_model), tiny_model)
    whole = learner.reference_logprobs(batch)  # (N, T)
    for rows in length_pieces(batch.completion_mask, 3):  # what each piece computed before
        piece = batch.select(rows).trimmed()
        T = piece.completion_mask.shape[1]
        alone = L.reference_logprobs(cfg, learner.ref_model, learner.model, piece)
        assert torch.allclose(whole[rows, :T][piece.completion_mask], alone[piece.completion_mask], atol=1e-6)
    calls = []
    real = L.reference_logprobs
    monkeypatch.setattr(L, "reference_logprobs", lambda *a: calls.append(len(a[3])) or real(*a))
    learner.step(batch, step=1)
    assert sum(calls) == len(batch)  # every row once, not once per piece and epoch


def test_the_reference_model_sits_on_the_policys_device(tiny_model, monkeypatch):
    from r1zero.train import learner as L

    seen = {}
    real = L.load_model
    monkeypatch.setattr(L, "load_model", lambda path, **kw: seen.update(kw) or real(path, **kw))
    cfg = RLConfig(loss="grpo", loss_options={"beta": 0.01})
    policy = setup_policy(cfg, tiny_model)
    learner = LocalLearner(cfg, policy, tiny_model)
    assert seen["device"] == str(next(policy.parameters()).device)
    assert next(learner.ref_model.parameters()).device == next(policy.parameters()).device


def test_the_lr_schedule_advances_per_optimizer_step(tiny_model):
    cfg = RLConfig(steps=10, minibatches=2, num_iterations=2, lr_schedule="cosine", warmup_steps=0)
    learner = LocalLearner(cfg, setup_policy(cfg, tiny_model), tiny_model)
    learner.step(grpo_batch(load_tokenizer(tiny_model)), step=1)
    assert learner.scheduler.last_epoch == 4  # 2 epochs x 2 minibatches: 4 of the run's 40 optimizer steps


def test_the_minibatch_shuffle_differs_from_step_to_step(tiny_model):
    cfg = RLConfig(minibatches=2, length_buckets=1)
    learner = LocalLearner(cfg, setup_policy(cfg, tiny_model), tiny_model, seed=0)
    batch, firsts = grpo_batch(load_tokenizer(tiny_model)), []
    real = learner.piece_backward
    learner.piece_backward = lambda b, tis, ref, idx, *a: firsts.append(sorted(idx.tolist())) or real(b, tis, ref, idx, *a)
    for step in (1, 2):
        learner.step(batch, step=step)
    assert firsts[0] != firsts[2]  # step 1's first minibatch is not step 2's


def test_ranks_with_neighbouring_row_counts_cut_the_same_number_of_pieces():
    mask = torch.ones(17, 5, dtype=torch.bool)
    counts = {len(length_pieces(mask[:rows], 4, 17 // 2)) for rows in (9, 8)}
    assert counts == {4}  # torch.chunk alone cut 9 rows into 3 pieces and 8 into 4
    assert all(len(p) for p in length_pieces(mask[:9], 4, 8))


def rank_main(rank: int, port: int, model_dir: str, strategy: str, out, zero_rows: int = 0) -> None:
    """One gloo rank of two: a learner step over 17 rows (9 here on rank 0, 8 on rank 1; with `zero_rows` of
    them at advantage 0, left out, 17 - zero_rows split alike); reports its forwards."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        cfg = RLConfig(length_buckets=4)
        torch.manual_seed(0)
        learner = LocalLearner(cfg, setup_policy(cfg, model_dir), model_dir, rank, 2, strategy)
        tok = load_tokenizer(model_dir)
        rows = rollouts(tok, group=6)[:17]
        adv = torch.randn(17, generator=torch.Generator().manual_seed(0))
        adv[::2][:zero_rows] = 0.0  # rows 0, 2, 4, ...: both ranks' shares shrink
        batch = make_batch(rows, adv, tok.pad_token_id)
        forwards = []
        learner.model.register_forward_hook(lambda *a: forwards.append(1))
        learner.step(batch, step=1)
        out.put((rank, len(forwards)))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("strategy,zero_rows", [("ddp", 0), ("fsdp2", 0), ("fsdp2", 8)])
def test_two_gloo_ranks_with_9_and_8_rows_run_the_same_passes(tmp_path, strategy, zero_rows):
    import socket

    import torch.multiprocessing as mp

    model_dir = build_tiny(tmp_path / "m", hidden_size=32, intermediate_size=64, layers=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=rank_main, args=(r, port, str(model_dir), strategy, out, zero_rows)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    hung = [p for p in procs if p.is_alive()]
    for p in hung:
        p.kill()
    assert not hung, "a rank hung: the ranks ran different numbers of collective passes"
    assert all(p.exitcode == 0 for p in procs)
    counts = dict(out.get(timeout=5) for _ in procs)
    assert counts[0] == counts[1] > 0, counts
