"""The sandbox's file system and privilege drop (namespace mode of `sandbox.py`).

`namespace_command(...)` is the command that starts one sandboxed program: `unshare` makes new
PID, network, mount, IPC and UTS namespaces and runs `SETUP` (Python, as root, inside them):

1. join the sample's cgroups (so every later process is counted);
2. build the root: the parent prepared an empty skeleton (`ensure_skeleton`: dirs, symlinks such
   as /bin -> usr/bin, empty files to mount over); SETUP bind-mounts onto it, read-only, nosuid:
   /usr, any real /lib* dir, /etc/ld.so.cache and /etc/localtime, the Python install at /python
   when it lives outside /usr (pyenv or conda under /root, say); /dev/null, zero, random, urandom;
   a fresh /proc; /tmp as a small tmpfs (the scratch dir, also the working dir);
3. pivot_root into it, detach the old root, remount the new root read-only: the host's files
   (project, data, home, the host's /tmp) are not there at all;
4. rlimits, empty the capability bounding set, drop to the sample's uid and gid (which clears
   the remaining capabilities), set no_new_privs, check that it worked;
5. exec the interpreter (`-I -S`: no environment, no user or site packages, so the standard
   library only) on the loader.

Done in one Python with ctypes rather than a shell running mount, setpriv and prlimit (about 40
exec()s fewer; the spec travels as marshal data, since importing json costs ~25 ms here). Linux x86_64 and aarch64
(the pivot_root syscall number); elsewhere the probe fails and the sandbox uses its fallback.
"""

from __future__ import annotations

import marshal
import os
import platform
import shutil
from pathlib import Path

DEVICES = ("null", "zero", "random", "urandom")
ETC_FILES = ("ld.so.cache", "localtime")
PIVOT_ROOT_SYSCALL = {"x86_64": 155, "aarch64": 41}.get(platform.machine())

SETUP = r"""
import ctypes, marshal, os, resource, sys
spec = marshal.loads(bytes.fromhex(sys.argv[1]))
for procs in spec["cgroups"]:
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
libc = ctypes.CDLL(None, use_errno=True)
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND = 1, 2, 4, 8, 32, 4096

def mount(source, target, fstype, flags, data=None):
    if libc.mount(source.encode(), target.encode(), fstype and fstype.encode(), flags, data and data.encode()):
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), target)

def bind(source, target, flags):
    mount(source, target, None, BIND)
    mount("none", target, None, REMOUNT | BIND | flags)

root = spec["root"]
bind(root, root, NOSUID | NODEV)
for source, target in spec["read_only"]:
    bind(source, root + target, RDONLY | NOSUID | NODEV)
for device in spec["devices"]:
    bind("/dev/" + device, root + "/dev/" + device, NOSUID | NOEXEC)
mount("tmpfs", root + "/tmp", "tmpfs", NOSUID | NODEV, "size=%dk,mode=1777" % spec["tmp_kb"])
mount("proc", root + "/proc", "proc", NOSUID | NODEV | NOEXEC)
os.chdir(root)
if libc.syscall(spec["pivot_root"], b".", b".old"):
    raise OSError(ctypes.get_errno(), "pivot_root")
if libc.umount2(b"/.old", 2):  # MNT_DETACH
    raise OSError(ctypes.get_errno(), "umount /.old")
mount("none", "/", None, REMOUNT | BIND | RDONLY | NOSUID | NODEV)
os.chdir("/tmp")
for name, value in spec["rlimits"].items():
    resource.setrlimit(getattr(resource, name), (value, value))
for cap in range(64):
    libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly past the last capability
uid = spec["uid"]
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
if libc.prctl(38, 1, 0, 0, 0):  # PR_SET_NO_NEW_PRIVS
    raise OSError(ctypes.get_errno(), "no_new_privs")
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
if os.getuid() != uid or int(status["CapEff"], 16) or int(status["CapBnd"], 16) or os.access("/", os.W_OK):
    sys.exit("sandbox setup: privileges not dropped")
os.execve(spec["python"], [spec["python"], "-I", "-S", "-c", spec["loader"], *spec["loader_args"]], spec["env"])
"""


def python_layout(python: str) -> tuple[str, str, str | None]:
    """(install dir to mount at /python or "", interpreter path inside, LD_LIBRARY_PATH inside)."""
    real = os.path.realpath(python)
    if real.startswith("/usr/"):
        return "", real, None
    home = os.path.dirname(os.path.dirname(real))  # <prefix>/bin/pythonX.Y -> <prefix>
    return home, "/python" + real[len(home):], "/python/lib"


def ensure_skeleton(root: Path) -> None:
    """Create (once; later runs of the same uid reuse it) the new root's empty skeleton: mount
    points, symlinks such as /bin -> usr/bin, empty files to mount devices and /etc files over.
    Reused because removing dirs that were mount points in a namespace just torn down costs
    ~1-4 ms each (11 ms a run); the sandbox cannot change it (read-only inside, root's on the host)."""
    if (root / ".complete").exists():
        return
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in ("usr", "etc", "dev", "proc", "tmp", "python", ".old"):
        (root / name).mkdir(exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host, inner = Path("/") / name, root / name
        if host.is_symlink() and not inner.is_symlink():
            inner.symlink_to(os.readlink(host))
        elif host.is_dir() and not host.is_symlink():
            inner.mkdir(exist_ok=True)
    for name in [f"etc/{f}" for f in ETC_FILES] + [f"dev/{d}" for d in DEVICES]:
        (root / name).touch()
    if not (root / "dev" / "fd").is_symlink():
        (root / "dev" / "fd").symlink_to("/proc/self/fd")
    root.chmod(0o755)
    (root / ".complete").touch()


def read_only_mounts(python_home: str) -> list[tuple[str, str]]:
    """(host path, path inside) of everything mounted read-only into the new root."""
    mounts = [("/usr", "/usr")]
    mounts += [(f"/{d}", f"/{d}") for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
               if Path("/", d).is_dir() and not Path("/", d).is_symlink()]
    mounts += [(f"/etc/{f}", f"/etc/{f}") for f in ETC_FILES if Path("/etc", f).exists()]
    return mounts + ([(python_home, "/python")] if python_home else [])


def namespace_command(python: str, root: Path, uid: int, tmp_mb: int, cgroup_procs: list[str],
                      rlimits: dict[str, int], loader: str, env: dict[str, str]) -> list[str]:
    """The command that runs `loader` in `python` inside the sandbox (see the module docstring)."""
    home, inner_python, library_path = python_layout(python)
    ensure_skeleton(root)
    spec = {"root": str(root), "read_only": read_only_mounts(home), "devices": list(DEVICES),
            "tmp_kb": tmp_mb * 1024, "pivot_root": PIVOT_ROOT_SYSCALL, "cgroups": cgroup_procs,
            "rlimits": rlimits, "uid": uid, "python": inner_python, "loader": loader, "loader_args": [],
            "env": {**env, **({"LD_LIBRARY_PATH": library_path} if library_path else {})}}
    return [shutil.which("unshare") or "unshare", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts",
            "--mount", "--propagation", "private", python, "-I", "-S", "-c", SETUP, marshal.dumps(spec, 4).hex()]


def available() -> bool:
    """Whether this machine has what `namespace_command` needs (root is checked by the caller)."""
    return PIVOT_ROOT_SYSCALL is not None and shutil.which("unshare") is not None
