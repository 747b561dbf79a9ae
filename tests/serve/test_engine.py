"""The engine: continuous batching must not change what each sequence generates."""

from __future__ import annotations

import threading
import time

import pytest

from r1zero.serve.engine import Engine, EngineFull, Sequence


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model):
    from r1zero.models.io import load_model, load_tokenizer

    return load_model(tiny_model), load_tokenizer(tiny_model)


class Collector:
    """A sink per sequence that keeps its events; `wait` until all have finished."""

    def __init__(self):
        self.events, self.done = {}, threading.Semaphore(0)

    def sink(self, key):
        self.events[key] = []

        def put(event):
            self.events[key].append(event)
            if event.finish_reason:
                self.done.release()
        return put

    def wait(self, count: int, timeout: float = 120) -> None:
        for _ in range(count):
            assert self.done.acquire(timeout=timeout), "a sequence never finished"


def test_greedy_matches_hf_generate_whatever_joins_the_batch(model_and_tokenizer):
    from r1zero.rollout.base import SamplingParams
    from r1zero.rollout.hf import HFSampler

    model, tok = model_and_tokenizer
    prompts = [tok(p, add_special_tokens=False)["input_ids"] for p in
               ["12+34=", "987+6=", "5*7=", "123-45=", "9+9=", "44444+1=", "7="]]
    lengths = [30, 12, 30, 5, 30, 30, 20]
    expected = [HFSampler(model, tok).generate([p], 1, SamplingParams(n, temperature=0.0, stop=[]))[0]
                for p, n in zip(prompts, lengths)]
    engine, got = Engine(model, tok, max_batch=4, end_tokens=()).start(), Collector()
    try:
        def seq(i):
            return Sequence(prompts[i], got.sink(i), max_new_tokens=lengths[i], temperature=0.0)

        engine.submit([seq(0), seq(1)])
        time.sleep(0.05)  # later arrivals join a running batch; beyond 4 rows they wait
        engine.submit([seq(2)])
        engine.submit([seq(i) for i in range(3, 7)])
        got.wait(7)
    finally:
        engine.close()
    for i, ref in enumerate(expected):
        events = got.events[i]
        assert "".join(e.text for e in events) == ref.text
        assert events[-1].token_ids == ref.completion_ids
        assert events[-1].completion_tokens == len(ref.completion_ids)
        assert events[-1].finish_reason == ref.finish_reason


def test_seeded_sampling_does_not_depend_on_the_batch(model_and_tokenizer):
    model, tok = model_and_tokenizer
    engine, got = Engine(model, tok, end_tokens=()).start(), Collector()
    try:
        alone = Sequence([5, 6, 7], got.sink("alone"), max_new_tokens=16, temperature=1.0, seed=3)
        engine.submit([alone])
        got.wait(1)
        crowd = [Sequence([5, 6, 7], got.sink("seeded"), max_new_tokens=16, temperature=1.0, seed=3)]
        crowd += [Sequence([9, 9], got.sink(k), max_new_tokens=16, temperature=1.0) for k in range(5)]
        engine.submit(crowd)
        got.wait(6)
    finally:
        engine.close()
    assert got.events["alone"][-1].token_ids == got.events["seeded"][-1].token_ids


def test_cancelled_sequences_leave_and_bounds_hold(model_and_tokenizer):
    model, tok = model_and_tokenizer
    engine, got = Engine(model, tok, max_batch=2, max_waiting=1, end_tokens=()), Collector()
    seqs = [Sequence([5, 6], got.sink(k), max_new_tokens=50, temperature=0.0) for k in range(3)]
    engine.submit(seqs)
    with pytest.raises(EngineFull):
        engine.submit([Sequence([5], got.sink("extra"), max_new_tokens=1)])
    seqs[0].cancel()
    engine.start()
    try:
        got.wait(2)
    finally:
        engine.close()
    assert not got.events[0], "a cancelled sequence reports nothing"
    assert [got.events[k][-1].completion_tokens for k in (1, 2)] == [50, 50]
