"""A small process pool whose calls each have a deadline: a worker that overruns is killed and replaced.

CPU-bound scoring (math-verify's sympy work) needs processes to use more than one core, and it can
hang on a pathological answer. `concurrent.futures.ProcessPoolExecutor` cannot kill one stuck
worker (only break the whole pool), so each worker here serves one call at a time. Inside a worker
the call runs in the main thread under a CPU-time timer (ITIMER_PROF: a busy machine slows a call
down but does not time it out); the parent's wall-clock deadline, `HARD_FACTOR` times longer,
catches what the timer cannot (a long C call) by killing the worker. A worker's start-up (imports)
is not charged to any call: the parent waits for the worker to say it is ready.

Workers are plain `python -c` subprocesses speaking length-prefixed pickles over their stdin and
stdout, not multiprocessing's spawn/forkserver children: those re-import the user's main script,
which breaks scripts without an `if __name__ == "__main__":` guard, and fork is unsafe with threads.
The price is an interpreter start per worker (about a second with math-verify preloaded), paid once
per worker and again only after a kill.
"""

from __future__ import annotations

import atexit
import math
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HARD_FACTOR, GRACE_S = 4.0, 2.0  # the parent kills a worker after HARD_FACTOR * timeout + GRACE_S seconds
STARTUP_TIMEOUT_S = 600.0  # a worker that is not ready by then (imports) is given up
_HEADER = struct.Struct("!Q")


class CallTimeout(Exception):
    """The call ran past its deadline (the worker was interrupted or killed)."""


class CallFailed(Exception):
    """The call raised in the worker, or the worker died; the message says which."""


