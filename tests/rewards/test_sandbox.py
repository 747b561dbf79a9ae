"""Hostile programs through the `code` reward: each scores 0 and leaves the host as it was.

`ATTACKS` is the table: each case names the attack, the program and the tests that it would pass
if it could fool the reward (none of them solves its task). `test_attack` runs one case and
asserts a score of 0, the outcome, and that the host is untouched (no file written, no process
left, this process alive). Namespace-only cases are skipped, saying so, on machines where the
sandbox falls back to process groups. The per-sample limits (memory across processes, process
count), the read-only view of the host, and uid leasing across processes have their own tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from r1zero.rewards.cgroups import cgroup_backend
from r1zero.rewards.code_exec import TestSuite, run_tests
from r1zero.rewards.sandbox import STATE_DIR, Limits, run_python, sandbox_mode

LIMITS = Limits(wall_s=2.0)
NAMESPACE = sandbox_mode() == "namespace"
REPO = Path(__file__).resolve().parents[2]
DATA_FILE = (REPO / ".." / "shared" / "data" / "humaneval" / "HumanEval.jsonl").resolve()
MARK = "r1zmark"  # process name (PR_SET_NAME) of programs that try to stay behind
NAME_SELF = f"import ctypes\nctypes.CDLL(None).prctl(15, b'{MARK}', 0, 0, 0)\n"


@dataclass
class Attack:
    name: str
    code: str
    tests: list[str] | TestSuite
    outcome: str = "failed"  # how the sample is counted in the metrics
    namespace_only: bool = False
    limits: Limits = LIMITS
    touches: list[str] = field(default_factory=list)  # host paths that must not exist afterwards


FRAME_WALK = """
import sys, os, gc
def answer(*args):
    found = []
    frame = sys._getframe()
    while frame is not None:  # every frame up to the harness: its locals, files, strings
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            found.append(value)
            if hasattr(value, 'write'):
                for line in ('pass 0', '{"id": 0, "value": 42}', 'ok 0'):
                    try:
                        value.write(line + '\\n'); value.flush()
                    except Exception:
                        pass
        frame = frame.f_back
    for obj in gc.get_objects():  # anything in the heap that looks like an expected value
        if isinstance(obj, str) and 'assert' in obj:
            return obj
    os.write(1, b'{"id": 0, "value": 42}\\npass 0\\n')
    os._exit(0)
"""

READ_TEST_SOURCE = """
import sys, re, gc
def answer(x):
    for obj in gc.get_objects():
        if isinstance(obj, str) and 'answer(' in obj and '==' in obj:
            return eval(re.search(r'==\\s*(.+)$', obj.strip().splitlines()[-1]).group(1))
    frame = sys._getframe()
    while frame:
        for value in frame.f_locals.values():
            if isinstance(value, dict) and 'tests' in value:
                return eval(value['tests'][0].split('==')[1])
        frame = frame.f_back
    return None
"""

READ_HOST_FILES = f"""
def answer(x):
    import json
    for path in ({str(DATA_FILE)!r}, {str(REPO / 'README.md')!r}, '/root/.bashrc', '/etc/shadow'):
        try:
            text = open(path).read()
        except OSError:
            continue
        return 'tangerine'  # it could read the tests and their answers
    return None
