"""Checkpoints: stale temporary folders go, and resume skips a checkpoint that does not load."""

import torch
from safetensors.torch import load_file

from r1zero.config import RLConfig
from r1zero.stages import StageContext
from r1zero.train.checkpoint import resume, save_checkpoint
from r1zero.train.rl import run_rl
from tests.conftest import build_tiny
from tests.train.test_rl import FAST


def test_resume_removes_stale_temporaries_and_skips_a_corrupt_checkpoint(tmp_path, capsys):
    model = torch.nn.Linear(2, 2)
    ckpts = tmp_path / "checkpoints"
    for step in (1, 2):
        with torch.no_grad():
            model.weight.fill_(step)
        save_checkpoint(ckpts, step, {"model": model}, keep=3)
    (ckpts / ".step-3.tmp-999999").mkdir()  # a SIGKILL during a write leaves this
    (ckpts / "step-2" / "state.pt").write_bytes(b"not a checkpoint")
    step, _ = resume(ckpts, {"model": model}, True, "rl")
    assert step == 1 and model.weight.eq(1).all()
    assert not (ckpts / ".step-3.tmp-999999").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipping checkpoint step-2" in err[0]


def test_resume_past_a_corrupt_newest_checkpoint_is_bit_exact(tmp_path):
    base = build_tiny(tmp_path / "base", hidden_size=32, intermediate_size=64, layers=1)
    cfg = {**FAST, "prompts_per_step": 2, "steps": 4}
    straight = run_rl(RLConfig(**cfg), StageContext(tmp_path, tmp_path / "straight", "rl", 0, base, resume=False))
    ctx = StageContext(tmp_path, tmp_path / "cut", "rl", 0, base, resume=False)
    run_rl(RLConfig(**{**cfg, "steps": 3, "checkpoint_every": 1, "keep_checkpoints": 3}), ctx)  # checkpoints 1, 2
    (ctx.stage_dir / "checkpoints" / "step-2" / "state.pt").write_bytes(b"\0" * 100)  # the newest is corrupt
    resumed = run_rl(RLConfig(**{**cfg, "checkpoint_every": 1, "keep_checkpoints": 3}),
                     StageContext(tmp_path, tmp_path / "cut", "rl", 0, base, resume=True))
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_another_recipe_is_refused_before_anything_is_restored(tmp_path):
    """A curriculum (or critic) turned on since the checkpoint: one clear error, the model untouched."""
    import pytest

    from r1zero.errors import UserError
    from r1zero.tasks import Curriculum

    saved, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 3, {"model": saved})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match="has no curriculum"):
        resume(tmp_path, {"model": model, "curriculum": Curriculum([2, 3])}, True, "rl")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
