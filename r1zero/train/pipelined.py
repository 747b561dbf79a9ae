"""Where the RL loop's rollouts come from: sampled in turn with the updates, or k steps ahead of them.

`InTurn` (async_level 0) calls the step's sampling function when the loop asks for step t, with the
policy after step t-1. `RolloutsAhead` (async_level k >= 1) runs the same function in a worker while the
learner trains: step t's batch is sampled with the weights handed over after step t-1-k (the initial
weights for t <= k+1), a fixed lag whatever the speeds, so a run is a pure function of its seed. Order is
kept by one request queue, read by the worker in turn: weights after step v, then "sample step v+1+k".

The worker is a second process (its own copy of the policy; `threads` torch threads, so the learner and
the sampler each keep one core busy), or a thread when the sampler's compute already lives elsewhere (the
ray pool's actors: the thread only waits on them). The process is forked where everything runs on the
CPU on one torch thread (`start_method="fork"`): it then shares the learner's imported libraries and
heap, page for page, until one side writes them (~190 MB that a spawned worker holds again). The garbage
collector is frozen from the fork until `close` (CPython's gc.freeze), so that neither side's collections
write to, and so copy, every object alive at the fork. CUDA cannot be forked, nor libgomp's thread pool:
with a GPU, vLLM or more threads the worker is spawned. Weights are copied to the CPU before they are
queued, since the learner goes on changing its own tensors in place.

The worker also lends its idle time to the update (`rl.worker_pieces`): the last weights it was handed are
those step t's update starts from (it samples step t+k with them), so after sampling it can compute the
gradient of some of step t's pieces on its own copy; the learner adds them to its own, after its own and
in piece order, so the sum is the same every run (not bit-equal to one process computing every piece: the
float additions come in another order).

A checkpoint after step t holds the batches of steps t+1..t+k, already sampled with weights it does not
keep, and the sampling side's state (the curriculum) after them; a resumed run restores them, hands the
worker step t's weights, and asks for step t+k+1: what the killed run would have sampled, bit for bit.
Taking the checkpoint waits for those k batches, which the next steps wait for anyway.

Departures from verl's one-step-off and AReaL: one sampler worker, no partial rollouts interrupted by a
weight update, and the lag is exactly k after the first k steps ("at most k" in AReaL), which is what
keeps runs reproducible; weights go through a queue (shared memory), not an NCCL broadcast.
"""

from __future__ import annotations

import copy
import gc
import os
import queue
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import torch

from r1zero.errors import UserError

POLL_S = 1.0  # how often a waiting side checks that the other is still alive


class InTurn:
    """async_level 0: step t's rollouts are sampled when the loop asks for them, with the current policy."""

    def __init__(self, step_fn):
        self.step_fn = step_fn
        self.sampler = step_fn.sampler

    def checkpoint_objects(self) -> dict:
        return self.step_fn.checkpoint_objects()

    def start(self, done: int, weights: dict) -> None:
        if done:  # samplers with their own copy (vllm, ray) start from the folder's weights
            self.step_fn.update_weights(weights)

    def get(self, step: int) -> tuple[Any, int]:
        """(step's sampled batch, policy lag 0)."""
        return self.step_fn(step), 0

    def update_weights(self, step: int, weights: dict) -> None:
        self.step_fn.update_weights(weights)

    def close(self) -> None:
        getattr(self.sampler, "close", lambda: None)()


