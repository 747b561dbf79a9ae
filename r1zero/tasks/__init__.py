"""Tasks: where Examples come from, how their prompts are rendered, and which rewards score them.

    from r1zero import tasks
    task = tasks.get("gsm8k")                      # or "countdown", "rg:chain_sum", "data.jsonl", "hf:org/x"
    batch = task.examples("test", n=8)
    text = tasks.render_prompt(batch[0], "r1_zero")
    task.rewards                                   # ("math", "format"): the defaults for `--reward`

`get` resolves, in order: `rg:<name>` (reasoning-gym), `hf:<dataset>` (Hugging Face `load_dataset`,
fetched only then), a path ending in .jsonl/.json/.parquet/.csv, else a registered name. Options go
to the task's factory; an option it does not take is a UserError naming the ones it does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from r1zero.errors import UserError
from r1zero.tasks import builtin as _builtin  # noqa: F401  (registers the built-in tasks)
from r1zero.tasks import products as _products  # noqa: F401  (registers `products`, tiny-tools' task)
from r1zero.tasks.base import TASKS, BadRow, DatasetTask, GeneratedTask, Task
from r1zero.tasks.curriculum import Curriculum
from r1zero.tasks.loaders import FILE_SUFFIXES, file_task, hf_task
from r1zero.tasks.templates import TEMPLATES, render_prompt

__all__ = ["TASKS", "TEMPLATES", "BadRow", "Curriculum", "DatasetTask", "GeneratedTask", "Task", "get",
           "render_prompt"]


def check_options(what: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise UserError(f"{what} has no option {unknown[0]!r}; options: {', '.join(params) or 'none'}")


def get(spec: str, **options: Any) -> Task:
    """The task named by `spec`, built with `options` (e.g. `data_dir=`, `on_bad_row="skip"`)."""
    if spec.startswith("rg:"):
        from r1zero.tasks.rg import ReasoningGymTask

        return ReasoningGymTask(spec[3:], config=options)
    if spec.startswith("hf:"):
        check_options(f"task {spec!r}", hf_task, options)
        return hf_task(spec[3:], **options)
    if spec.lower().endswith(FILE_SUFFIXES):
        check_options(f"task file {spec!r}", file_task, options)
        return file_task(spec, **options)
    if spec not in TASKS:
        raise UserError(f"unknown task {spec!r}; expected one of: {', '.join(TASKS.names())}, "
                        f"rg:<reasoning-gym name>, hf:<dataset>, or a {'/'.join(FILE_SUFFIXES)} file")
    factory = TASKS.get(spec)
    check_options(f"task {spec!r}", factory, options)
    return factory(**options)