def _write_message(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError("worker pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_message(fd: int) -> Any:
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    return pickle.loads(_read_exact(fd, size))


class BudgetExceeded(BaseException):
    """Raised by a timer inside a call. A BaseException, like KeyboardInterrupt, so that libraries'
    `except Exception` (math-verify swallows errors and tries the next comparison) let it through."""


def raise_budget_exceeded(signum: int, frame: Any) -> None:
    """A signal handler for timers that bound a call."""
    raise BudgetExceeded()


def _run_each(fn: Callable, batch: Sequence[tuple], timeout_s: float) -> list[tuple[str, Any]]:
    """fn(*args) for each args of the batch, each under its own CPU-time timer."""
    outcomes = []
    for args in batch:
        try:
            signal.setitimer(signal.ITIMER_PROF, timeout_s)
            outcomes.append(("ok", fn(*args)))
        except BudgetExceeded:
            outcomes.append(("timeout", f"timed out after {timeout_s:.1f} s of CPU"))
        except Exception as exc:  # noqa: BLE001 - any failure of the call is reported, the worker lives
            outcomes.append(("error", f"{type(exc).__name__}: {exc}"))
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    return outcomes


def serve(preload: Sequence[str]) -> None:
    """Worker main: say "ready", then answer each (fn, batch of args, timeout_s) from stdin with the
    batch's outcomes, on the original stdout (fd 1 now points at stderr, so prints cannot corrupt it)."""
    for module in preload:
        __import__(module)
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    signal.signal(signal.SIGPROF, raise_budget_exceeded)
    _write_message(reply_fd, "ready")
    while True:
        try:
            fn, batch, timeout_s = _read_message(0)
        except EOFError:
            return
        _write_message(reply_fd, _run_each(fn, batch, timeout_s))


class DeadlineProcessPool:
    """`workers` processes; `call(fn, args, timeout_s)` is thread-safe and waits for a free worker.
    `fn` must be importable by name (a module-level function), as for any process pool."""

    def __init__(self, workers: int, preload: Sequence[str] = ()):
        self.workers = workers
        self._preload = list(preload)
        self._idle: queue.Queue[subprocess.Popen] = queue.Queue()
        self._all: set[subprocess.Popen] = set()
        self._ready: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        for _ in range(workers):
            self._idle.put(self._start())
        atexit.register(self.close)

    def _start(self) -> subprocess.Popen:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        code = f"from r1zero.rewards.process_pool import serve; serve({self._preload!r})"
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True)
        with self._lock:
            self._all.add(proc)
        return proc

    def _replace(self, proc: subprocess.Popen) -> subprocess.Popen:
        self._stop(proc)
        return self._start()

    def _stop(self, proc: subprocess.Popen) -> None:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            pipe.close()
        with self._lock:
            self._all.discard(proc)
            self._ready.discard(proc)

    def _wait_ready(self, proc: subprocess.Popen) -> None:
        if proc in self._ready:
            return
        if not select.select([proc.stdout.fileno()], [], [], STARTUP_TIMEOUT_S)[0]:
            raise EOFError(f"worker not ready after {STARTUP_TIMEOUT_S:.0f} s")
        if _read_message(proc.stdout.fileno()) != "ready":
            raise EOFError("worker started badly")
        self._ready.add(proc)

    def _run_batch(self, fn: Callable, batch: Sequence[tuple], timeout_s: float) -> list[tuple[str, Any]] | None:
        """The batch's outcomes from one worker, or None when the worker had to be killed or died."""
        proc = self._idle.get()
        try:
            self._wait_ready(proc)
            _write_message(proc.stdin.fileno(), (fn, list(batch), timeout_s))
            hard_deadline_s = HARD_FACTOR * timeout_s * len(batch) + GRACE_S
            if not select.select([proc.stdout.fileno()], [], [], hard_deadline_s)[0]:
                proc = self._replace(proc)
                return None
            return _read_message(proc.stdout.fileno())
        except (EOFError, OSError):  # the worker died (a crash, the OOM killer)
            proc = self._replace(proc)
            return None
        finally:
            self._idle.put(proc)

    def _run_one(self, fn: Callable, args: tuple, timeout_s: float) -> tuple[str, Any]:
        outcomes = self._run_batch(fn, [args], timeout_s)
        return outcomes[0] if outcomes else ("timeout", "worker killed (or died) past its deadline")

    def call(self, fn: Callable, args: tuple, timeout_s: float) -> Any:
        """fn(*args) in a worker; raises CallTimeout past `timeout_s`, CallFailed if it raised."""
        kind, value = self._run_one(fn, args, timeout_s)
        if kind == "timeout":
            raise CallTimeout(value)
        if kind == "error":
            raise CallFailed(value)
        return value

    def map(self, fn: Callable, arg_tuples: Sequence[tuple], timeout_s: float) -> list[tuple[str, Any]]:
        """Each fn(*args) in parallel; per item ("ok", value) or ("timeout" | "error", message).

        Items travel in chunks (about 4 per worker) to spare a round trip per item; when a chunk's
        worker is killed, its items are rerun one by one, so only the item that hangs is lost."""
        items = list(arg_tuples)
        if not items:
            return []
        size = max(1, math.ceil(len(items) / (4 * self.workers)))
        chunks = [items[i:i + size] for i in range(0, len(items), size)]

        def run_chunk(chunk: list[tuple]) -> list[tuple[str, Any]]:
            outcomes = self._run_batch(fn, chunk, timeout_s)
            return outcomes if outcomes is not None else [self._run_one(fn, args, timeout_s) for args in chunk]

        if len(chunks) == 1:
            return run_chunk(chunks[0])
        with ThreadPoolExecutor(max_workers=min(self.workers, len(chunks))) as threads:
            return [outcome for outcomes in threads.map(run_chunk, chunks) for outcome in outcomes]

    def pids(self) -> list[int]:
        """Process ids of the current workers (for CPU accounting)."""
        with self._lock:
            return [proc.pid for proc in self._all]

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
        for proc in workers:
            self._stop(proc)


_POOLS: dict[tuple[int, tuple[str, ...]], DeadlineProcessPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int, preload: Sequence[str] = ()) -> DeadlineProcessPool:
    """One pool per (size, preload), started on first use and reused for the life of the process."""
    key = (workers, tuple(preload))
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = DeadlineProcessPool(workers, preload)
        return _POOLS[key]
