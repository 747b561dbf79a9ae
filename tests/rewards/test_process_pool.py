"""The deadline process pool: results, errors, soft timeouts, and a hard hang that costs one worker."""

import os
import time

import pytest

from r1zero.rewards.process_pool import GRACE_S, HARD_FACTOR, CallFailed, CallTimeout, DeadlineProcessPool

# Calls use builtins (exec, eval) so that the worker can unpickle them by name.


@pytest.fixture(scope="module")
def pool():
    pool = DeadlineProcessPool(2)
    yield pool
    pool.close()


def test_results_and_errors(pool):
    assert pool.call(eval, ("6 * 7",), timeout_s=10) == 42
    with pytest.raises(CallFailed, match="ZeroDivisionError"):
        pool.call(eval, ("1 / 0",), timeout_s=10)
    assert [kind for kind, _ in pool.map(eval, [("1",), ("1/0",), ("2",)], timeout_s=10)] == ["ok", "error", "ok"]


def test_work_is_spread_over_processes(pool):
    pids = {pid for _, pid in pool.map(os.getpid, [()] * 20, timeout_s=10)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_the_cpu_timer_stops_a_busy_call(pool):
    start = time.monotonic()
    with pytest.raises(CallTimeout, match="timed out after"):
        pool.call(exec, ("while True: pass",), timeout_s=0.5)
    assert time.monotonic() - start < HARD_FACTOR * 0.5 + GRACE_S
    assert pool.call(eval, ("1 + 1",), timeout_s=10) == 2


def test_a_call_the_timer_cannot_stop_costs_its_worker_only(pool):
    # Sleeping uses no CPU, so only the parent's wall-clock deadline ends it, by killing the worker.
    start = time.monotonic()
    with pytest.raises(CallTimeout, match="worker killed"):
        pool.call(exec, ("import time; time.sleep(60)",), timeout_s=0.5)
    assert time.monotonic() - start < 30
    assert [value for _, value in pool.map(eval, [("3",)] * 4, timeout_s=30)] == [3] * 4


def test_start_up_is_not_charged_to_the_first_call():
    # Importing sympy takes seconds; a 0.5 s budget still scores, since the call starts once ready.
    slow_start = DeadlineProcessPool(1, preload=("sympy",))
    try:
        assert slow_start.call(eval, ("2 + 2",), timeout_s=0.5) == 4
    finally:
        slow_start.close()
