"""Run an untrusted Python program with limits, for rewards that execute model-written code.

`run_python(program, stdin)` runs `program` in a fresh Python and returns what it printed. Two
modes, chosen once per process by a probe (`sandbox_mode()`):

- "namespace" (Linux, as root, `unshare` and `setpriv` from util-linux): new PID, network, mount,
  IPC and UTS namespaces. The program is PID 1 of its namespace, so when it ends or is killed every
  process it started dies with it (a fork bomb outlives nothing). The network namespace has only a
  down loopback: no connection leaves it, not even to the host's 127.0.0.1. /tmp, /var/tmp,
  /dev/shm and /run/lock (the host's world-writable places) are replaced by small private tmpfs,
  the program runs in a fresh /tmp/work, and it runs as an unprivileged uid of its own (from a
  range no user has, one per concurrent run, so their process limits do not interfere) with no
  capabilities and no_new_privs: it can write nowhere on the host. Because that uid cannot enter
  /root, the interpreter is the first of (this Python, /usr/bin/python3, python3 on PATH) that the
  probe could run that way: usually Debian's system Python, with the standard library only.
- "process_group" (anywhere else): this Python in a new session, with the same rlimits, killed as
  a whole process group at the end. Weaker, and logged as such at first use: the network is
  reachable, the program can write wherever this user can, a process that calls setsid() escapes
  the group kill, and as root RLIMIT_NPROC does not bind.

Both modes: CPU seconds, address space (RLIMIT_AS), process count, file size, open files and core
dumps are limited; the wall-clock limit kills everything; the environment is a minimal one built
here (nothing from the parent, so no secrets); stdin, stdout and stderr are files, so output is
bounded by the file-size limit and a flood cannot block the parent. Peers: HumanEval's
`execution.py` (rlimits + disabling os functions in-process, which model code can undo) and
E2B/Firecracker-style microVMs (stronger, much heavier); this sits between them.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

log = logging.getLogger(__name__)

SANDBOX_UID_BASE = 2_000_000  # uids 2,000,000 .. 2,000,999: no account owns them
SANDBOX_UID_COUNT = 1000
MASKED_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")

# Runs first inside the namespaces, as root: hide the host's writable dirs, make the work dir,
# then exec the rest of argv (prlimit ... setpriv ... python). $1 = tmpfs size, $2 = uid.
_NAMESPACE_SETUP = f"""set -e
for d in {' '.join(MASKED_DIRS)}; do
  if [ -d "$d" ]; then mount -t tmpfs -o "size=$1,mode=1777,nosuid,nodev" tmpfs "$d"; fi
done
mkdir -m 700 /tmp/work && chown "$2:$2" /tmp/work && cd /tmp/work
shift 2
exec "$@"
"""

# The interpreter's first code: apply the rlimits given as arguments (process-group mode; namespace
# mode sets them with prlimit), read the program (length-prefixed) from stdin, leave the rest of
# stdin to the program, run it as __main__.
_LOADER = (
    "import resource, sys\n"
    "for arg in sys.argv[1:]:\n"
    "    kind, value = arg.split('=')\n"
    "    resource.setrlimit(getattr(resource, kind), (int(value), int(value)))\n"
    "n = int(sys.stdin.buffer.readline())\n"
    "code = compile(sys.stdin.buffer.read(n).decode(), 'program.py', 'exec')\n"
    "exec(code, {'__name__': '__main__', '__builtins__': __builtins__, '__file__': 'program.py'})\n"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run. `cpu_s` None = the wall limit rounded up, plus 1."""

    wall_s: float = 10.0  # everything is killed after this many seconds
    cpu_s: int | None = None  # RLIMIT_CPU per process
    memory_mb: int = 1024  # RLIMIT_AS (address space, not resident memory)
    max_processes: int = 64  # RLIMIT_NPROC (namespace mode: per sandbox, it has its own uid)
    max_file_mb: int = 16  # RLIMIT_FSIZE: largest file, stdout and stderr included
    max_open_files: int = 128  # RLIMIT_NOFILE
    tmpfs_mb: int = 64  # size of each private tmpfs (namespace mode)


@dataclass
class SandboxResult:
    returncode: int | None  # negative = killed by that signal
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    mode: str


def _rlimits(limits: Limits) -> dict[int, int]:
    cpu_s = limits.cpu_s if limits.cpu_s is not None else math.ceil(limits.wall_s) + 1
    return {
        resource.RLIMIT_CPU: cpu_s,
        resource.RLIMIT_AS: limits.memory_mb * 2**20,
        resource.RLIMIT_NPROC: limits.max_processes,
        resource.RLIMIT_FSIZE: limits.max_file_mb * 2**20,
        resource.RLIMIT_NOFILE: limits.max_open_files,
        resource.RLIMIT_CORE: 0,
    }


def _environment(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "USER": "sandbox",
            "LOGNAME": "sandbox", "PYTHONDONTWRITEBYTECODE": "1"}


_uids = itertools.cycle(range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_COUNT))
_uids_lock = threading.Lock()


def _next_uid() -> int:
    with _uids_lock:
        return next(_uids)


