"""A small process pool whose calls each have a deadline: a worker that overruns is killed and replaced.

CPU-bound scoring (math-verify's sympy work) needs processes to use more than one core, and it can
hang on a pathological answer. `concurrent.futures.ProcessPoolExecutor` cannot kill one stuck
worker (only break the whole pool), so each worker here serves one call at a time over its own
pipe. Inside a worker the call runs in the main thread under a SIGALRM timer (the cheap, usual
path); the parent's deadline, a little later, catches what the timer cannot (a long C call).

Workers start from a forkserver (safe with threads in the parent, unlike fork) that preloads the
named modules once, so a replacement worker is ready in milliseconds.
"""

from __future__ import annotations

import atexit
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

GRACE_S = 1.0  # the parent waits this long past the in-worker timer before killing a worker


class CallTimeout(Exception):
    """The call ran past its deadline (the worker was interrupted or killed)."""


class CallFailed(Exception):
    """The call raised in the worker; the message names the original exception."""


def _raise_timeout(signum: int, frame: Any) -> None:
    raise CallTimeout("timed out in worker")


def _serve(conn: Connection) -> None:
    """Worker loop: receive (fn, args, timeout_s), run it under a SIGALRM timer, send the outcome."""
    signal.signal(signal.SIGALRM, _raise_timeout)
    while True:
        try:
            fn, args, timeout_s = conn.recv()
        except EOFError:
            return
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            outcome = ("ok", fn(*args))
        except CallTimeout:
            outcome = ("timeout", None)
        except Exception as exc:  # noqa: BLE001 - any failure of the call is reported, the worker lives
            outcome = ("error", f"{type(exc).__name__}: {exc}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        conn.send(outcome)


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Connection


class DeadlineProcessPool:
    """`workers` processes; `call(fn, args, timeout_s)` is thread-safe and blocks for a free worker."""

    def __init__(self, workers: int, preload: Sequence[str] = ()):
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:
            self._ctx.set_forkserver_preload(list(preload))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self.workers = workers
        for _ in range(workers):
            self._idle.put(self._start())
        atexit.register(self.close)

    def _start(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe()
        process = self._ctx.Process(target=_serve, args=(child_end,), daemon=True, name="r1zero-reward")
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        with self._lock:
            self._all.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> _Worker:
        worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()
        with self._lock:
            self._all.remove(worker)
        return self._start()

    def call(self, fn: Callable, args: tuple, timeout_s: float) -> Any:
        """fn(*args) in a worker; raises CallTimeout past `timeout_s`, CallFailed if it raised."""
        worker = self._idle.get()
        try:
            worker.conn.send((fn, args, timeout_s))
            if not worker.conn.poll(timeout_s + GRACE_S):
                worker = self._replace(worker)
                raise CallTimeout(f"killed after {timeout_s + GRACE_S:.1f} s")
            kind, value = worker.conn.recv()
        except (EOFError, OSError) as exc:  # the worker died (killed by memory pressure, a crash)
            worker = self._replace(worker)
            raise CallFailed(f"worker died: {exc!r}") from None
        finally:
            self._idle.put(worker)
        if kind == "timeout":
            raise CallTimeout(f"timed out after {timeout_s:.1f} s")
        if kind == "error":
            raise CallFailed(value)
        return value

    def map(self, fn: Callable, arg_tuples: Sequence[tuple], timeout_s: float) -> list[tuple[str, Any]]:
        """Each fn(*args) in parallel; per item ("ok", value) or ("timeout" | "error", message)."""

        def one(args: tuple) -> tuple[str, Any]:
            try:
                return "ok", self.call(fn, args, timeout_s)
            except CallTimeout as exc:
                return "timeout", str(exc)
            except CallFailed as exc:
                return "error", str(exc)

        if len(arg_tuples) <= 1:
            return [one(args) for args in arg_tuples]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(arg_tuples))) as threads:
            return list(threads.map(one, arg_tuples))

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.conn.close()
            worker.process.kill()
            worker.process.join(timeout=5)


_POOLS: dict[tuple[int, tuple[str, ...]], DeadlineProcessPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int, preload: Sequence[str] = ()) -> DeadlineProcessPool:
    """One pool per (size, preload), started on first use and reused for the life of the process."""
    key = (workers, tuple(preload))
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = DeadlineProcessPool(workers, preload)
        return _POOLS[key]
