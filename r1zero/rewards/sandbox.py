"""Run an untrusted Python program with limits, for rewards that execute model-written code.

`run_python(program, stdin)` runs `program` in a fresh Python and returns what it printed;
`SandboxedProcess` is the same, started and finished in two steps (to run two sandboxes that talk
through pipes, see `code_exec.py`). Two modes, chosen once per process by a probe (`sandbox_mode()`):

- "namespace" (Linux x86_64/aarch64, as root, util-linux `unshare`; set-up in `sandbox_root.py`):
  new PID, network, mount, IPC and UTS namespaces. The root is a new read-only one holding only
  what the interpreter needs: /usr (with the /bin, /lib symlinks), /etc/ld.so.cache, the Python
  install (`sys.base_prefix`, mounted at /python when it lives elsewhere, e.g. under /root), a
  new /proc, /dev/null, zero, random, urandom; /tmp is a small private tmpfs, the program's
  fresh working dir. The project, the data, home folders and the host's /tmp do not exist there,
  and the interpreter runs with -I -S: the standard library only.
  The program is PID 1 of its namespace, so when it ends or is killed every process it started
  dies with it. The network namespace has only a down loopback. The program runs as an
  unprivileged uid of its own, with no capabilities and no_new_privs. Uids come from a range no
  account has (2,000,000 + 0..999) and are leased across all processes on the host with a file
  lock (flock) per uid, held until the run's processes are dead, so two runs at once (two Ray
  reward tasks, two trainings) never share a uid, hence never a process limit or a kill.
- "process_group" (anywhere else): this Python in a new session, rlimits per process, killed as a
  whole process group at the end. Weaker, and logged as such at first use: the host's files and
  network are reachable, a process that calls setsid() escapes the group kill, and as root
  RLIMIT_NPROC does not bind.

Limits per sample, across all its processes (`cgroups.py`, namespace mode): memory (cgroup
memory limit, and RLIMIT_AS per process, which turns one huge allocation into a MemoryError),
process count (cgroup pids.max, and RLIMIT_NPROC on the sample's own uid), CPU time (the cgroup's
total, polled while waiting, and RLIMIT_CPU per process), wall time (everything killed), output
(stdout and stderr are files, bounded by RLIMIT_FSIZE; /tmp by its size). Without writable cgroups
memory is bounded per process only (processes x RLIMIT_AS); `SandboxResult` says which held.
Peers: HumanEval's `execution.py` (rlimits + disabling os functions in-process, which model code
can undo) and E2B/Firecracker-style microVMs (stronger, much heavier); this sits between them.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import math
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from r1zero.rewards.cgroups import SampleCgroup
from r1zero.rewards.sandbox_root import available, namespace_command

log = logging.getLogger(__name__)

SANDBOX_UID_BASE = 2_000_000  # uids 2,000,000 .. 2,000,999: no account owns them
SANDBOX_UID_COUNT = 1000
# uids/: the host-wide uid leases (locks), roots/: reused root skeletons; R1ZERO_SANDBOX_STATE moves it
# (e.g. where /run/lock is not writable, or to keep two test hosts apart)
STATE_DIR = Path(os.environ.get("R1ZERO_SANDBOX_STATE", "/run/lock/r1zero-sandbox"))

# The interpreter's first code: apply the rlimits given as arguments (process-group mode; namespace
# mode sets them before the exec), give back `exit` and `quit` (-S skips `site`, which defines
# them), read the program (length-prefixed) from stdin, leave the rest of stdin to the program,
# run it as __main__.
_LOADER = (
    "import builtins, resource, sys\n"
    "builtins.exit = builtins.quit = sys.exit\n"
    "for arg in sys.argv[1:]:\n"
    "    kind, value = arg.split('=')\n"
    "    resource.setrlimit(getattr(resource, kind), (int(value), int(value)))\n"
    "n = int(sys.stdin.buffer.readline())\n"
    "code = compile(sys.stdin.buffer.read(n).decode(), 'program.py', 'exec')\n"
    "exec(code, {'__name__': '__main__', '__builtins__': __builtins__, '__file__': 'program.py'})\n"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run (one sample). `cpu_s` None = the wall limit rounded up, plus 1."""

    wall_s: float = 10.0  # everything is killed after this many seconds
    cpu_s: int | None = None  # CPU seconds, all processes together (per process without cgroups)
    memory_mb: int = 1024  # all processes together (cgroup); also RLIMIT_AS of each process
    max_processes: int = 64  # cgroup pids.max, and RLIMIT_NPROC of the sample's own uid
    max_file_mb: int = 16  # RLIMIT_FSIZE: largest file, stdout and stderr included
    max_open_files: int = 128  # RLIMIT_NOFILE
    tmpfs_mb: int = 64  # size of the private /tmp (namespace mode)


