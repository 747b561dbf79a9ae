"""Hostile programs through the `code` reward: each scores 0, is contained, and leaves the host as it was.

Every program below would pass its test if it escaped; the table printed at the end shows how
each run ended. Namespace-only guarantees (no network, no writes outside the work dir, the fork
bomb's cleanup) are skipped, saying so, on machines where the sandbox falls back to process groups.
"""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from r1zero.rewards.code_exec import run_tests
from r1zero.rewards.sandbox import Limits, run_python, sandbox_mode

LIMITS = Limits(wall_s=3.0)
NAMESPACE = sandbox_mode() == "namespace"
needs_namespace = pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: this is not contained there")
TABLE: list[tuple[str, str, float, float]] = []


def outcome(run) -> str:
    box = run.sandbox
    if box.timed_out:
        return "killed at the wall-clock limit"
    if box.returncode and box.returncode < 0:
        return f"killed by signal {-box.returncode}"
    lines = box.stderr.strip().splitlines()
    return lines[-1][:70] if lines else f"exit {box.returncode}"


def hostile(name: str, code: str, test: str, limits: Limits = LIMITS):
    run = run_tests(code, [test], limits=limits)
    TABLE.append((name, outcome(run), run.score, run.sandbox.seconds))
    return run


def processes_named(comm: str) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and (entry / "comm").read_text().strip() == comm
        except OSError:
            pass
    return count


def test_infinite_loop():
    run = hostile("infinite loop", "while True:\n    pass\n", "assert True")
    assert run.score == 0.0 and run.sandbox.timed_out
    assert run.sandbox.seconds < LIMITS.wall_s + 5


def test_infinite_loop_inside_a_test_costs_only_that_test():
    run = run_tests("def spin():\n    while True:\n        pass\n", ["spin()", "assert 1 + 1 == 2"],
                    limits=Limits(wall_s=6.0), test_timeout_s=1.0)
    assert (run.passed, run.total) == (1, 2)


@needs_namespace
def test_fork_bomb_dies_with_its_sandbox():
    bomb = ("import ctypes, os, time\n"
            "ctypes.CDLL(None).prctl(15, b'r1zbomb', 0, 0, 0)  # PR_SET_NAME, inherited by children\n"
            "while True:\n"
            "    try:\n"
            "        os.fork()\n"
            "    except OSError:\n"
            "        time.sleep(0.01)\n")
    before = processes_named("r1zbomb")
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], processes_named("r1zbomb"))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run = hostile("fork bomb", bomb, "assert True")
    finally:
        done.set()
        watcher.join()
    after = processes_named("r1zbomb")
    print(f"\nfork bomb: processes before {before}, peak {peak[0]} (limit {LIMITS.max_processes}), after {after}")
    assert run.score == 0.0
    assert peak[0] > 1  # it did fork
    assert before == after == 0


def test_ten_gigabyte_allocation():
    run = hostile("10 GB allocation", "x = bytearray(10 * 2**30)\n", "assert len(x) == 10 * 2**30")
    assert run.score == 0.0 and not run.sandbox.timed_out
    assert "MemoryError" in run.sandbox.stderr


@needs_namespace
def test_writing_outside_the_work_dir(tmp_path):
    open_dir = tmp_path / "world-writable"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    targets = [open_dir / "pwned", Path(__file__).parent / "pwned", Path("/root/pwned"), Path("/tmp/r1zero-pwned")]
    code = ("def escape(paths):\n"
            "    written = 0\n"
            "    for path in paths:\n"
            "        try:\n"
            "            with open(path, 'w') as f:\n"
            "                f.write('pwned')\n"
            "            written += 1\n"
            "        except OSError:\n"
            "            pass\n"
            "    return written\n")
    # /tmp inside the sandbox is private: writing there succeeds and vanishes with the sandbox.
    run = hostile("write outside the work dir", code, f"assert escape({[str(t) for t in targets[:3]]!r}) > 0")
    assert run.score == 0.0
    run_tests(code, [f"escape({[str(targets[3])]!r})"], limits=LIMITS)
    assert [t for t in targets if t.exists()] == []


