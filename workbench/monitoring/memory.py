"""Memory of processes as the kernel accounts it: RSS, PSS, USS, anonymous, shared, shmem, swap.

RSS counts every resident page a process maps, so a page-cache page mapped by the kernel process
and two loader workers is counted three times; PSS splits each shared page between the processes
that map it, so PSS adds up across processes to what the machine really holds, and
``Pss_Anon + Pss_Shmem`` is the part that is not reclaimable page cache. Read from
``/proc/<pid>/smaps_rollup`` (one cheap read per process; Linux 4.14+), with psutil's view where it
is missing.

>>> m = process_memory()
>>> m.pss <= m.rss and m.uss <= m.pss and m.anonymous > 0
True
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ProcessMemory", "memory_tree", "process_memory"]

_FIELDS = {
    "Rss": "rss",
    "Pss": "pss",
    "Pss_Anon": "pss_anon",
    "Pss_Shmem": "pss_shmem",
    "Private_Clean": "private_clean",
    "Private_Dirty": "private_dirty",
    "Shared_Clean": "shared_clean",
    "Shared_Dirty": "shared_dirty",
    "Anonymous": "anonymous",
    "Swap": "swap",
}


@dataclass(frozen=True)
class ProcessMemory:
    """One process's memory in bytes (``uss``: private pages; ``real``: anonymous + shmem PSS).

    Parameters
    ----------
    pid, name : int, str
        The process, and its name (its ``comm`` unless one was given).
    rss, pss, uss : int
        Resident pages: all it maps; its proportional share of each; its private ones.
    anonymous, shared, shmem, swap : int
        Anonymous memory, shared pages (clean and dirty), PSS of shared memory, swapped out.
    real : int
        ``Pss_Anon + Pss_Shmem``: what it holds that is not reclaimable page cache.
    """

    pid: int
    name: str
    rss: int
    pss: int
    uss: int
    anonymous: int
    shared: int
    shmem: int
    swap: int
    real: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def process_memory(pid: int | None = None, name: str = "") -> ProcessMemory:
    """The memory of ``pid`` (default: this process).

    Parameters
    ----------
    pid : int, optional
        The process (default: this one).
    name : str, optional
        What to call it (default: its ``/proc/<pid>/comm``).

    Returns
    -------
    ProcessMemory
        From ``/proc/<pid>/smaps_rollup``, or psutil where that is missing.

    Raises
    ------
    ProcessLookupError
        The process is gone.

    Examples
    --------
    >>> process_memory(os.getpid(), "kernel").name
    'kernel'
    """
    pid = os.getpid() if pid is None else int(pid)
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            raw = _parse(f.read())
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{pid}"):
            raise ProcessLookupError(f"process {pid} is gone; it may have exited") from None
        raw = _from_psutil(pid)
    uss = raw.get("private_clean", 0) + raw.get("private_dirty", 0)
    return ProcessMemory(
        pid=pid,
        name=name or _comm(pid),
        rss=raw.get("rss", 0),
        pss=raw.get("pss", 0),
        uss=uss,
        anonymous=raw.get("anonymous", 0),
        shared=raw.get("shared_clean", 0) + raw.get("shared_dirty", 0),
        shmem=raw.get("pss_shmem", 0),
        swap=raw.get("swap", 0),
        real=raw.get("pss_anon", 0) + raw.get("pss_shmem", 0),
    )


def quick_memory(pid: int, name: str, last: ProcessMemory | None) -> ProcessMemory:
    """RSS, anonymous, shmem and swap from ``/proc/<pid>/status`` (kernel counters, O(1)), with
    PSS/USS/shared carried over from ``last`` (``smaps_rollup`` walks every page table, too slow
    to read several times a second).

    >>> quick_memory(os.getpid(), "kernel", None).rss > 0
    True
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            text = f.read()
    except FileNotFoundError:
        raise ProcessLookupError(f"process {pid} is gone; it may have exited") from None
    kb = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssShmem", "VmSwap"):
            kb[key] = int(rest.split()[0]) * 1024
    rss, anon, shmem = kb.get("VmRSS", 0), kb.get("RssAnon", 0), kb.get("RssShmem", 0)
    return ProcessMemory(
        pid=pid,
        name=name,
        rss=rss,
        pss=last.pss if last else rss,
        uss=last.uss if last else anon,
        anonymous=anon,
        shared=last.shared if last else rss - anon,
        shmem=shmem,
        swap=kb.get("VmSwap", 0),
        real=last.real if last else anon + shmem,
    )


def memory_tree(
    pids: dict[int, str], last: dict[int, ProcessMemory] | None = None
) -> dict[str, Any]:
    """Every live process of ``{pid: name}`` plus their sum; processes that exited are left out.
    With ``last`` (the previous full readings by pid), only the cheap counters are read afresh.

    Parameters
    ----------
    pids : dict of int to str
        ``{pid: name}`` of the processes.
    last : dict of int to ProcessMemory, optional
        The previous full readings by pid: those processes get only RSS, anonymous, shmem and
        swap afresh (from ``/proc/<pid>/status``), PSS, USS and shared carried over.

    Returns
    -------
    dict
        ``{"processes": [ProcessMemory.to_dict(), ...], "total": {field: sum}}`` over the
        fields rss, pss, uss, anonymous, shared, shmem, swap and real.

    Examples
    --------
    >>> tree = memory_tree({os.getpid(): "kernel"})
    >>> tree["total"]["pss"] == tree["processes"][0]["pss"]
    True
    """
    procs = []
    for pid, name in pids.items():
        try:
            if last is not None and pid in last:
                procs.append(quick_memory(pid, name, last[pid]))
            else:
                procs.append(process_memory(pid, name))
        except ProcessLookupError:
            continue
    keys = ("rss", "pss", "uss", "anonymous", "shared", "shmem", "swap", "real")
    total = {k: sum(getattr(p, k) for p in procs) for k in keys}
    return {"processes": [p.to_dict() for p in procs], "total": total}


def _parse(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        field = _FIELDS.get(key)
        if field is not None:
            out[field] = int(rest.split()[0]) * 1024  # the kernel reports kB
    return out


def _from_psutil(pid: int) -> dict[str, int]:
    import psutil

    full = psutil.Process(pid).memory_full_info()
    return {
        "rss": full.rss,
        "pss": getattr(full, "pss", full.rss),
        "swap": getattr(full, "swap", 0),
        "private_clean": getattr(full, "uss", full.rss),
        "shared_clean": full.shared,
        "anonymous": full.rss - full.shared,
        "pss_anon": full.rss - full.shared,
    }


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return str(pid)
