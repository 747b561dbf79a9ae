"""The stage registry: each kind names its config dataclass and the function that runs it.

Runners are imported only when their stage runs, so `r1zero eval` never imports the RL stack.
A runner is `run(cfg, ctx: StageContext) -> Path | None` and returns the model folder it wrote.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1zero import config as C
from r1zero.registry import Registry


@dataclass
class StageContext:
    run_dir: Path  # runs/<name>
    stage_dir: Path  # runs/<name>/<stage id>
    stage_id: str
    seed: int
    model: Path | None  # input model folder (None for build)
    resume: bool  # continue from the stage's last checkpoint if there is one
    device: str = "cpu"  # torch device the stage computes on (the recipe's `device`, resolved)


def done_record(run_dir: Path, model: Path | None, seconds: float) -> dict:
    """A finished stage's done.json: its model folder, relative to the run folder where it lies inside it (so a
    copied or moved run folder resumes from its own models), and its wall seconds."""
    if model is not None and (where := Path(model).resolve()).is_relative_to(home := Path(run_dir).resolve()):
        model = where.relative_to(home)
    return {"model": str(model) if model else None, "seconds": round(seconds, 2)}


def recorded_model(run_dir: Path, record: dict) -> Path | None:
    """The model folder a done.json names: relative to the run folder (`done_record`), or as earlier runs wrote
    it (the run folder's path joined with the stage's, absolute or relative to where the run started)."""
    if not record.get("model"):
        return None
    model = Path(record["model"])
    inside = Path(run_dir) / model
    return inside if not model.is_absolute() and inside.exists() else model


@dataclass(frozen=True)
class Stage:
    config: type
    runner: str  # "module:function"

    def run(self, cfg: Any, ctx: StageContext) -> Path | None:
        module, name = self.runner.split(":")
        fn: Callable = getattr(importlib.import_module(module), name)
        return fn(cfg, ctx)


STAGES: Registry[Stage] = Registry("stage")
STAGES.register("build")(Stage(C.BuildConfig, "r1zero.models.build:run_build"))
STAGES.register("pretrain")(Stage(C.PretrainConfig, "r1zero.train.pretrain:run_pretrain"))
STAGES.register("eval")(Stage(C.EvalConfig, "r1zero.eval.stage:run_eval"))
STAGES.register("rl")(Stage(C.RLConfig, "r1zero.train.rl:run_rl"))
STAGES.register("sft")(Stage(C.SFTConfig, "r1zero.train.sft:run_sft"))
STAGES.register("sample")(Stage(C.SampleConfig, "r1zero.sample:run_sample"))
STAGES.register("report")(Stage(C.ReportConfig, "r1zero.run_report:run_report"))