def _namespace_command(python: str, limits: Limits, uid: int) -> list[str]:
    prlimit = [f"--cpu={_rlimits(limits)[resource.RLIMIT_CPU]}", f"--as={limits.memory_mb * 2**20}",
               f"--nproc={limits.max_processes}", f"--fsize={limits.max_file_mb * 2**20}",
               f"--nofile={limits.max_open_files}", "--core=0"]
    return [shutil.which("unshare") or "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net",
            "--ipc", "--uts", "--mount", "--propagation", "private",
            "/bin/sh", "-c", _NAMESPACE_SETUP, "sandbox-setup", f"{limits.tmpfs_mb}m", str(uid),
            shutil.which("prlimit") or "prlimit", *prlimit, "--",
            shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
            python, "-I", "-c", _LOADER]


def _rlimit_arguments(limits: Limits) -> list[str]:
    """`RLIMIT_X=value` for the loader, never above this process's hard limits."""
    names = {getattr(resource, name): name for name in dir(resource) if name.startswith("RLIMIT_")}
    arguments = []
    for kind, value in _rlimits(limits).items():
        hard = resource.getrlimit(kind)[1]
        arguments.append(f"{names[kind]}={value if hard == resource.RLIM_INFINITY else min(value, hard)}")
    return arguments


def _kill_uid(uid: int, patience_s: float = 2.0) -> None:
    """SIGKILL every process owned by `uid` (the sandbox's own uid) until none is left."""
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


def _kill_all(proc: subprocess.Popen, mode: str, uid: int | None) -> None:
    """End the run and everything it started. Namespace mode: SIGKILL the namespace's init, whose
    exit kills every process inside and waits for them; `unshare` exits after that. Then the
    process group, and anything still running under the sandbox uid."""
    if mode == "namespace":
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for pid in children:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log.error("sandbox: process %d did not die after SIGKILL", proc.pid)
    if uid is not None:
        _kill_uid(uid)


def _wait_for_exit(proc: subprocess.Popen, timeout_s: float) -> bool:
    """True when the process exits within `timeout_s`. A pidfd wakes at once (Popen.wait polls)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([pidfd], [], [], timeout_s)[0])
    finally:
        os.close(pidfd)


def _read_tail(path: Path, max_chars: int = 1 << 20) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - max_chars))
        return f.read().decode("utf-8", errors="replace")


def _run(program: str, stdin: str, limits: Limits, mode: str, python: str) -> SandboxResult:
    encoded = program.encode()
    with tempfile.TemporaryDirectory(prefix="r1zero-sandbox-") as tmp:
        stdin_path, out_path, err_path = (Path(tmp) / name for name in ("stdin", "stdout", "stderr"))
        stdin_path.write_bytes(b"%d\n" % len(encoded) + encoded + stdin.encode())
        uid = _next_uid() if mode == "namespace" else None
        if mode == "namespace":
            command, env, cwd = _namespace_command(python, limits, uid), _environment("/tmp/work"), "/"
        else:
            workdir = Path(tmp) / "work"
            workdir.mkdir()
            command = [python, "-I", "-c", _LOADER, *_rlimit_arguments(limits)]
            env, cwd = _environment(str(workdir)), str(workdir)
        start = time.monotonic()
        with open(stdin_path, "rb") as fin, open(out_path, "wb") as fout, open(err_path, "wb") as ferr:
            proc = subprocess.Popen(command, stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=cwd,
                                    start_new_session=True, close_fds=True)
            stdin_path.unlink()  # the program holds it open; no one can open it again by name
            timed_out = not _wait_for_exit(proc, limits.wall_s)
            _kill_all(proc, mode, uid)
        seconds = time.monotonic() - start
        return SandboxResult(proc.returncode, _read_tail(out_path), _read_tail(err_path), seconds, timed_out, mode)


def _probe_namespace() -> str | None:
    """The interpreter that runs in namespace mode here, or None when that mode does not work.

    This Python counts only if the sandbox uid runs it whole (a Python under /root may start but
    load another build's library and standard library); another one only needs to work."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return None
    if not all(shutil.which(tool) for tool in ("unshare", "prlimit", "setpriv", "mount")):
        return None
    candidates = dict.fromkeys(p for p in (sys.executable, "/usr/bin/python3", shutil.which("python3")) if p)
    for python in candidates:
        try:
            result = _run("import sys, json; print(sys.version)", "", Limits(wall_s=20), "namespace", python)
        except OSError:
            continue
        if result.returncode == 0 and (python != sys.executable or result.stdout.strip() == sys.version):
            return python
        log.debug("sandbox probe with %s: %s %s", python, result.stdout[-200:], result.stderr[-500:])
    return None


@functools.lru_cache(maxsize=1)
def _detected() -> tuple[str, str]:
    python = _probe_namespace()
    if python is not None:
        log.info("sandbox: namespace mode (pid+net+mount namespaces, uid drop), interpreter %s", python)
        return "namespace", python
    log.warning("sandbox: namespaces unavailable (needs Linux, root, util-linux unshare/setpriv); "
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
    limits = limits or Limits()
    detected_mode, python = _detected()
    mode = mode or detected_mode
    if mode not in ("namespace", "process_group"):
        raise ValueError(f"sandbox mode must be 'namespace' or 'process_group', not {mode!r}")
    if mode == "namespace" and detected_mode != "namespace":
        raise RuntimeError("sandbox: namespace mode is not available on this machine")
    return _run(program, stdin, limits, mode, python if mode == "namespace" else sys.executable)


def with_limits(limits: Limits | None, **changes: float | None) -> Limits:
    """`limits` (or the defaults) with some fields changed."""
    return replace(limits or Limits(), **changes)