class RolloutsAhead:
    """async_level `lag` >= 1: a worker samples steps ahead; `get(t)` returns step t's batch and its lag.

    Give either `make_step_fn` (picklable: builds the step function in the worker process) or `step_fn`
    (run by a thread in this process). A step function is called with the step and has
    `update_weights(state)`, `state_dict()`, `load_state_dict(state)` and `checkpoint_objects()`.
    """

    sampler = None  # the loop's weight check has nothing in this process to compare

    def __init__(self, lag: int, total: int, make_step_fn: Callable | None = None, step_fn=None, threads: int = 1,
                 start_method: str = "spawn"):
        self.lag, self.total = lag, total
        self.ready: dict[int, tuple[Any, int]] = {}  # step -> (batch, version of the weights it was sampled with)
        self.versions: dict[int, int] = {}  # requested, not yet received: step -> weights version
        self.version = self.requested = self.received = 0
        self.step_state: dict | None = None  # the step function's state after the last received step
        self.gradients: list[tuple] = []  # (grads, metrics) of update pieces, in the order asked
        self.step_fn = step_fn
        if step_fn is not None:
            self.requests, self.results = queue.Queue(), queue.Queue()
            self.worker = threading.Thread(target=serve, args=(lambda: step_fn, self.requests, self.results),
                                           daemon=True, name="rollouts-ahead")
        else:
            mp = torch.multiprocessing.get_context(start_method)
            self.requests, self.results = mp.Queue(), mp.Queue()
            self.worker = mp.Process(target=serve, args=(make_step_fn, self.requests, self.results, os.getpid(),
                                                         threads), daemon=True, name="rollouts-ahead")
        self.frozen = start_method == "fork"
        if self.frozen:  # neither side's collector touches (and so copies) what they share, until close()
            gc.collect()
            gc.freeze()
        self.worker.start()  # a process loads its model while the learner's process sets up
        # A run that stops on an error never calls close: the worker is told to stop once this object is gone.
        self.stop_when_gone = weakref.finalize(self, let_go, self.requests, self.frozen)

    def checkpoint_objects(self) -> dict:
        return {"rollouts_ahead": self}

    def start(self, done: int, weights: dict) -> None:
        """Begin after `done` steps (0, or a resumed checkpoint's) with the learner's weights of then."""
        self.version = done
        self.requests.put(("weights", cpu_copy(weights)))
        if self.step_state is not None:
            self.requests.put(("state", self.step_state))
        self.requested = max(self.ready, default=done)
        self.request_up_to(done + 1 + self.lag)

    def request_up_to(self, last: int) -> None:
        while self.requested < min(last, self.total):
            self.requested += 1
            self.versions[self.requested] = self.version
            self.requests.put(("sample", self.requested))

    def get(self, step: int) -> tuple[Any, int]:
        """(step's batch, its policy lag: updates the learner made since the weights it was sampled with)."""
        while step not in self.ready:
            self.receive()
        batch, version = self.ready.pop(step)
        return batch, step - 1 - version

    def update_weights(self, step: int, weights: dict) -> None:
        """Step `step`'s update is done: hand its weights over; they will sample step + 1 + lag."""
        self.version = step
        self.requests.put(("weights", cpu_copy(weights)))
        self.request_up_to(step + 1 + self.lag)

    def send_gradient(self, work) -> None:
        """Ask for a piece of the current update (`learner.PieceWork`): after the batches already asked for,
        on the weights handed over last, which are the ones the learner's update starts from."""
        self.requests.put(("gradient", work))

    def receive_gradient(self) -> tuple:
        """The oldest asked-for piece's (gradients, metrics)."""
        while not self.gradients:
            self.receive()
        return self.gradients.pop(0)

    def receive(self) -> None:
        message = next_result(self.results, self.worker.is_alive, lambda: "the rollout worker stopped without a "
                              f"word (exit code {getattr(self.worker, 'exitcode', None)})")
        if message[0] == "gradient":
            self.gradients.append(message[1:])
            return
        _, step, batch, state = message
        self.ready[step] = (batch, self.versions.pop(step))
        self.received, self.step_state = step, state

    def state_dict(self) -> dict:
        """At a checkpoint after step `version`: the batches sampled with older weights, waited for."""
        while self.received < min(self.version + self.lag, self.requested):
            self.receive()
        return {"ready": dict(self.ready), "step_state": self.step_state, "received": self.received}

    def load_state_dict(self, state: dict) -> None:
        self.ready, self.step_state, self.received = dict(state["ready"]), state["step_state"], state["received"]

    def close(self) -> None:
        self.stop_when_gone.detach()
        if self.worker.is_alive():
            self.requests.put(("stop",))
            self.worker.join(timeout=30)
        if isinstance(self.worker, threading.Thread):
            getattr(self.step_fn.sampler, "close", lambda: None)()
        elif self.worker.is_alive():
            self.worker.terminate()
            self.worker.join()
        if self.frozen:
            gc.unfreeze()
            self.frozen = False


def let_go(requests, frozen: bool) -> None:
    """A dropped pipeline's last act: the worker stops, and the collector sees the learner's objects again."""
    requests.put(("stop",))
    if frozen:
        gc.unfreeze()


def cpu_copy(state: dict) -> dict:
    """A copy of a state dict's tensors on the CPU, untouched by the learner's later steps."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def next_result(results, alive: Callable[[], bool], stopped: Callable[[], str]) -> tuple:
    """The next message on `results`, waiting while the processes that answer are `alive()`. An error they
    sent is raised here (a UserError where it was one); their end without a word is a RuntimeError that
    `stopped()` words. The rollout worker's and the pretraining helpers' side of the learner."""
    while True:
        try:
            message = results.get(timeout=POLL_S)
        except queue.Empty:
            if alive():
                continue
            try:  # a process may have put its last word just before it ended
                message = results.get(timeout=POLL_S)
            except queue.Empty:
                raise RuntimeError(stopped()) from None
        if message[0] == "error":
            _, text, user_error = message
            raise (UserError if user_error else RuntimeError)(text)
        return message


def next_request(requests, parent_pid: int | None):
    """The next request; ("stop",) once the learner's process is gone (a SIGKILLed run leaves no worker)."""
    while True:
        try:
            return requests.get(timeout=POLL_S)
        except queue.Empty:
            if parent_pid is not None and os.getppid() != parent_pid:
                return ("stop",)


def serve(make_step_fn: Callable, requests, results, parent_pid: int | None = None, threads: int = 0) -> None:
    """The worker's loop: requests in order (weights, state, sample step, gradient of an update piece, stop);
    batches, gradients and errors out."""
    try:
        if threads:  # a process of its own; a thread shares the learner's setting
            torch.set_num_threads(threads)
        step_fn = make_step_fn()
        while (request := next_request(requests, parent_pid))[0] != "stop":
            kind, arg = request
            if kind == "weights":
                step_fn.update_weights(arg)
            elif kind == "state":
                step_fn.load_state_dict(arg)
            elif kind == "gradient":
                results.put(("gradient", *step_fn.gradient(arg)))
            else:
                batch = step_fn(arg)
                results.put(("sampled", arg, batch, copy.deepcopy(step_fn.state_dict())))
    except UserError as e:
        results.put(("error", str(e), True))
    except BaseException:  # noqa: BLE001 - whatever stops the worker reaches the learner's process as text
        results.put(("error", "the rollout worker failed:\n" + traceback.format_exc(), False))
