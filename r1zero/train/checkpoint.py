"""Checkpoints that resume bit-exactly: model, optimizer, scheduler, RNG states and data position.

Each checkpoint is `checkpoints/step-N/state.pt`, written into a temporary folder and renamed, so
a process killed mid-write leaves the previous checkpoint intact and never a partial one; the
temporary folders such a kill leaves (`.step-N.tmp-PID`) are removed when the stage starts again.
`resume` restores the newest checkpoint that loads, saying in one line which ones it skipped.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r1zero.errors import UserError


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(ckpt_root: Path, step: int, objects: dict[str, Any], extra: dict | None = None,
                    keep: int = 2) -> Path:
    """Save `state_dict()` of each object (model, optimizer, ...) plus RNG and `extra` at `step`."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step}"
    tmp = ckpt_root / f".step-{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {name: obj.state_dict() for name, obj in objects.items()}
    state.update(step=step, rng=rng_state(), extra=extra or {})
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    if not ckpt_root.is_dir():
        return []
    done = [p for p in ckpt_root.glob("step-*") if (p / "state.pt").is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def load_checkpoint(path: Path, objects: dict[str, Any]) -> tuple[int, dict]:
    """Restore each object and the RNG states; returns (step, extra). A checkpoint that lacks one of the
    objects was written by another recipe (a curriculum or a critic turned on since): nothing is
    restored and the user is told which, rather than a half-restored run starting over."""
    state = torch.load(path / "state.pt", weights_only=False)
    if missing := sorted(set(objects) - set(state)):
        raise UserError(f"checkpoint {path} has no {', '.join(missing)}: it was written by a recipe without "
                        f"them; resume with the recipe it was written by, or start a new run")
    for name, obj in objects.items():
        obj.load_state_dict(state[name])
    set_rng_state(state["rng"])
    return state["step"], state["extra"]


def remove_stale_temporaries(ckpt_root: Path) -> list[Path]:
    """Delete the `.step-N.tmp-PID` folders a process killed mid-write left behind; returns them."""
    stale = sorted(ckpt_root.glob(".step-*.tmp-*")) if ckpt_root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def resume(ckpt_root: Path, objects: dict[str, Any], enabled: bool, stage: str) -> tuple[int, dict]:
    """(step, extra) of the newest checkpoint that loads into `objects`, or (0, {}) when `enabled` is off
    or none does. A checkpoint that does not load (truncated, corrupt) is skipped with one line on stderr;
    an older one then restores every object, so nothing of the skipped one survives."""
    remove_stale_temporaries(ckpt_root)
    if not enabled:
        return 0, {}
    for path in reversed(list_checkpoints(ckpt_root)):
        try:
            step, extra = load_checkpoint(path, objects)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - unpickling, zip and key errors alike: not a usable checkpoint
            reason = (str(e).splitlines() or [type(e).__name__])[0][:100]
            print(f"r1zero: {stage}: skipping checkpoint {path.name}, which does not load ({reason})",
                  file=sys.stderr)
            continue
        print(f"resuming {stage} from {path}")
        return step, extra
    return 0, {}
