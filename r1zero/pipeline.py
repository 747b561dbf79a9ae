"""Run a recipe: stages in order, each reading a model folder and writing one, in one run folder.

    runs/<name>/config.yaml           the resolved recipe, exactly as run
    runs/<name>/<stage id>/           each stage's metrics, checkpoints, plots and model/
    runs/<name>/final -> <stage>/model  the last model written

A run folder is never reused unless asked: `resume` continues it (finished stages are skipped,
an interrupted one restarts from its last checkpoint), `overwrite` replaces it. A run that stops on a
user's mistake (a `UserError`) before any stage finished or checkpointed leaves no folder behind (and
`overwrite` puts the old one back), so the corrected command runs as it would have the first time.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from r1zero.errors import UserError
from r1zero.models.io import device_line, resolve_device
from r1zero.recipe import Recipe
from r1zero.stages import STAGES, StageContext, done_record, recorded_model


def prepare_run_dir(recipe: Recipe, resume: bool, overwrite: bool) -> tuple[Path, bool, Path | None]:
    """(run folder, whether this call created it, where an overwritten folder was moved aside)."""
    run_dir = Path(recipe.out_dir) / recipe.name
    aside = None
    try:
        if run_dir.is_file():
            raise NotADirectoryError(f"{run_dir} is a file")
        if run_dir.exists() and any(run_dir.iterdir()):
            if overwrite:
                aside = run_dir.with_name(f".{run_dir.name}.old-{os.getpid()}")
                os.replace(run_dir, aside)
            elif not resume:
                raise UserError(f"run folder {run_dir} already exists; pass --resume to continue it, "
                                "--overwrite to replace it, or choose another name=...")
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / ".config.yaml.tmp"
        tmp.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        os.replace(tmp, run_dir / "config.yaml")
    except OSError as e:
        if aside is not None and not run_dir.exists():
            os.replace(aside, run_dir)
        raise UserError(f"run folder {run_dir} cannot be created ({e.strerror or e}); expected a writable "
                        "out_dir=... whose path has no file in the way") from None
    return run_dir, created, aside


def left_nothing_to_keep(run_dir: Path) -> bool:
    """True when no stage of the run finished or wrote a checkpoint (so the folder holds no work)."""
    return not any(run_dir.glob("*/done.json")) and not any(run_dir.glob("*/checkpoints/step-*"))


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
    device = resolve_device(recipe.device)
    print(f"run {Path(recipe.out_dir) / recipe.name}: device {device_line(device)}")
    run_dir, created, aside = prepare_run_dir(recipe, resume, overwrite)
    try:
        run_stages(recipe, run_dir, device, resume)
    except UserError:
        if created and left_nothing_to_keep(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
            if aside is not None:
                os.replace(aside, run_dir)
        raise
    finally:
        if aside is not None and aside.exists() and run_dir.exists():
            shutil.rmtree(aside, ignore_errors=True)
    return run_dir


def run_stages(recipe: Recipe, run_dir: Path, device: str, resume: bool) -> None:
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
            ctx = StageContext(run_dir, stage_dir, sid, recipe.seed, input_model(recipe, sid, outputs, last), resume,
                               device)
            t0 = time.perf_counter()
            out = STAGES.get(recipe.kinds[sid]).run(recipe.sections[sid], ctx)
            record = done_record(run_dir, out, time.perf_counter() - t0)
            done.write_text(json.dumps(record))
        if model := recorded_model(run_dir, record):
            outputs[sid] = last = model
    if last is not None:
        link = run_dir / "final"
        if link.is_symlink() or link.exists():
            link.unlink()
        target, home = last.resolve(), run_dir.resolve()
        link.symlink_to(target.relative_to(home) if target.is_relative_to(home) else target)
    print(f"run {run_dir} finished in {time.perf_counter() - t_start:.0f} s")
