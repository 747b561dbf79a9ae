"""Per-sample resource limits across all of a sandboxed program's processes, with cgroups.

rlimits bound each process alone: 64 processes of 1 GB each is 64 GB. A cgroup bounds them
together: `SampleCgroup.create(name, memory_bytes, max_processes)` makes one control group per
sample (memory, process count, CPU accounting); the sandbox's first process joins it before it
runs anything, so every descendant is inside. Two hierarchies are handled:

- cgroup v2 (`/sys/fs/cgroup` or a hybrid host's `/sys/fs/cgroup/unified`, when its root offers
  the memory controller): `memory.max`, `memory.swap.max` = 0, `pids.max`, `cpu.stat`,
  `memory.events` (oom_kill), `cgroup.kill`.
- cgroup v1 (one mount per controller): `memory.limit_in_bytes` (+ `memsw` when swap is
  accounted), `pids.max`, `cpuacct.usage`, `memory.oom_control` (oom_kill).

`cgroup_backend()` says which one works here (probed once by making the parent group). When
none is writable (not root, a container without cgroup access, or a v2 namespace root that holds
processes, where controllers cannot be enabled for children), the sandbox falls back to
rlimits per process (RLIMIT_AS for memory, RLIMIT_CPU) plus RLIMIT_NPROC on the sample's own uid,
which caps its process count: memory is then bounded by processes x RLIMIT_AS, not in total.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
GROUP = "r1zero-sandbox"  # the parent of every sample's group
V1_CONTROLLERS = ("memory", "pids", "cpuacct")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _v2_root() -> Path | None:
    for root in (ROOT, ROOT / "unified"):
        try:
            if "memory" in (root / "cgroup.controllers").read_text().split():
                return root
        except OSError:
            continue
    return None


def _prepare() -> tuple[str, dict[str, Path]] | None:
    """("v2" | "v1", {controller: parent dir}) once the parent group exists, or None."""
    v2 = _v2_root()
    try:
        if v2 is not None:
            parent = v2 / GROUP
            parent.mkdir(exist_ok=True)
            for controller in ("memory", "pids", "cpu"):  # memory is required, the others are a bonus
                try:
                    _write(v2 / "cgroup.subtree_control", f"+{controller}")
                    _write(parent / "cgroup.subtree_control", f"+{controller}")
                except OSError:
                    if controller == "memory":
                        raise
            return "v2", {"all": parent}
        parents = {}
        for controller in V1_CONTROLLERS:
            if (ROOT / controller).is_dir():
                (ROOT / controller / GROUP).mkdir(exist_ok=True)
                parents[controller] = ROOT / controller / GROUP
        return ("v1", parents) if "memory" in parents else None
    except OSError as e:
        log.debug("cgroups not usable: %s", e)
        return None


def _procs(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


@dataclass
class SampleCgroup:
    """One sample's control group(s): join with `join_paths`, read usage, kill, remove."""

    version: str
    groups: dict[str, Path]  # controller ("all" for v2) -> this sample's dir

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int) -> SampleCgroup | None:
        """A fresh group named `name` (a stale one of that name is emptied first), or None."""
        prepared = _backend()
        if prepared is None:
            return None
        version, parents = prepared
        group = cls(version, {controller: parent / name for controller, parent in parents.items()})
        group.remove()
        try:
            for path in group.groups.values():
                path.mkdir()
            if version == "v2":
                path = group.groups["all"]
                _write(path / "memory.max", str(memory_bytes))
                for setting, value in (("memory.swap.max", 0), ("pids.max", max_processes)):
                    if (path / setting).exists():  # absent without swap accounting or the pids controller
                        _write(path / setting, str(value))
            else:
                memory = group.groups["memory"]
                _write(memory / "memory.limit_in_bytes", str(memory_bytes))
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
                if "pids" in group.groups:
                    _write(group.groups["pids"] / "pids.max", str(max_processes))
        except OSError as e:
            log.warning("sandbox: could not set up cgroup %s (%s); per-process limits only", name, e)
            group.remove()
            return None
        return group

    def join_paths(self) -> list[str]:
        """The `cgroup.procs` files the sandbox's first process writes its pid to."""
        return [str(path / "cgroup.procs") for path in self.groups.values()]

    def cpu_seconds(self) -> float | None:
        """CPU time used by all the sample's processes so far."""
        try:
            if self.version == "v2":
                stat = dict(line.split() for line in (self.groups["all"] / "cpu.stat").read_text().splitlines())
                return int(stat["usage_usec"]) / 1e6
            if "cpuacct" in self.groups:
                return int((self.groups["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, KeyError, ValueError):
            pass
        return None

    def oom_killed(self) -> bool:
        """Whether the kernel killed one of its processes for going over the memory limit."""
        try:
            if self.version == "v2":
                text = (self.groups["all"] / "memory.events").read_text()
            else:
                text = (self.groups["memory"] / "memory.oom_control").read_text()
            counts = dict(line.split() for line in text.splitlines())
            return int(counts.get("oom_kill", 0)) > 0
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL every process in the group."""
        if self.version == "v2" and (self.groups["all"] / "cgroup.kill").exists():
            try:
                _write(self.groups["all"] / "cgroup.kill", "1")
                return
            except OSError:
                pass
        for path in self.groups.values():
            for pid in _procs(path):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def remove(self, patience_s: float = 3.0) -> None:
        """Kill what is left and remove the group's dirs (a dir with processes cannot be removed)."""
        deadline = time.monotonic() + patience_s
        for path in self.groups.values():
            while path.exists():
                try:
                    path.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        log.error("sandbox: cgroup %s still busy; left in place", path)
                        break
                    self.kill()
                    time.sleep(0.005)


@functools.lru_cache(maxsize=1)
def _backend() -> tuple[str, dict[str, Path]] | None:
    return _prepare() if os.geteuid() == 0 else None


def cgroup_backend() -> str | None:
    """'v2', 'v1', or None when this process cannot create cgroups (then: rlimits only)."""
    prepared = _backend()
    return prepared[0] if prepared else None
