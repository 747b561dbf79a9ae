"""Weighted sum of several rewards, where a reward that fails costs one sample, never the run.

`combine` calls each reward once per sample (so a raise or a hang is charged to that sample
alone), in parallel on daemon threads, each call with a time budget. A call that raises, returns
something other than one number or None, or runs past `timeout_s` scores 0 and is counted under
`reward/<name>/errors`. A hung call cannot be stopped from Python: its thread is abandoned (a
daemon, so it does not block exit) and a fresh thread takes its place. Rewards that do heavy work
(`math`, `code`) already run it in worker processes with their own timeouts, so threads suffice.

As in TRL, the total is the weighted sum with None (not applicable) counted as 0; each reward's
mean is over the samples where it applies (None when it applies to none). Departure from TRL,
which calls each reward once per batch and lets an exception end training: here only a reward that
raised on every sample ends it (`stop_if_all_raise`, what training asks for), with a `UserError`
naming the reward and its exception, since nothing can be learned from it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from r1zero.errors import UserError
from r1zero.rewards.base import REWARDS, RewardFn

log = logging.getLogger(__name__)

RewardSpecs = dict[str, float] | Sequence[tuple[str | RewardFn, float]]


def resolve_specs(specs: RewardSpecs) -> list[tuple[str, RewardFn, float]]:
    """(name, function, weight) per reward; a spec may give a function instead of a registered name."""
    items = list(specs.items()) if isinstance(specs, dict) else list(specs)
    resolved = []
    for ref, weight in items:
        name = ref if isinstance(ref, str) else getattr(ref, "__name__", repr(ref))
        resolved.append((name, REWARDS.get(ref) if isinstance(ref, str) else ref, float(weight)))
    names = [name for name, _, _ in resolved]
    if len(set(names)) != len(names):
        raise UserError(f"rewards: each reward may appear once; got {names}")
    return resolved


def sample_columns(columns: dict[str, Any], i: int, n: int) -> dict[str, Any]:
    """Columns for sample i alone: per-sample lists are sliced, anything else (TRL's trainer_state)
    is passed through."""
    return {k: [v[i]] if isinstance(v, (list, tuple)) and len(v) == n else v for k, v in columns.items()}


def _one_score(fn: RewardFn, prompt: Any, completion: Any, columns: dict[str, Any]) -> float | None:
    result = fn([prompt], [completion], **columns)
    if not isinstance(result, (list, tuple)) or len(result) != 1:
        raise TypeError(f"a reward must return a list with one score per completion; got {result!r}")
    score = result[0]
    if score is not None and (not isinstance(score, (int, float)) or math.isnan(score)):
        raise TypeError(f"a score must be a number or None; got {score!r}")
    return None if score is None else float(score)


def run_with_budgets(calls: Sequence[Callable[[], Any]], timeout_s: float,
                     max_workers: int) -> list[tuple[str, Any]]:
    """Run every call on daemon worker threads; per call ("ok", value), ("error", exc) or
    ("timeout", None) when it ran longer than `timeout_s` (timed from its own start)."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(calls)):
        todo.put(i)
    events: queue.SimpleQueue[tuple[int, str, Any]] = queue.SimpleQueue()

    def worker() -> None:
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            events.put((i, "start", time.monotonic()))
            try:
                events.put((i, "ok", calls[i]()))
            except BaseException as exc:  # noqa: BLE001 - any failure is this sample's, not the run's
                events.put((i, "error", exc))

    def start_worker() -> None:
        threading.Thread(target=worker, daemon=True, name="r1zero-reward-call").start()

    for _ in range(min(max_workers, len(calls))):
        start_worker()
    results: list[tuple[str, Any] | None] = [None] * len(calls)
    running: dict[int, float] = {}  # call index -> start time
    remaining = len(calls)
    while remaining:
        wait = min(running.values()) + timeout_s - time.monotonic() if running else timeout_s
        try:
            i, kind, value = events.get(timeout=max(0.0, wait))
        except queue.Empty:
            i, kind, value = -1, "", None
        if kind == "start":
            running[i] = value
        elif kind and results[i] is None:
            running.pop(i, None)
            results[i] = (kind, value)
            remaining -= 1
        now = time.monotonic()
        for j, started in list(running.items()):
            if now - started >= timeout_s:  # its thread is stuck: abandon it, start another
                del running[j]
                results[j] = ("timeout", None)
                remaining -= 1
                start_worker()
    return results  # type: ignore[return-value]


def combine(specs: RewardSpecs, prompts: Sequence, completions: Sequence, columns: dict[str, Any] | None = None,
            timeout_s: float = 30.0, max_workers: int | None = None, stop_if_all_raise: bool = False
            ) -> tuple[list[float], dict[str, float | None], dict[str, int]]:
    """(total per sample, {"reward/<name>": mean}, {"reward/<name>/errors": count}); a reward with
    an `outcomes` counter (`code`) adds {"reward/<name>/<kind>": count}, kind passed, failed, ...

    With `stop_if_all_raise`, a reward that raised on every sample raises a UserError instead.

    >>> total, means, errors = combine({"format": 0.5, "exact": 1.0}, ["Q"] * 2,
    ...     ["<think>.</think><answer>4</answer>", "<answer>5</answer>"], {"answer": ["4", "4"]})
    >>> total, means, errors
    ([1.5, 0.0], {'reward/format': 0.5, 'reward/exact': 0.5}, {'reward/format/errors': 0, 'reward/exact/errors': 0})
    """
    columns = columns or {}
    rewards = resolve_specs(specs)
    n = len(completions)
    if len(prompts) != n:
        raise UserError(f"rewards: {len(prompts)} prompts for {n} completions")
    per_sample = [sample_columns(columns, i, n) for i in range(n)]
    calls = [functools.partial(_one_score, fn, prompts[i], completions[i], per_sample[i])
             for _, fn, _ in rewards for i in range(n)]
    outcomes = run_with_budgets(calls, timeout_s, max_workers or max(4, 2 * (os.cpu_count() or 1)))
    total = [0.0] * n
    means: dict[str, float | None] = {}
    errors: dict[str, int] = {}
    for k, (name, fn, weight) in enumerate(rewards):
        scores = []
        errors[f"reward/{name}/errors"] = 0
        for i, (kind, value) in enumerate(outcomes[k * n:(k + 1) * n]):
            if kind != "ok":
                if not errors[f"reward/{name}/errors"]:
                    log.warning("reward %s: a sample scored 0 after %s: %r", name,
                                "timing out" if kind == "timeout" else "an error", value)
                errors[f"reward/{name}/errors"] += 1
                value = 0.0
            if value is not None:
                scores.append(value)
                total[i] += weight * value
        means[f"reward/{name}"] = sum(scores) / len(scores) if scores else None
        counter = getattr(fn, "outcomes", None)  # a reward that counts its samples' outcomes (`code`)
        if counter is not None:
            errors.update({f"reward/{name}/{kind}": count for kind, count in counter.drain().items()})
        kinds = [kind for kind, _ in outcomes[k * n:(k + 1) * n]]
        if stop_if_all_raise and n and kinds.count("error") == n:
            exc = outcomes[k * n][1]
            raise UserError(f"reward {name} raised on every one of {n} completions ({type(exc).__name__}: "
                            f"{(str(exc).splitlines() or [''])[0][:200]}); expected a score for each completion")
    return total, means, errors
