"""async_level: rollouts sampled k policy versions behind the learner (r1zero.train.pipelined, r1zero.train.rl).

The pipeline tests run a small step function whose batch records the weights it was sampled with and how
many steps it had sampled before (its own state, as the curriculum is), in a thread and in a spawned or
forked process, with random delays on both sides: the lag is fixed whatever the speeds. The RL tests run the real
stage: the worker process samples what the in-process sampler would, step t with the policy of step t-k, a
run is a function of its seed, and a SIGKILLed async run resumes bit-exactly.
"""

import json
import os
import random
import subprocess
import time
from functools import partial

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig, build_section
from r1zero.errors import UserError
from r1zero.models.io import load_model, load_tokenizer
from r1zero.rollout.hf import HFSampler
from r1zero.stages import StageContext
from r1zero.train.pipelined import InTurn, RolloutsAhead
from r1zero.train.rl import make_step_sampler, run_rl
from tests.conftest import build_tiny, sigkill_once_written
from tests.train.test_rl import CURRICULUM, FAST, rl_cmd


class VersionedSteps:
    """A step function whose batch is (step, the weights' version, steps sampled before): the last is its
    state, restored from checkpoints like the curriculum. Sleeps a random while, so the worker is
    sometimes ahead of the learner and sometimes behind."""

    def __init__(self, fail_at: int = 0, user_error: bool = True):
        self.version, self.calls, self.fail_at, self.user_error = None, 0, fail_at, user_error
        self.sampler, self.rng = None, random.Random()

    def __call__(self, step):
        time.sleep(self.rng.random() * 0.02)
        if step == self.fail_at:
            raise (UserError if self.user_error else KeyError)(f"step {step} cannot be sampled")
        self.calls += 1
        return step, self.version, self.calls - 1

    def update_weights(self, state):
        self.version = int(state["w"].item())

    def checkpoint_objects(self):
        return {"calls": self}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def weights(version: int) -> dict:
    return {"w": torch.tensor(float(version))}


def ahead(lag: int, total: int, where: str, **options) -> RolloutsAhead:
    """`where`: "thread", "process" (spawned) or "fork"."""
    if where == "thread":
        return RolloutsAhead(lag, total, step_fn=VersionedSteps(**options))
    return RolloutsAhead(lag, total, make_step_fn=partial(VersionedSteps, **options),
                         start_method="fork" if where == "fork" else "spawn")


def drive(rollouts, steps, done: int = 0) -> list[tuple]:
    """The RL loop's calls, with a random update time: [(batch, lag)] of steps done+1..steps."""
    rollouts.start(done, weights(done))
    out = []
    for step in range(done + 1, steps + 1):
        out.append(rollouts.get(step))
        time.sleep(random.random() * 0.02)
        rollouts.update_weights(step, weights(step))
    return out


@pytest.mark.parametrize(("where", "lag"), [("thread", 1), ("thread", 2), ("process", 2), ("fork", 2)])
def test_step_t_is_sampled_with_the_weights_after_step_t_minus_1_minus_k(where, lag):
    rollouts = ahead(lag, 7, where)
    try:
        got = drive(rollouts, 7)
    finally:
        rollouts.close()
    assert got == [((t, max(0, t - 1 - lag), t - 1), min(t - 1, lag)) for t in range(1, 8)]


@pytest.mark.parametrize("where", ["thread", "process", "fork"])
def test_a_checkpoint_holds_the_batches_ahead_and_a_resumed_pipeline_repeats_the_rest(where):
    lag, total, cut = 2, 8, 3
    straight = ahead(lag, total, where)
    try:
        whole = drive(straight, total)
    finally:
        straight.close()
    first = ahead(lag, total, where)
    try:
        head = drive(first, cut)
        state = first.state_dict()  # what TrainingRun saves after step `cut`
    finally:
        first.close()
    assert sorted(state["ready"]) == [cut + 1, cut + 2] and state["step_state"] == {"calls": cut + lag}
    resumed = ahead(lag, total, where)
    try:
        resumed.load_state_dict(state)
        tail = drive(resumed, total, done=cut)
    finally:
        resumed.close()
    assert head + tail == whole