"""

ATTACKS = [
    Attack("walk the stack to the harness, write its report stream, os._exit(0)", FRAME_WALK,
           ["assert answer(6) == 'tangerine'"]),
    Attack("patch builtins.exec/eval/compile so the tests never run",
           "import builtins\nbuiltins.exec = builtins.eval = lambda *a, **k: None\n"
           "builtins.compile = lambda *a, **k: None\ndef answer(x):\n    return None\n",
           ["assert answer(6) == 'tangerine'"]),
    Attack("return an object whose __eq__ is always True",
           "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
           "def answer(x):\n    return Anything()\n", ["assert answer(6) == 'tangerine'", "assert answer(1) != 'tangerine'"]),
    Attack("return an int subclass whose __eq__ is always True",
           "class Liar(int):\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
           "        return False\n    __hash__ = int.__hash__\ndef answer(x):\n    return Liar(0)\n",
           ["assert answer(6) == 'tangerine'"]),
    Attack("read the test source from the heap or a frame and answer it", READ_TEST_SOURCE,
           ["assert answer(6) == 'tangerine'"]),
    Attack("read the host's files (the HumanEval data, the project, home)", READ_HOST_FILES,
           ["assert answer(6) == 'tangerine'"], namespace_only=True),
    Attack("print fake passes and replies, exit 0",
           "import os\nprint('pass 0')\nos.write(1, b'{\"id\": 0, \"value\": 42}\\n')\nos._exit(0)\n",
           ["assert answer(6) == 'tangerine'"]),
    Attack("sys.exit(0) before the tests", "import sys\nsys.exit(0)\n", ["assert answer(6) == 'tangerine'"], "crash"),
    Attack("re-read stdin for a nonce or expected values",
           "import os, re\ndata = b''\ntry:\n    os.lseek(0, 0, os.SEEK_SET)\nexcept OSError:\n    pass\n"
           "data = os.read(0, 1 << 20)\nfound = re.findall(rb'== *.(\\w+)', data)\n"
           "def answer(x):\n    return found[0].decode() if found else None\n", ["assert answer(6) == 'tangerine'"]),
    Attack("ignore SIGALRM and spin", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
           "def answer(x):\n    while True:\n        pass\n", ["assert answer(6) == 'tangerine'"], "timeout"),
    Attack("reach the test sandbox from the solution's (kill everything, forge its report)",
           "import os, signal\ndef answer(x):\n    for pid in range(2, 400):\n        try:\n"
           "            os.kill(pid, signal.SIGKILL)\n        except OSError:\n            pass\n"
           "    os.write(1, b'pass 0\\n')\n    return None\n",
           ["for x in [6]:\n    assert answer(x) == 'tangerine'"], namespace_only=True),
    Attack("infinite loop", "while True:\n    pass\n", ["assert answer(6) == 'tangerine'"], "timeout"),
    Attack("20 GB allocation", "x = bytearray(20 * 2**30)\n", ["assert answer(6) == 'tangerine'"], "memory"),
    Attack("fork bomb", NAME_SELF + "import os, time\nwhile True:\n    try:\n        os.fork()\n"
           "    except OSError:\n        time.sleep(0.01)\n", ["assert answer(6) == 'tangerine'"], "timeout",
           namespace_only=True),
    Attack("a daemon that outlives the program", NAME_SELF + "import os, time\nif os.fork() == 0:\n"
           "    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n    os._exit(0)\n"
           "def answer(x):\n    return None\n", ["assert answer(6) == 'tangerine'"], namespace_only=True),
    Attack("kill the parent and every process it can see",
           "import os, signal\nfor pid in (os.getppid(), -1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
           "    except OSError:\n        pass\ndef answer(x):\n    return None\n", ["assert answer(6) == 'tangerine'"],
           namespace_only=True),
    Attack("500 MB of output", "import sys\nchunk = 'x' * 2**20\nfor _ in range(500):\n    sys.__stdout__.write(chunk)\n"
           "def answer(x):\n    return None\n", ["assert answer(6) == 'tangerine'"], "crash"),
    Attack("write outside the scratch dir",
           "def answer(x):\n    for path in ('/usr/pwned', '/pwned', '/python/pwned', '/etc/pwned', "
           f"{str(REPO / 'pwned')!r}, '/root/pwned', '/tmp/r1zero-pwned'):\n        try:\n"
           "            open(path, 'w').write('x')\n        except OSError:\n            pass\n    return None\n",
           ["assert answer(6) == 'tangerine'"], namespace_only=True, touches=[str(REPO / "pwned"), "/root/pwned", "/usr/pwned",
                                                                      "/pwned", "/tmp/r1zero-pwned"]),
    Attack("read secrets from the environment of any process",
           "import glob, os\ndef answer(x):\n    if 'R1ZERO_SECRET' in os.environ:\n        return 'tangerine'\n"
           "    for path in glob.glob('/proc/*/environ'):\n        try:\n"
           "            if b'hunter2' in open(path, 'rb').read():\n                return 'tangerine'\n"
           "        except OSError:\n            pass\n", ["assert answer(6) == 'tangerine'"], namespace_only=True),
]


def processes_named(comm: str) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            count += entry.name.isdigit() and (entry / "comm").read_text().strip() == comm
        except OSError:
            pass
    return count


def test_the_attack_table_is_not_empty():
    assert len(ATTACKS) >= 15 and len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, monkeypatch):
    if attack.namespace_only and not NAMESPACE:
        pytest.skip("process-group fallback: this attack is not contained there")
    monkeypatch.setenv("R1ZERO_SECRET", "hunter2")
    run = run_tests(attack.code, attack.tests, limits=attack.limits, test_timeout_s=1.0)
    print(f"\n{attack.name}: score {run.score}, outcome {run.outcome} ({run.how}), {run.sandbox.seconds:.2f} s")
    assert run.total > 0 and run.score == 0.0
    assert run.outcome == attack.outcome
    assert run.sandbox.seconds < attack.limits.wall_s + 5
    assert [path for path in attack.touches if os.path.exists(path)] == []
    deadline = time.monotonic() + 3  # the kernel may take a moment to reap a killed namespace
    while processes_named(MARK) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_named(MARK) == 0


def test_honest_programs_still_pass_in_both_ways_of_deciding():
    solution = "def answer(x):\n    return x * 7\n"
    split = run_tests(solution, ["assert answer(6) == 42"], limits=LIMITS)
    paired = run_tests(solution, ["for x in [6]:\n    assert answer(x) == 42"], limits=LIMITS)
    assert (split.score, split.how, split.outcome) == (1.0, "split", "passed")
    assert (paired.score, paired.how, paired.outcome) == (1.0, "pair", "passed")


def test_a_call_that_hangs_costs_only_its_test():
    run = run_tests("def spin():\n    while True:\n        pass\n", ["assert spin() == 1", "assert 1 + 1 == 2"],
                    limits=Limits(wall_s=6.0), test_timeout_s=1.0)
    assert (run.passed, run.total, run.outcome) == (1, 2, "timeout")


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: the host's files are visible there")
def test_the_sandbox_sees_only_the_interpreter():
    paths = [str(REPO / "README.md"), str(DATA_FILE.parent), str(Path.home() / ".bashrc"), str(Path.home()),
             "/etc/passwd", "/sys/fs/cgroup", "/var", str(STATE_DIR), tempfile.gettempdir() + "/r1zero-sandbox"]
    result = run_python(f"import os\nfor p in {paths!r}:\n    print(p, os.path.exists(p))\n"
                        "print('stdlib', __import__('json').dumps([1]))\n")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.endswith("True")] == []
    assert "stdlib [1]" in result.stdout


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: writes are not contained")
def test_a_visible_world_writable_folder_is_read_only_by_mount_not_hidden():
    try:
        folder = Path(tempfile.mkdtemp(prefix="r1zero-ww-", dir="/usr/local"))
    except OSError:
        pytest.skip("/usr/local is not writable here, so no world-writable folder can be put in the sandbox's view")
    try:
        folder.chmod(0o777)
        result = run_python("import errno, os\n"
                            f"path = {str(folder)!r}\nprint(os.path.isdir(path), oct(os.stat(path).st_mode & 0o777))\n"
                            "try:\n    open(path + '/pwned', 'w')\nexcept OSError as e:\n"
                            "    print(errno.errorcode[e.errno])\n")
        assert result.stdout.split()[-3:] == ["True", "0o777", "EROFS"], result.stdout + result.stderr
        assert list(folder.iterdir()) == []
    finally:
        folder.rmdir()


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: no network isolation")
def test_no_connection_reaches_the_host():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = f"import socket\ndef answer(x):\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n    return 42\n"
    try:
        run = run_tests(code, ["assert answer(6) == 'tangerine'"], limits=LIMITS)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert run.score == 0.0 and "OSError" in run.sandbox.stderr


@pytest.mark.skipif(cgroup_backend() is None or not NAMESPACE,
                    reason="no writable cgroup here: memory is bounded per process (RLIMIT_AS), not per sample")
def test_eight_processes_of_300_mb_are_stopped_by_a_1_gb_sample_limit():
    code = textwrap.dedent("""
        import os, time
        children = []
        for _ in range(8):
            pid = os.fork()
            if pid == 0:
                block = b"x" * (300 * 2**20)  # written, so resident
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        alive = sum(os.waitpid(pid, 0)[1] == 0 for pid in children)
        def answer(x):
            return 42 if alive == 8 else alive
    """)
    host_block = b"y" * (500 * 2**20)  # the host's own work meanwhile
    run = run_tests(code, ["assert answer(6) == 'tangerine'"], limits=Limits(wall_s=20.0, memory_mb=1024))
    assert run.score == 0.0 and run.sandbox.memory_exceeded and run.outcome == "memory"
    assert run.sandbox.memory_scope == "sample"
    assert len(host_block) == 500 * 2**20 and host_block[-1:] == b"y"


CONCURRENT = """
import sys
from r1zero.rewards.sandbox import Limits, run_python
from concurrent.futures import ThreadPoolExecutor
program = ("import os, time\\npids = []\\nfor _ in range(20):\\n    pid = os.fork()\\n    if pid == 0:\\n"
           "        time.sleep(0.2)\\n        os._exit(0)\\n    pids.append(pid)\\n"
           "print(sum(os.waitpid(p, 0)[1] == 0 for p in pids))\\n")
