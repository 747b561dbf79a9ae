"""Experiment trackers (`report_to`, as in TRL): each metrics row also goes to TensorBoard or Weights & Biases.

metrics.jsonl is always written (r1zero.train.logs); trackers are extra and optional
(`pip install 'r1zero[trackers]'`). Each logs the numbers of a row at its `step`; None and
non-numbers are skipped. Files go into the stage folder: `tensorboard/` (event files) and `wandb/`
(a W&B run; offline unless WANDB_MODE is set, so nothing leaves the machine unless asked).
A resumed stage appends to the same folders; steps repeated after a checkpoint are logged again.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from r1zero.errors import UserError
from r1zero.registry import Registry

TRACKERS: Registry[type] = Registry("tracker")


def numbers(row: dict) -> dict[str, float]:
    """The finite numbers of a metrics row, except `step`."""
    return {k: float(v) for k, v in row.items() if k != "step" and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


@TRACKERS.register("tensorboard")
class TensorBoardTracker:
    def __init__(self, stage_dir: Path, stage: str, config: dict):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("report_to tensorboard needs the tensorboard package: "
                            "pip install 'r1zero[trackers]'") from None
        self.writer = SummaryWriter(log_dir=str(stage_dir / "tensorboard"))

    def log(self, row: dict) -> None:
        for key, value in numbers(row).items():
            self.writer.add_scalar(key, value, global_step=row["step"])

    def close(self) -> None:
        self.writer.close()


@TRACKERS.register("wandb")
class WandbTracker:
    def __init__(self, stage_dir: Path, stage: str, config: dict):
        try:
            import wandb
        except ImportError:
            raise UserError("report_to wandb needs the wandb package: pip install 'r1zero[trackers]'") from None
        (stage_dir / "wandb").mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "r1zero"), name=stage, config=config,
                              dir=str(stage_dir), mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new")

    def log(self, row: dict) -> None:
        self.run.log(numbers(row), step=row["step"])

    def close(self) -> None:
        self.run.finish()


def make_trackers(names: list[str], stage_dir: Path, stage: str, config: dict) -> list:
    """One tracker per name in `report_to` (an unknown name is a UserError listing the valid ones)."""
    return [TRACKERS.get(name)(stage_dir, stage, config) for name in names]