@pytest.mark.parametrize("where", ["thread", "process"])
def test_a_failing_step_reaches_the_learner_as_one_error(where):
    rollouts = ahead(1, 5, where, fail_at=2)
    try:
        with pytest.raises(UserError, match="step 2 cannot be sampled"):
            drive(rollouts, 5)
    finally:
        rollouts.close()
    if where == "process":  # a spawn costs seconds; the thread shows the same path
        return
    rollouts = ahead(1, 5, where, fail_at=2, user_error=False)
    try:
        with pytest.raises(RuntimeError, match="rollout worker failed(.|\n)*KeyError: 'step 2 cannot be sampled'"):
            drive(rollouts, 5)
    finally:
        rollouts.close()


def test_a_worker_that_dies_stops_the_learner_instead_of_hanging():
    rollouts = ahead(1, 5, "process")
    try:
        rollouts.start(0, weights(0))
        rollouts.get(1)
        rollouts.worker.kill()
        with pytest.raises(RuntimeError, match="stopped without a word"):
            for step in (2, 3):  # step 2 may be sampled already; step 3 never is
                rollouts.get(step)
    finally:
        rollouts.close()


def test_async_level_zero_samples_in_turn():
    steps = InTurn(VersionedSteps())
    assert drive(steps, 3) == [((1, None, 0), 0), ((2, 1, 1), 0), ((3, 2, 2), 0)]  # start(0) hands nothing over


def test_bad_async_settings_are_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"rl.async_level: -1 is out of range; expected a value in \[0, inf\)"):
        build_section("rl", "rl", RLConfig, {"async_level": -1})
    base = build_tiny(tmp_path / "base")
    cfg = RLConfig(steps=2, async_level=1, cluster={"check_weights": True}, **FAST)
    with pytest.raises(UserError, match="check_weights .* async_level=1"):
        run_rl(cfg, StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False))
    for settings, why in [({"async_level": 0}, "async_level 0"),
                          ({"async_level": 1, "length_buckets": 1}, "learner must keep one"),
                          ({"async_level": 1, "minibatches": 2}, "several optimizer steps"),
                          ({"async_level": 1, "advantage": "gae"}, "a critic"),
                          ({"async_level": 1, "sampler": "tests.train.test_async:VersionedSteps"}, "hf sampler")]:
        cfg = RLConfig(steps=2, worker_pieces=1, **{**FAST, **settings})
        with pytest.raises(UserError, match=f"rl.worker_pieces=1 cannot be used with .*{why}"):
            run_rl(cfg, StageContext(tmp_path, tmp_path / "rl", "rl", 0, base, resume=False))


def metric_rows(stage_dir) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k and k != "tokens_per_s"}
            for line in (stage_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def one_thread():
    """One torch thread, as the recipes run: the RL stage then forks its worker (more threads: spawned)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_worker_samples_step_t_with_the_policy_of_step_t_minus_k(tmp_path, threads):
    """async_level 1: step 1 as in turn (same weights, same seed), step 2 from the initial policy again
    (the in-process sampler on the base model), every later step one update behind; the weights moved.
    One thread forks the worker, two spawn it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        check_worker_samples_with_the_lagged_policy(tmp_path)
    finally:
        torch.set_num_threads(before)


def check_worker_samples_with_the_lagged_policy(tmp_path):
    base = build_tiny(tmp_path / "base")
    cfg = RLConfig(steps=3, async_level=1, **FAST)
    ctx = StageContext(tmp_path, tmp_path / "a1" / "rl", "rl", 0, base, resume=False)
    out = run_rl(cfg, ctx)
    run_rl(RLConfig(steps=1, **FAST), StageContext(tmp_path, tmp_path / "a0" / "rl", "rl", 0, base, resume=False))
    rows, in_turn = metric_rows(tmp_path / "a1" / "rl"), metric_rows(tmp_path / "a0" / "rl")
    assert [r["policy_lag"] for r in rows] == [0, 1, 1]
    assert rows[0] == in_turn[0]
    # The importance weight pi_learner / pi_sampler (one minibatch, one epoch: the loss's ratio) is 1 up to
    # numerical noise when sampled in turn, and departs from 1 on the lagged batches.
    assert rows[0]["ratio_max"] < 1 + 1e-4 < min(r["ratio_max"] for r in rows[1:])
    assert all(abs(r["ratio_mean"] - 1) > 1e-4 for r in rows[1:])

    tokenizer = load_tokenizer(base)
    from_base = make_step_sampler(cfg, ctx, tokenizer, HFSampler.create(load_model(base), tokenizer))(2).scored
    assert rows[1]["reward"] == pytest.approx(sum(from_base.sampled_rewards) / len(from_base.sampled_rewards), abs=1e-6)
    assert rows[1]["response_length"] == pytest.approx(
        sum(len(r.completion_ids) for r in from_base.sampled) / len(from_base.sampled), abs=1e-6)
    a, b = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.isfinite(b[n]).all() for n in b) and any(not torch.equal(a[n], b[n]) for n in a)


