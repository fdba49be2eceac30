"""The limits this process runs under: its cgroup's memory limit and CPU quota, not the host's.

JupyterLab mostly runs in a pod, a container or a Slurm job: ``psutil.virtual_memory()`` and
``os.cpu_count()`` describe the host there, which can be 60x too generous. Every default that
sizes itself to the machine (the tuner's budget, advise, the Monitor's available memory, worker and
gather-thread counts, the doctor's cores finding) asks this module instead.

Read from cgroup v2 (``memory.max``, ``memory.current``, ``cpu.max``) or v1
(``memory.limit_in_bytes``, ``memory.usage_in_bytes``, ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``), found through ``/proc/self/cgroup`` and ``/proc/self/mountinfo``; the
tightest limit on the way up to the mount's root counts, as the kernel enforces it. Memory in use
is the working set (usage minus ``inactive_file``: page cache the kernel reclaims before it kills
anything), as the kubelet counts it.

>>> lim = container_limits()
>>> lim.cores >= 1 and lim.available > 0
True
"""

from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..units import human_bytes

__all__ = ["ContainerLimits", "container_limits"]

_UNLIMITED_V1 = 1 << 60  # v1 writes "no limit" as PAGE_COUNTER_MAX pages: any figure this large
_promised: dict[int, int] = {}  # owner -> bytes it will still take (this process)
_promised_lock = threading.Lock()


def promise(owner: object, nbytes: int) -> None:
    """Say that ``owner`` (a RAM tier copying) will still take ``nbytes`` of memory; 0 withdraws.
    Every default budget computed meanwhile leaves them out (:func:`promised_bytes`).

    >>> key = object(); promise(key, 1 << 20); promised_bytes() >= 1 << 20
    True
    >>> promise(key, 0)
    """
    with _promised_lock:
        if nbytes > 0:
            _promised[id(owner)] = nbytes
        else:
            _promised.pop(id(owner), None)


def promised_bytes() -> int:
    """Bytes promised in this process and not taken yet (:func:`promise`)."""
    with _promised_lock:
        return sum(_promised.values())


@dataclass(frozen=True)
class ContainerLimits:
    """Memory and CPU this process may use, with where each figure came from.

    Parameters
    ----------
    memory_limit : int or None
        Bytes the cgroup allows (the tightest on the way to the root); None when unlimited.
    memory_used : int or None
        The cgroup's working set in bytes (usage minus inactive page cache); None without a cgroup.
    host_total, host_available : int
        The host's figures (``psutil.virtual_memory()``).
    cpu_quota : float or None
        Cores' worth of CPU time the quota allows per period (``cpu.max`` 150000/100000 is 1.5).
    cpus : int
        Cores in this process's affinity mask.
    source : str
        ``"cgroup v2"``, ``"cgroup v1"`` or ``"host"``: what set the memory figures.
    """

    memory_limit: int | None
    memory_used: int | None
    host_total: int
    host_available: int
    cpu_quota: float | None
    cpus: int
    source: str

    @property
    def available(self) -> int:
        """Bytes this process can still take: the smaller of the host's and the cgroup's room."""
        if self.memory_limit is None:
            return self.host_available
        return max(0, min(self.host_available, self.memory_limit - (self.memory_used or 0)))

    @property
    def total(self) -> int:
        """The memory this process can ever have: the cgroup's limit, or the host's RAM."""
        return min(self.memory_limit or self.host_total, self.host_total)

    @property
    def cores(self) -> int:
        """Cores worth running threads or workers on: the affinity, capped by the CPU quota."""
        if self.cpu_quota is None:
            return max(1, self.cpus)
        return max(1, min(self.cpus, math.ceil(self.cpu_quota - 1e-9)))

    def describe(self) -> str:
        """One line, as ``wb.watch`` and the dashboard show it.

        Returns
        -------
        str
            For example ``"limit 4.0 GiB, cgroup v2 (1.2 GiB used); 2 cores (quota 1.5)"``.
        """
        if self.memory_limit is None:
            mem = f"no memory limit ({human_bytes(self.host_total)} host)"
        else:
            used = (
                f" ({human_bytes(self.memory_used)} used)" if self.memory_used is not None else ""
            )
            mem = f"limit {human_bytes(self.memory_limit)}, {self.source}{used}"
        quota = f" (quota {self.cpu_quota:g})" if self.cpu_quota is not None else ""
        return f"{mem}; {self.cores} cores{quota}"