@dataclass
class SandboxResult:
    returncode: int | None  # negative = killed by that signal
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool  # killed at the wall-clock limit
    mode: str
    memory_exceeded: bool = False  # the kernel killed a process at the sample's memory limit
    cpu_exceeded: bool = False  # killed at the CPU-time limit (all processes together)
    memory_scope: str = "process"  # "sample" when a cgroup bounded the total, else per process


def _cpu_limit(limits: Limits) -> int:
    return limits.cpu_s if limits.cpu_s is not None else math.ceil(limits.wall_s) + 1


def _rlimits(limits: Limits) -> dict[int, int]:
    return {
        resource.RLIMIT_CPU: _cpu_limit(limits),
        resource.RLIMIT_AS: limits.memory_mb * 2**20,
        resource.RLIMIT_NPROC: limits.max_processes,
        resource.RLIMIT_FSIZE: limits.max_file_mb * 2**20,
        resource.RLIMIT_NOFILE: limits.max_open_files,
        resource.RLIMIT_CORE: 0,
    }


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "USER": "sandbox",
            "LOGNAME": "sandbox", "PYTHONDONTWRITEBYTECODE": "1"}


class UidLease:
    """A sandbox uid that no other run on this host holds: an exclusive flock on its lock file,
    kept until `release()`. Scanning starts at a pid-derived offset so processes rarely collide."""

    _counter = 0

    def __init__(self) -> None:
        (STATE_DIR / "uids").mkdir(mode=0o700, parents=True, exist_ok=True)
        UidLease._counter += 1
        start = (os.getpid() * 31 + UidLease._counter) % SANDBOX_UID_COUNT
        for k in range(SANDBOX_UID_COUNT):
            uid = SANDBOX_UID_BASE + (start + k) % SANDBOX_UID_COUNT
            fd = os.open(STATE_DIR / "uids" / str(uid), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise RuntimeError(f"sandbox: all {SANDBOX_UID_COUNT} sandbox uids are in use")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None


def _kill_uid(uid: int, patience_s: float = 2.0) -> None:
    """SIGKILL every process owned by `uid` until none is left (used when there is no cgroup)."""
    deadline = time.monotonic() + patience_s
    while True:
        found = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        os.kill(int(entry.name), signal.SIGKILL)
                        found += 1
                except (FileNotFoundError, ProcessLookupError, PermissionError):
                    pass
        if not found or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _named_rlimits(limits: Limits) -> dict[str, int]:
    """{"RLIMIT_X": value}, never above this process's hard limits."""
    names = {getattr(resource, name): name for name in dir(resource) if name.startswith("RLIMIT_")}
    named = {}
    for kind, value in _rlimits(limits).items():
        hard = resource.getrlimit(kind)[1]
        named[names[kind]] = value if hard == resource.RLIM_INFINITY else min(value, hard)
    return named


def _read_tail(path: Path, max_chars: int = 1 << 20) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - max_chars))
        return f.read().decode("utf-8", errors="replace")


