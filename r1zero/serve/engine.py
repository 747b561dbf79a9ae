"""The serving engine: continuous batching over a KV cache, streaming each sequence's text as it grows.

A background thread owns one running batch. Every step feeds the last token of each row through the
model with the shared KV cache and samples the next; a row that finishes leaves the batch at once,
and sequences that arrived meanwhile are prefilled together and join it (their cache left-padded to
the batch's length). Each sequence reports its new text to its `sink` after every step, so replies
stream token by token while all concurrent requests share the same forward passes.

Departures from vLLM and TGI, which this imitates at toy scale: no paged attention (the cache is one
padded tensor per layer, as long as the longest live row) and no chunked prefill (a prompt is
prefilled in one forward, between two decode steps). Models whose cache has sliding-window layers
are not supported. `</answer>` (when it is one token) ends a reply like EOS does: the project's
reasoning models answer once, and RL rollouts stop there too.
"""

from __future__ import annotations

import copy
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.serve.decoding import IncrementalDetokenizer, StopText, sample_tokens

log = logging.getLogger(__name__)


@dataclass
class Event:
    """What a sequence tells its sink: new text, and in its last event why and with which tokens it ended."""

    text: str  # new text since the previous event
    completion_tokens: int  # tokens generated so far
    finish_reason: str | None = None  # "stop" | "length" | "error" in the last event
    token_ids: list[int] | None = None  # the whole completion, in the last event
    error: str | None = None


class Sequence:
    """One completion being generated: its prompt, its sampling settings and where its text goes."""

    def __init__(self, prompt_ids: list[int], sink: Callable[[Event], None], *, max_new_tokens: int,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, stop: list[str] | None = None,
                 seed: int | None = None):
        self.prompt_ids, self.sink, self.max_new_tokens = list(prompt_ids), sink, max_new_tokens
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.text = StopText(stop or [])
        self.sent = 0  # characters of `text` already given to the sink
        self.cancelled = self.finished = False
        self.detok: IncrementalDetokenizer | None = None
        self.end_ids: set[int] = set()
        self.context = 0

    def cancel(self) -> None:
        """Stop generating (the client went away); the engine drops the row at its next step."""
        self.cancelled = True

    def bind(self, tokenizer, end_ids: set[int], context: int) -> None:
        self.detok, self.end_ids, self.context = IncrementalDetokenizer(tokenizer), end_ids, context

    def advance(self, token: int) -> bool:
        """Take the next generated token, report new text; True when the sequence has finished."""
        if self.cancelled:
            self.finished = True
            return True
        self.text.push(self.detok.push(token))
        n = len(self.detok.ids)
        if self.text.stopped or token in self.end_ids:
            reason = "stop"
        elif n >= self.max_new_tokens or len(self.prompt_ids) + n >= self.context:
            reason = "length"
        else:
            reason = None
        end = self.text.ready(final=reason is not None)
        if end > self.sent or reason:
            self._emit(Event(self.text.text[self.sent : end], n, reason, list(self.detok.ids) if reason else None))
            self.sent = end
        self.finished = self.finished or reason is not None
        return self.finished

    def fail(self, message: str) -> None:
        if not self.finished:
            self.finished = True
            ids = list(self.detok.ids) if self.detok else []
            self._emit(Event("", len(ids), "error", ids, message))

    def _emit(self, event: Event) -> None:
        try:
            self.sink(event)
        except Exception:  # a listener that is gone (its event loop closed) ends only its own sequence
            log.warning("dropping a sequence whose listener failed", exc_info=True)
            self.finished = True


class EngineFull(Exception):
    """More sequences than the engine may hold (running + waiting)."""