def container_limits(root: str | os.PathLike[str] = "/") -> ContainerLimits:
    """Read this process's cgroup limits (v2, else v1), its affinity and the host's memory.

    Parameters
    ----------
    root : path, default "/"
        The file system root to read ``proc/self/...`` and the cgroup mounts under (tests point it
        at a tree of their own).

    Returns
    -------
    ContainerLimits
        Host figures only (``source="host"``) where no cgroup file is readable.
    """
    root = Path(root)
    vm = psutil.virtual_memory()
    mem_dir, mem_version = _controller_dir(root, "memory")
    cpu_dir, cpu_version = _controller_dir(root, "cpu")
    limit = used = None
    if mem_dir is not None:
        limit, used = _memory(root, mem_dir, mem_version)
    if limit is not None and limit >= vm.total:
        limit = None  # a limit above the host's RAM never binds
    quota = _cpu_quota(root, cpu_dir, cpu_version) if cpu_dir is not None else None
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity
        cpus = os.cpu_count() or 1
    return ContainerLimits(
        memory_limit=limit,
        memory_used=used,
        host_total=int(vm.total),
        host_available=int(vm.available),
        cpu_quota=quota,
        cpus=cpus,
        source=f"cgroup v{mem_version}" if used is not None else "host",
    )


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@functools.lru_cache(maxsize=16)  # the Monitor asks twice a second; a process keeps its cgroup
def _controller_dir(root: Path, controller: str) -> tuple[Path | None, int]:
    """The directory of this process's cgroup for ``controller``, and the cgroup version."""
    groups = {}  # controller or "" (v2) -> path inside the hierarchy
    for line in (_read(root / "proc/self/cgroup") or "").splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            groups[name] = path
    mounts = []  # (fstype, options, mount root, mount point)
    for line in (_read(root / "proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((tail[0], set(tail[2].split(",")), fields[3], fields[4]))
    for fstype, options, mount_root, point in mounts:  # v2 first: where it has the controller
        if fstype == "cgroup2" and "" in groups:
            d = _inside(root, point, mount_root, groups[""])
            if (d / "cgroup.controllers").exists() and controller in (
                _read(d / "cgroup.controllers") or ""
            ).split():
                return d, 2
    for fstype, options, mount_root, point in mounts:
        if fstype == "cgroup" and controller in options and controller in groups:
            return _inside(root, point, mount_root, groups[controller]), 1
    return None, 0


def _inside(root: Path, point: str, mount_root: str, path: str) -> Path:
    """The cgroup's folder under the mount point; a namespaced mount's root is the cgroup itself."""
    rel = os.path.relpath(path, mount_root) if path.startswith(mount_root) else "."
    return root / point.lstrip("/") / ("" if rel == "." else rel)


def _ancestors(d: Path, top: Path) -> list[Path]:
    out = [d]
    while d != top and top in d.parents:
        d = d.parent
        out.append(d)
    return out


def _number(text: str | None) -> int | None:
    if text is None or text == "max" or not text.lstrip("-").isdigit():
        return None
    n = int(text)
    return None if n < 0 or n >= _UNLIMITED_V1 else n


def _stat(d: Path, key: str) -> int:
    for line in (_read(d / "memory.stat") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def _memory(root: Path, d: Path, version: int) -> tuple[int | None, int | None]:
    """(the tightest limit up to the mount, the working set) of the cgroup at ``d``."""
    top = _mount_point(root, d)
    limit_file, usage_file, cache_key = (
        ("memory.max", "memory.current", "inactive_file")
        if version == 2
        else ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
    )
    limits = [_number(_read(a / limit_file)) for a in _ancestors(d, top)]
    if version == 1:  # the kernel's own view of the hierarchy's tightest limit
        limits.append(_number(str(_stat(d, "hierarchical_memory_limit"))))
    known = [n for n in limits if n]
    usage = _number(_read(d / usage_file))
    used = None if usage is None else max(0, usage - _stat(d, cache_key))
    return (min(known) if known else None), used


def _mount_point(root: Path, d: Path) -> Path:
    top = d
    while top.parent != top and (top.parent / "cgroup.procs").exists():
        top = top.parent
    return top


def _cpu_quota(root: Path, d: Path, version: int) -> float | None:
    """Cores' worth of quota: the tightest on the way up; None when there is none."""
    quotas = []
    for a in _ancestors(d, _mount_point(root, d)):
        if version == 2:
            parts = (_read(a / "cpu.max") or "max").split()
            q, period = parts[0], (parts[1] if len(parts) > 1 else "100000")
        else:
            q, period = _read(a / "cpu.cfs_quota_us") or "-1", _read(a / "cpu.cfs_period_us") or "0"
        qn, pn = _number(q), _number(period)
        if qn and pn:
            quotas.append(qn / pn)
    return min(quotas) if quotas else None