class SandboxedProcess:
    """One sandboxed run: started by the constructor, ended (everything killed, the uid and
    cgroup released) by `finish()`. `pass_fds` are inherited by the program (pipes to a peer)."""

    def __init__(self, program: str, stdin: str = "", limits: Limits | None = None, mode: str | None = None,
                 pass_fds: tuple[int, ...] = ()):
        self.limits = limits or Limits()
        detected_mode, python = _detected()
        self.mode = mode or detected_mode
        if self.mode not in ("namespace", "process_group"):
            raise ValueError(f"sandbox mode must be 'namespace' or 'process_group', not {self.mode!r}")
        if self.mode == "namespace" and detected_mode != "namespace":
            raise RuntimeError("sandbox: namespace mode is not available on this machine")
        self._start(program, stdin, python if self.mode == "namespace" else sys.executable, pass_fds)

    def _start(self, program: str, stdin: str, python: str, pass_fds: tuple[int, ...]) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="r1zero-sandbox-")
        tmp = Path(self._tmp.name)
        self._out, self._err = tmp / "stdout", tmp / "stderr"
        stdin_path = tmp / "stdin"
        encoded = program.encode()
        stdin_path.write_bytes(b"%d\n" % len(encoded) + encoded + stdin.encode())
        self._lease, self.cgroup = None, None
        try:
            self._launch(tmp, stdin_path, python, pass_fds)
        except BaseException:
            if self.cgroup:
                self.cgroup.remove()
            if self._lease is not None:
                self._lease.release()
            self._tmp.cleanup()
            raise

    def _launch(self, tmp: Path, stdin_path: Path, python: str, pass_fds: tuple[int, ...]) -> None:
        if self.mode == "namespace":
            self._lease = UidLease()
            self.cgroup = SampleCgroup.create(f"uid-{self._lease.uid}", self.limits.memory_mb * 2**20,
                                              self.limits.max_processes)
            if self.cgroup is None:
                _kill_uid(self._lease.uid)  # a run whose parent died may have left processes
            root = STATE_DIR / "roots" / str(self._lease.uid)  # the lease makes it this run's alone
            command = namespace_command(python, root, self._lease.uid, self.limits.tmpfs_mb,
                                        self.cgroup.join_paths() if self.cgroup else [],
                                        _named_rlimits(self.limits), _LOADER, _environment("/tmp"))
            env, cwd = _environment("/tmp"), "/"
        else:
            workdir = tmp / "work"
            workdir.mkdir()
            command = [python, "-I", "-S", "-c", _LOADER,
                       *(f"{name}={value}" for name, value in _named_rlimits(self.limits).items())]
            env, cwd = _environment(str(workdir)), str(workdir)
        self._start_time = time.monotonic()
        with open(stdin_path, "rb") as fin, open(self._out, "wb") as fout, open(self._err, "wb") as ferr:
            self.proc = subprocess.Popen(command, stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=cwd,
                                         start_new_session=True, close_fds=True, pass_fds=pass_fds)
        stdin_path.unlink()  # the program holds it open; no one can open it again by name
        self.timed_out = self.cpu_exceeded = False

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the program exits (True), its wall time (default) or CPU time runs out, or
        `timeout_s` passes (False). A pidfd wakes at once; the cgroup's CPU total is polled."""
        wall_deadline = deadline = self._start_time + self.limits.wall_s
        if timeout_s is not None:
            deadline = min(deadline, time.monotonic() + timeout_s)
        try:
            pidfd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.timed_out = deadline >= wall_deadline
                    return False
                step = min(left, 0.25) if self.cgroup else left
                if pidfd is not None:
                    if select.select([pidfd], [], [], step)[0]:
                        return True
                else:
                    try:
                        self.proc.wait(timeout=step)
                        return True
                    except subprocess.TimeoutExpired:
                        pass
                cpu = self.cgroup.cpu_seconds() if self.cgroup else None
                if cpu is not None and cpu > _cpu_limit(self.limits):
                    self.cpu_exceeded = True
                    return False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _kill_all(self) -> None:
        """End the run and everything it started: the cgroup's processes, the namespace's init
        (whose exit kills every process inside; `unshare` exits after that), the process group,
        and without a cgroup anything still running under the sandbox uid."""
        if self.cgroup:
            self.cgroup.kill()
        if self.mode == "namespace":
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                children = []
            for pid in children:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("sandbox: process %d did not die after SIGKILL", self.proc.pid)
        if self._lease is not None and self.cgroup is None:
            _kill_uid(self._lease.uid)

    def finish(self) -> SandboxResult:
        """Kill whatever still runs, release the uid and cgroup, and return how it ended."""
        try:
            self._kill_all()
            memory_exceeded = self.cgroup.oom_killed() if self.cgroup else False
            if self.cgroup:
                self.cgroup.remove()
            seconds = time.monotonic() - self._start_time
            return SandboxResult(self.proc.returncode, _read_tail(self._out), _read_tail(self._err), seconds,
                                 self.timed_out, self.mode, memory_exceeded, self.cpu_exceeded,
                                 "sample" if self.cgroup else "process")
        finally:
            if self._lease is not None:
                self._lease.release()
            self._tmp.cleanup()