@needs_namespace
def test_network_connection_to_the_host():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = ("import socket\n"
            "def phone_home():\n"
            f"    with socket.create_connection(('127.0.0.1', {port}), timeout=1) as s:\n"
            "        s.sendall(b'secret')\n"
            "    return True\n")
    try:
        run = hostile("network connection", code, "assert phone_home()")
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert run.score == 0.0
    assert "OSError" in run.sandbox.stderr or "unreachable" in run.sandbox.stderr


def test_environment_secrets(monkeypatch):
    monkeypatch.setenv("R1ZERO_SECRET", "hunter2")
    code = ("import glob, os\n"
            "def find_secret():\n"
            "    if 'R1ZERO_SECRET' in os.environ:\n"
            "        return os.environ['R1ZERO_SECRET']\n"
            "    for path in glob.glob('/proc/*/environ'):\n"
            "        try:\n"
            "            if b'hunter2' in open(path, 'rb').read():\n"
            "                return 'hunter2'\n"
            "        except OSError:\n"
            "            pass\n")
    run = hostile("read environment secrets", code, "assert find_secret() == 'hunter2'")
    assert run.score == 0.0
    if not NAMESPACE:  # the parent's /proc/<pid>/environ is readable by the same user
        pytest.skip("process-group fallback: only the child's own environment is clean")


def test_forged_output_and_early_exit():
    forged = hostile("print fake passes, exit 0", "import os\nprint('0 0')\nos._exit(0)\n", "assert True")
    assert forged.score == 0.0
    exited = hostile("sys.exit(0) before the tests", "import sys\nsys.exit(0)\n", "assert True")
    assert exited.score == 0.0
    reread = ("import os, re\n"
              "try:\n"
              "    os.lseek(0, 0, os.SEEK_SET)\n"
              "except OSError:\n"
              "    pass\n"
              "for nonce in re.findall(rb'\"nonce\": \"([0-9a-f]+)\"', os.read(0, 1 << 20)):\n"
              "    os.write(1, nonce + b' 0\\n')\n"
              "os._exit(0)\n")
    forged_from_stdin = hostile("re-read stdin for the nonce", reread, "assert False")
    assert forged_from_stdin.score == 0.0


@needs_namespace
def test_runs_unprivileged_in_its_own_namespaces():
    result = run_python("import os\n"
                        "caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]\n"
                        "print(os.getuid(), os.getpid(), int(caps, 16), len(os.listdir('/proc')) < 80)\n")
    uid, pid, caps, few_processes = result.stdout.split()
    assert int(uid) != 0 and pid == "1" and caps == "0" and few_processes == "True"


def test_process_group_fallback_runs_and_kills():
    ok = run_python("import os; print(sorted(os.environ))", mode="process_group")
    assert ok.mode == "process_group" and "R1ZERO_SECRET" not in ok.stdout and "HOME" in ok.stdout
    slow = run_python("while True: pass", mode="process_group", limits=Limits(wall_s=1.0))
    assert slow.timed_out


def test_zz_print_containment_table():
    """Runs last in this file (pytest keeps file order): the table of the hostile runs above."""
    width = max(len(name) for name, *_ in TABLE) if TABLE else 10
    lines = [f"sandbox mode: {sandbox_mode()}", f"{'program':<{width}}  {'outcome':<58}  score  seconds"]
    lines += [f"{name:<{width}}  {how:<58}  {score:5.1f}  {secs:7.2f}" for name, how, score, secs in TABLE]
    print("\n" + "\n".join(lines))
    assert all(score == 0.0 for _, _, score, _ in TABLE)
    assert os.getpid() > 0  # the test process itself is alive and well