class Batch:
    """The running rows and their shared KV cache; rows are left-padded to one length."""

    def __init__(self, rows: list[Sequence], cache, mask: torch.Tensor, last: torch.Tensor, positions: torch.Tensor):
        self.rows, self.cache = rows, cache
        self.mask = mask  # (B, T) 1 = real token, 0 = left padding
        self.last = last  # (B,) the latest sampled token of each row, not yet in the cache
        self.positions = positions  # (B,) position id of `last`

    def keep(self, index: list[int]) -> None:
        """Keep only rows `index`, then drop the leading columns that are padding in every row."""
        idx = torch.tensor(index, device=self.mask.device)
        self.rows = [self.rows[i] for i in index]
        self.mask, self.last, self.positions = self.mask[idx], self.last[idx], self.positions[idx]
        start = int(self.mask.any(dim=0).int().argmax())  # first column some row still uses
        self.mask = self.mask[:, start:]
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[idx, :, start:], layer.values[idx, :, start:]

    def join(self, other: Batch) -> Batch:
        """Both batches' rows in one batch (`self` first), the shorter cache left-padded."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        self.mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(other.mask, width, 1)])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([_pad_left(mine.keys, width, 2), _pad_left(theirs.keys, width, 2)])
            mine.values = torch.cat([_pad_left(mine.values, width, 2), _pad_left(theirs.values, width, 2)])
        self.rows += other.rows
        self.last = torch.cat([self.last, other.last])
        self.positions = torch.cat([self.positions, other.positions])
        return self


def _pad_left(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing == 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


class Engine:
    """Batched generation for many concurrent requests; `submit` sequences, read their sinks."""

    def __init__(self, model, tokenizer, max_batch: int = 32, max_waiting: int = 256,
                 end_tokens: tuple[str, ...] = ("</answer>",), seed: int | None = None):
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        self.model, self.tokenizer = model, copy.deepcopy(tokenizer)  # fast tokenizers are not thread-safe
        self.max_batch, self.max_waiting = max_batch, max_waiting
        self.context = getattr(model.config, "max_position_embeddings", None) or 2**31
        self.device = next(model.parameters()).device  # batch tensors live there; sampling runs on the CPU
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.end_ids = {tokenizer.eos_token_id} | {ids[0] for ids in (
            tokenizer(t, add_special_tokens=False)["input_ids"] for t in end_tokens) if len(ids) == 1}
        if any(type(layer) is not DynamicLayer for layer in DynamicCache(config=model.config).layers):
            raise NotImplementedError("the serving engine supports full-attention models only (no sliding window)")
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.x
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(seed)
        self._cond = threading.Condition()
        self._waiting: deque[Sequence] = deque()
        self._batch: Batch | None = None
        self._running = 0
        self._stopping = False
        self.steps = self.prefills = self.tokens = 0  # decode steps, prefill forwards, tokens generated
        self._thread = threading.Thread(target=self._loop, name="r1zero-engine", daemon=True)

    def start(self) -> Engine:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def submit(self, seqs: list[Sequence]) -> None:
        """Queue `seqs` for generation; EngineFull when running + waiting would exceed the bounds."""
        with self._cond:
            if self._running + len(self._waiting) + len(seqs) > self.max_batch + self.max_waiting:
                raise EngineFull(f"the server is at capacity ({self.max_batch} running, {self.max_waiting} "
                                 f"waiting); retry later")
            for s in seqs:
                s.bind(self.tokenizer, self.end_ids, self.context)
            self._waiting.extend(seqs)
            self._cond.notify()

    def stats(self) -> dict:
        with self._cond:
            return {"running": self._running, "waiting": len(self._waiting), "steps": self.steps,
                    "prefills": self.prefills, "tokens": self.tokens}

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._waiting or self._batch):
                    self._cond.wait()
                if self._stopping:
                    break
                room = self.max_batch - (len(self._batch.rows) if self._batch else 0)
                admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
                self._running += len(admitted)
            try:
                with torch.inference_mode():
                    if admitted:
                        self._admit(admitted)
                    if self._batch:
                        self._step()
            except Exception as e:  # one bad batch must not kill the server
                log.exception("generation failed")
                for s in admitted + (self._batch.rows if self._batch else []):
                    s.fail(f"generation failed: {type(e).__name__}: {e}")
                self._batch = None
            with self._cond:
                self._running = len(self._batch.rows) if self._batch else 0
        for s in list(self._waiting) + (self._batch.rows if self._batch else []):
            s.fail("the server is shutting down")

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: cache})
        return out.logits[:, -1]  # (B, V)

    def _sample(self, logits: torch.Tensor, rows: list[Sequence]) -> torch.Tensor:
        """Next tokens (B,) on the model's device; sampled on the CPU, where the seeded generators are."""
        tokens = sample_tokens(logits.cpu(), torch.tensor([s.temperature for s in rows]),
                               torch.tensor([s.top_p for s in rows]), torch.tensor([s.top_k for s in rows]),
                               [s.generator for s in rows], self._generator)
        return tokens.to(self.device)

    def _admit(self, seqs: list[Sequence]) -> None:
        """Prefill `seqs` together, sample their first tokens, and join them to the running batch."""
        from transformers import DynamicCache

        width = max(len(s.prompt_ids) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id)  # (b, P) left-padded
        mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (b, P)
        for i, s in enumerate(seqs):
            ids[i, width - len(s.prompt_ids) :] = torch.tensor(s.prompt_ids)
            mask[i, width - len(s.prompt_ids) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (b, P)
        cache = DynamicCache(config=self.model.config)
        self.prefills += 1
        tokens = self._sample(self._forward(ids, mask, positions, cache), seqs)  # (b,)
        lengths = torch.tensor([len(s.prompt_ids) for s in seqs], device=self.device)
        new = self._advance(Batch(seqs, cache, mask, tokens, lengths))
        if new is not None:
            self._batch = new if self._batch is None else self._batch.join(new)

    def _step(self) -> None:
        """One decode step for every running row."""
        b = self._batch
        b.mask = torch.cat([b.mask, b.mask.new_ones((len(b.rows), 1))], dim=1)  # (B, T+1)
        logits = self._forward(b.last[:, None], b.mask, b.positions[:, None], b.cache)  # (B, V)
        b.last, b.positions = self._sample(logits, b.rows), b.positions + 1
        self.steps += 1
        self._batch = self._advance(b)

    def _advance(self, b: Batch) -> Batch | None:
        """Hand each row its new token; rows that finished leave the batch."""
        self.tokens += len(b.rows)
        keep = [i for i, (s, t) in enumerate(zip(b.rows, b.last.tolist())) if not s.advance(t)]
        if not keep:
            return None
        if len(keep) < len(b.rows):
            b.keep(keep)
        return b
