"""Evaluation on several processes of one machine, one core each.

An evaluation is a list of chunks, each one batched generate with its own seed (`evaluate.plan_chunks`);
a chunk's samples depend on nothing else, so `processes` spawned workers can generate them in any order
and the figures are one process's, bit for bit. The workers load each model folder once and keep it for
the stage's next split; scoring stays in the stage's process, which otherwise waits.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self

import torch

_LOADED: dict[str, Any] = {}  # in a worker: model folder -> (model, tokenizer)


def chunk_generate(model, tokenizer, ids: list[list[int]], k: int, sampled_params, greedy_params, budget: dict,
                   tools: list, max_turns: int) -> tuple[list, list | None]:
    """(k samples per prompt, prompt-major; one greedy answer per prompt, or None)."""
    from r1zero.eval.inference import generate_samples
    from r1zero.eval.tools import tool_generate

    generate = tool_generate(tools, max_turns) if tools else generate_samples
    sampled = generate(model, tokenizer, ids, k, sampled_params, **budget)
    greedy = generate(model, tokenizer, ids, 1, greedy_params, **budget) if greedy_params is not None else None
    return sampled, greedy


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def _worker_chunk(model_dir: str, device: str, *args) -> tuple[list, list | None]:
    from r1zero.models.io import load_model, load_tokenizer

    if model_dir not in _LOADED:
        _LOADED.clear()
        _LOADED[model_dir] = (load_model(model_dir, device=device), load_tokenizer(model_dir))
    return chunk_generate(*_LOADED[model_dir], *args)


class ChunkPool:
    """`processes` spawned workers; `generate(...)` yields each chunk's samples in chunk order."""

    def __init__(self, processes: int, threads: int = 1):
        ctx = torch.multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(processes, mp_context=ctx, initializer=_set_threads, initargs=(threads,))

    def generate(self, model_dir, device: str, chunks: list[tuple], k: int, budget: dict, tools: list,
                 max_turns: int):
        """chunks: (prompt ids, sampling params, greedy params or None) each."""
        futures = [self.executor.submit(_worker_chunk, str(model_dir), device, ids, k, params, greedy, budget,
                                        tools, max_turns) for ids, params, greedy in chunks]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