limits = Limits(wall_s=20.0, max_processes=24)
with ThreadPoolExecutor(2) as pool:
    results = list(pool.map(lambda _: run_python(program, limits=limits), range(int(sys.argv[1]))))
bad = [r for r in results if r.stdout.strip() != "20"]
print(len(results), len(bad), bad[:1])
"""


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: no sandbox uids")
@pytest.mark.parametrize("programs", [40, pytest.param(200, marks=pytest.mark.slow)])
def test_two_processes_sandboxing_at_once_never_touch_each_other(programs):
    # Each program holds 21 processes under a 24-process limit: two samples sharing a uid would
    # fail to fork (or kill each other's processes when one ends).
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(programs)], stdout=subprocess.PIPE, text=True,
                              env=env)
             for _ in range(2)]
    outputs = [proc.communicate(timeout=600)[0].strip().splitlines()[-1] for proc in procs]
    print("\n" + "\n".join(outputs))
    assert outputs == [f"{programs} 0 []"] * 2


def test_process_group_fallback_runs_and_kills():
    ok = run_python("import os; print(sorted(os.environ))", mode="process_group")
    assert ok.mode == "process_group" and "R1ZERO_SECRET" not in ok.stdout and "HOME" in ok.stdout
    slow = run_python("while True: pass", mode="process_group", limits=Limits(wall_s=1.0))
    assert slow.timed_out


@pytest.mark.skipif(cgroup_backend() is None or not NAMESPACE,
                    reason="no writable cgroup here: CPU time is bounded per process (RLIMIT_CPU) only")
def test_cpu_time_is_bounded_across_the_sample_processes():
    spin = "import os\nfor _ in range(3):\n    if os.fork() == 0:\n        break\nwhile True:\n    pass\n"
    result = run_python(spin, limits=Limits(wall_s=30.0, cpu_s=2))
    assert result.cpu_exceeded and not result.timed_out and result.seconds < 15


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: as root, RLIMIT_NPROC does not bind")
def test_process_count_is_bounded_per_sample():
    forks = ("import os, time\nstarted = 0\nfor _ in range(100):\n    try:\n        if os.fork() == 0:\n"
             "            time.sleep(2)\n            os._exit(0)\n        started += 1\n    except OSError:\n"
             "        break\nprint(started)\n")
    result = run_python(forks, limits=Limits(wall_s=10.0, max_processes=16))
    assert 10 <= int(result.stdout) < 16


def test_the_process_group_fallback_decides_outside_too(monkeypatch):
    from r1zero.rewards import sandbox

    monkeypatch.setattr(sandbox, "_detected", lambda: ("process_group", sys.executable))
    solution = "def answer(x):\n    return x * 7\n"
    split = run_tests(solution, ["assert answer(6) == 42", "assert answer(1) == 0"], limits=LIMITS)
    paired = run_tests(solution, ["for x in [6]:\n    assert answer(x) == 42"], limits=LIMITS)
    liar = run_tests(ATTACKS[2].code, ATTACKS[2].tests, limits=LIMITS)
    assert (split.passed, split.sandbox.mode, paired.score, paired.how, liar.score) == (1, "process_group", 1.0, "pair", 0.0)


@pytest.mark.skipif(not NAMESPACE, reason="process-group fallback: no namespaces, no uid drop")
def test_runs_unprivileged_as_pid_1_of_its_own_namespaces():
    result = run_python("import os\nstatus = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
                        "print(os.getuid(), os.getpid(), int(status['CapEff'], 16), int(status['CapBnd'], 16),\n"
                        "      status['NoNewPrivs'].strip(), len(os.listdir('/proc')) < 80)\n")
    uid, pid, caps, bounding, no_new_privs, few_processes = result.stdout.split()
    assert int(uid) >= 2_000_000 and pid == "1" and caps == bounding == "0" and no_new_privs == "1"
    assert few_processes == "True"
