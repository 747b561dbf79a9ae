"""PPO with a critic (advantage `gae`) end to end on a tiny model: the critic learns, and a SIGKILLed
run resumes bit-exactly (the critic and its optimizer are in the checkpoint)."""

import json
import subprocess

import torch
from safetensors.torch import load_file

from tests.conftest import build_tiny, sigkill_once_written
from tests.train.test_rl import rl_cmd

PPO = ["advantage=gae", "advantage_options={lam: 0.95}", "cliprange_value=0.2", "critic_lr=1e-3"]


def metrics(path):
    return [{k: v for k, v in json.loads(line).items() if "seconds" not in k and k != "tokens_per_s"}
            for line in path.read_text().splitlines()]


def test_sigkilled_ppo_resumes_bit_exact(tmp_path):
    model_dir = build_tiny(tmp_path / "m")
    straight = tmp_path / "straight"
    subprocess.run(rl_cmd(model_dir, straight, *PPO), check=True, capture_output=True, timeout=300)
    rows = metrics(straight / "rl" / "metrics.jsonl")
    assert all(k in rows[-1] for k in ("value_loss", "value_clip_frac", "explained_variance", "value_grad_norm"))
    assert rows[0]["value_mean"] == 0.0 and rows[-1]["value_mean"] != 0.0  # the zero-initialised head learned

    killed = tmp_path / "killed"
    ckpt = killed / "rl" / "checkpoints" / "step-6" / "state.pt"
    sigkill_once_written(rl_cmd(model_dir, killed, *PPO), ckpt)
    assert ckpt.exists() and not (killed / "rl" / "model").exists(), "the kill must land mid-run"
    assert {"critic", "critic_optimizer", "critic_scheduler"} <= set(torch.load(ckpt, weights_only=False))
    subprocess.run(rl_cmd(model_dir, killed, *PPO, "--resume"), check=True, capture_output=True, timeout=300)

    a = load_file(straight / "rl" / "model" / "model.safetensors")
    b = load_file(killed / "rl" / "model" / "model.safetensors")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert rows == metrics(killed / "rl" / "metrics.jsonl")  # value loss, explained variance: the critic too
