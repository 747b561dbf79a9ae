"""Run a recipe: stages in order, each reading a model folder and writing one, in one run folder.

    runs/<name>/config.yaml           the resolved recipe, exactly as run
    runs/<name>/<stage id>/           each stage's metrics, checkpoints, plots and model/
    runs/<name>/final -> <stage>/model  the last model written

A run folder is never reused unless asked: `resume` continues it (finished stages are skipped,
an interrupted one restarts from its last checkpoint), `overwrite` replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from r1zero.config import Recipe
from r1zero.errors import UserError
from r1zero.stages import STAGES, StageContext


def prepare_run_dir(recipe: Recipe, resume: bool, overwrite: bool) -> Path:
    run_dir = Path(recipe.out_dir) / recipe.name
    if run_dir.exists() and any(run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif not resume:
            raise UserError(f"run folder {run_dir} already exists; pass --resume to continue it, "
                            "--overwrite to replace it, or choose another name=...")
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    os.replace(tmp, run_dir / "config.yaml")
    return run_dir


def input_model(recipe: Recipe, stage_id: str, outputs: dict[str, Path], last: Path | None) -> Path | None:
    ref = getattr(recipe.sections[stage_id], "model", None)
    if ref is None:
        return None
    if not ref:
        if last is None:
            raise UserError(f"{stage_id}.model: no earlier stage wrote a model; set {stage_id}.model=PATH")
        return last
    if ref in outputs:
        return outputs[ref]
    return Path(ref)


def run_recipe(recipe: Recipe, resume: bool = False, overwrite: bool = False) -> Path:
    import torch
    from transformers.utils import logging

    logging.disable_progress_bar()  # our own progress bars are enough
    logging.set_verbosity_error()
    if recipe.threads > 0:
        torch.set_num_threads(recipe.threads)
    run_dir = prepare_run_dir(recipe, resume, overwrite)
    outputs: dict[str, Path] = {}
    last: Path | None = None
    t_start = time.perf_counter()
    for sid in recipe.stages:
        stage_dir = run_dir / sid
        done = stage_dir / "done.json"
        if resume and done.exists():
            record = json.loads(done.read_text())
            print(f"[{sid}] already done, skipping")
        else:
            print(f"[{sid}] {recipe.kinds[sid]}")
            stage_dir.mkdir(parents=True, exist_ok=True)
            ctx = StageContext(run_dir, stage_dir, sid, recipe.seed, input_model(recipe, sid, outputs, last), resume)
            t0 = time.perf_counter()
            out = STAGES.get(recipe.kinds[sid]).run(recipe.sections[sid], ctx)
            record = {"model": str(out) if out else None, "seconds": round(time.perf_counter() - t0, 2)}
            done.write_text(json.dumps(record))
        if record["model"]:
            outputs[sid] = last = Path(record["model"])
    if last is not None:
        link = run_dir / "final"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(last.resolve().relative_to(run_dir.resolve()))
    print(f"run {run_dir} finished in {time.perf_counter() - t_start:.0f} s")
    return run_dir