def _probe_namespace() -> str | None:
    """The interpreter that runs in namespace mode here, or None when that mode does not work.
    This Python's own install counts only if it runs whole inside (same version string)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return None
    if not available():
        return None
    base = os.path.join(sys.base_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    candidates = dict.fromkeys(p for p in (base, sys.executable, "/usr/bin/python3") if p and os.path.exists(p))
    for python in candidates:
        try:
            box = SandboxedProcess.__new__(SandboxedProcess)
            box.limits, box.mode = Limits(wall_s=20), "namespace"
            box._start(f"import os, sys; print(sys.version); print(os.path.exists({__file__!r}))", "", python, ())
            box.wait()
            result = box.finish()
        except OSError as e:
            log.debug("sandbox probe with %s: %s", python, e)
            continue
        version, _, sees_host = result.stdout.rstrip("\n").rpartition("\n")
        if result.returncode == 0 and sees_host == "False" and (
                os.path.realpath(python) != os.path.realpath(base) or version == sys.version):
            return python
        log.debug("sandbox probe with %s: %s %s", python, result.stdout[-200:], result.stderr[-500:])
    return None


@functools.lru_cache(maxsize=1)
def _detected() -> tuple[str, str]:
    python = _probe_namespace()
    if python is not None:
        log.info("sandbox: namespace mode (pid+net+mount namespaces, read-only root, uid drop), interpreter %s",
                 python)
        return "namespace", python
    log.warning("sandbox: namespaces unavailable (needs Linux, root, util-linux unshare/setpriv/pivot_root); "
                "falling back to process-group mode: no network isolation, writes are not contained")
    return "process_group", sys.executable


def sandbox_mode() -> str:
    """'namespace' or 'process_group': what `run_python` uses on this machine (probed once)."""
    return _detected()[0]


def sandbox_python() -> str:
    """The interpreter `run_python` runs programs with by default."""
    return _detected()[1]


def run_python(program: str, stdin: str = "", limits: Limits | None = None, mode: str | None = None) -> SandboxResult:
    """Run `program` (Python source) in the sandbox with `stdin`; never raises for what it does.

    >>> run_python("print(input()[::-1])", stdin="olleh\\n").stdout
    'hello\\n'
    """
    box = SandboxedProcess(program, stdin, limits, mode)
    box.wait()
    return box.finish()


def with_limits(limits: Limits | None, **changes: float | None) -> Limits:
    """`limits` (or the defaults) with some fields changed."""
    return replace(limits or Limits(), **changes)