def test_the_worker_computes_update_pieces_as_the_learner_would(tmp_path, one_thread):
    """worker_pieces 1 of 2: the worker computes the shorter piece's gradient on the weights the update starts
    from. Steps 1 and 2 are sampled alike (the base's weights), so the two runs' metrics and weights agree up
    to the order of float additions; a gradient on other weights, or a piece lost, would move them by ~lr."""
    base = build_tiny(tmp_path / "base")
    rows, weights = {}, {}
    for n in (0, 1):
        out = run_rl(RLConfig(steps=2, async_level=1, length_buckets=2, worker_pieces=n, **FAST),
                     StageContext(tmp_path, tmp_path / f"w{n}" / "rl", "rl", 0, base, resume=False))
        rows[n], weights[n] = metric_rows(tmp_path / f"w{n}" / "rl"), load_file(out / "model.safetensors")
    for a, b in zip(rows[0], rows[1], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    first = load_file(base / "model.safetensors")
    assert any((weights[1][n] - first[n]).abs().max() > 1e-4 for n in first)  # it learnt
    assert max((weights[0][n] - weights[1][n]).abs().max().item() for n in first) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("pieces", [{}, {"length_buckets": 2, "worker_pieces": 1}], ids=["learner", "worker_pieces"])
def test_the_same_seed_gives_the_same_weights_with_async_on(tmp_path, one_thread, pieces):
    base = build_tiny(tmp_path / "base")
    outs = [run_rl(RLConfig(steps=4, async_level=2, loss="cispo", **FAST, **pieces),
                   StageContext(tmp_path, tmp_path / name / "rl", "rl", 0, base, resume=False)) for name in "ab"]
    a, b = (load_file(out / "model.safetensors") for out in outs)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert metric_rows(tmp_path / "a" / "rl") == metric_rows(tmp_path / "b" / "rl")


@pytest.mark.slow
@pytest.mark.parametrize("pieces", [[], ["length_buckets=2", "worker_pieces=1"]], ids=["learner", "worker_pieces"])
def test_sigkilled_async_rl_resumes_bit_exact(tmp_path, pieces):
    """As tests/train/test_rl.py's resume test, with async_level=1 and the curriculum: the checkpoint at step 6
    holds step 7's batch, sampled with step 5's weights, and the curriculum after it. With worker_pieces the
    resumed worker computes step 7's piece on step 6's weights."""
    model_dir = build_tiny(tmp_path / "m")
    extra = [*CURRICULUM, "async_level=1", "loss=decoupled_ppo", *pieces]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(rl_cmd(model_dir, straight, *extra), check=True, capture_output=True, timeout=300)
    ckpt = killed / "rl" / "checkpoints" / "step-6" / "state.pt"
    sigkill_once_written(rl_cmd(model_dir, killed, *extra), ckpt)
    assert ckpt.exists() and not (killed / "rl" / "model").exists(), "the kill must land mid-run"
    subprocess.run(rl_cmd(model_dir, killed, *extra, "--resume"), check=True, capture_output=True, timeout=300)

    a = load_file(straight / "rl" / "model" / "model.safetensors")
    b = load_file(killed / "rl" / "model" / "model.safetensors")
    assert all(torch.equal(a[name], b[name]) for name in a)
    rows = metric_rows(straight / "rl")
    assert rows == metric_rows(killed / "rl")
    assert [r["policy_lag"] for r in rows] == [0] + [1] * 8
    assert rows[0]["curriculum_level"] < rows[-1]["curriculum_level"]  # the curriculum moved


@pytest.mark.slow
def test_the_ray_pool_samples_ahead_as_a_worker_process_does(tmp_path):
    """async_level 1 with `sampler: ray` (2 hf actors on a local cluster, driven by a thread) against the
    worker process sampling the same two shards (test_distributed's ShardedHF): the same rollouts every
    step, the same lag, the same weights."""
    pytest.importorskip("ray")
    import shutil
    import tempfile
    from pathlib import Path

    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64)
    settings = {"steps": 3, "async_level": 1, **FAST}
    pool = {"actors": 2, "backend": "hf", "backend_options": {}, "resources": {"num_cpus": 1}}
    short = Path(tempfile.mkdtemp(prefix="r1async-", dir="/tmp"))  # Ray's session folder goes in <stage>/ray
    try:
        run_rl(RLConfig(sampler="ray", sampler_options=pool, cluster={"num_cpus": 4}, **settings),
               StageContext(short, short / "rl", "rl", 0, base, resume=False))
        assert (short / "rl" / "ray").is_dir()
        shutil.copytree(short / "rl", tmp_path / "ray", ignore=shutil.ignore_patterns("ray"))
    finally:
        shutil.rmtree(short, ignore_errors=True)
    run_rl(RLConfig(sampler="tests.train.test_distributed:ShardedHF", sampler_options={"shards": 2}, **settings),
           StageContext(tmp_path, tmp_path / "local", "rl", 0, base, resume=False))
    on_ray, local = metric_rows(tmp_path / "ray"), metric_rows(tmp_path / "local")
    assert [r["policy_lag"] for r in on_ray] == [0, 1, 1]
    assert on_ray == local
    a, b = (load_file(tmp_path / name / "model" / "model.safetensors") for name in ("ray", "local"))
    assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("where", ["thread", "fork"])
