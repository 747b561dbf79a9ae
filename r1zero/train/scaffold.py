"""What every training stage (pretrain, sft, rl) does around its own step, written once.

- `adamw` and `warmup_cosine`: the optimizer and the schedule (linear warmup, cosine decay to a floor;
  floor 1 = constant after warmup), stepped once per optimizer step.
- `optimizer_step`: clip the gradient norm, step the optimizer and the schedule, clear the gradients.
- `TrainingRun`: resume from the newest checkpoint that loads, cut metrics.jsonl back to it, show
  progress, log a row (and to the experiment trackers of `report_to`), and checkpoint every
  `checkpoint_every` steps (not at the last: the stage then writes its model folder).

A stage keeps what is its own: its data, its loss, its metrics, and where it seeds its RNG.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from r1zero.train.checkpoint import resume, save_checkpoint
from r1zero.train.logs import MetricsLog, progress_bar


def warmup_cosine(warmup: int, total: int, floor: float):
    """LR factor of optimizer step `step` (0-based): linear warmup over `warmup` steps, then cosine from 1
    to `floor` at `total`."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def adamw(model, lr: float, weight_decay: float, warmup: int, total: int, floor: float,
          betas: tuple[float, float] = (0.9, 0.999)):
    """(AdamW over the trainable parameters, its warmup-cosine LambdaLR)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, betas=betas,
                                  weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total, floor))


def optimizer_step(model, optimizer, scheduler, grad_clip: float) -> torch.Tensor:
    """Clip, step, advance the schedule, clear the gradients; returns the norm before clipping."""
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm  # FSDP2: a DTensor
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


class TrainingRun:
    """One stage's steps: resume, progress, metrics, checkpoints. Iterate `steps()` for the steps to run."""

    def __init__(self, stage: str, stage_dir: Path, objects: dict[str, Any], total: int, resume_enabled: bool,
                 checkpoint_every: int, keep_checkpoints: int, report_to: list[str] | None = None,
                 config: dict | None = None):
        self.stage, self.total, self.objects = stage, total, objects
        self.checkpoint_every, self.keep = checkpoint_every, keep_checkpoints
        self.log, self.ckpts = MetricsLog(stage_dir / "metrics.jsonl"), stage_dir / "checkpoints"
        self.start, self.extra = resume(self.ckpts, objects, resume_enabled, stage)
        self.log.truncate_after(self.start)
        from r1zero.train.trackers import make_trackers

        self.trackers = make_trackers(report_to or [], stage_dir, stage, config or {})
        self.bar = self.task = None

    def steps(self) -> Iterator[int]:
        """start + 1 .. total, under a progress bar; checkpoints after each step at the cadence."""
        try:
            with progress_bar(self.stage) as self.bar:
                self.task = self.bar.add_task(self.stage, total=self.total, completed=self.start, info="")
                for step in range(self.start + 1, self.total + 1):
                    yield step
                    self.bar.update(self.task, completed=step)
                    if self.checkpoint_every and step % self.checkpoint_every == 0 and step < self.total:
                        save_checkpoint(self.ckpts, step, self.objects, keep=self.keep)
        finally:  # a run stopped by an error or Ctrl-C still closes its tracker runs
            for tracker in self.trackers:
                tracker.close()

    def write(self, row: dict, info: str = "") -> None:
        """One metrics row (metrics.jsonl and each tracker), and the progress bar's text."""
        self.log.write(row)
        for tracker in self.trackers:
            tracker.log(row)
        if info and self.bar is not None:
            self.bar.update(self.task, info=info)