def test_a_pipeline_dropped_without_close_stops_its_worker(where):
    """A run that stops on an error never reaches close(): the worker must not wait on forever, and a fork's
    frozen collector is thawed."""
    import gc

    rollouts = ahead(1, 5, where)
    rollouts.start(0, weights(0))
    rollouts.get(1)
    assert gc.get_freeze_count() > 0 if where == "fork" else gc.get_freeze_count() == 0
    worker = rollouts.worker
    del rollouts
    gc.collect()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert gc.get_freeze_count() == 0


def test_a_forked_worker_shares_the_learners_pages():
    """The point of forking: the worker maps the learner's imported libraries and heap rather than copies;
    pages both processes map, from /proc/PID/pagemap (bench/bench_grpo_vs_trl.py's count)."""
    from bench.bench_grpo_vs_trl import shared_mb

    shared = {}
    for where in ("process", "fork"):
        rollouts = ahead(1, 3, where)
        try:
            rollouts.start(0, weights(0))
            rollouts.get(1)
            shared[where] = shared_mb([os.getpid(), rollouts.worker.pid])
        finally:
            rollouts.close()
    if shared["fork"] == 0:
        pytest.skip("page frame numbers in /proc/PID/pagemap need root")
    # Both map torch's libraries; only the fork also shares torch's ~140 MB of heap set up at import.
    assert shared["fork"] > shared["process"] + 80, shared


@pytest.mark.slow
def test_lora_adapters_reach_the_worker_process(tmp_path):
    """With LoRA the worker wraps its copy as the learner does and loads the adapters the learner hands over:
    step 1 as in turn, then one update behind (qwen2: peft puts per-module alphas on DeepSeek's MoE)."""
    base = build_tiny(tmp_path / "qwen2", arch="qwen2")
    runs = {}
    for level in (0, 1):
        run_rl(RLConfig(steps=3, async_level=level, lora=True, lora_rank=4, **FAST),
               StageContext(tmp_path, tmp_path / f"a{level}", "rl", 0, base, resume=False))
        runs[level] = metric_rows(tmp_path / f"a{level}")
    assert runs[1][0] == runs[0][0]
    assert [r["policy_lag"] for r in runs[1]] == [0, 1, 1] and runs[1][1]["reward"] != runs[0][1]["reward"]
