"""Whether process workers' shared memory fits ``/dev/shm``, asked before they start.

A container's ``/dev/shm`` is often small (Docker's default: 64 MB). Each worker's slot ring
holds ``(requests + 1) x group + LEND`` batches there (torch's own way, without slots: the
batches in flight). Where that does not fit, with a margin, the group of batches a request and
then the requests in flight shrink; where even one batch a request, one in flight does not fit,
the loader reads on threads instead. Each says so once, with the sizes and the fix, rather than a
worker failing to allocate (torch: ``unable to allocate shared memory``) or dying of SIGBUS.

>>> p = fit(4 << 20, workers=2, prefetch=2, group=1, free=16 << 20)
>>> p.fits, human_bytes(p.need)
(False, '32.0 MiB')
>>> fit(256 << 10, workers=2, prefetch=16, group=16, free=16 << 20)[:3]
(12, 1, True)
"""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any, NamedTuple

import torch.multiprocessing

from ...errors import LoaderError, SharedMemoryWarning
from ...units import human_bytes

__all__: list[str] = []

SHM = "/dev/shm"
_PAGE = 4096
FIX = (
    "give the container more shared memory: docker run --shm-size=1g, or in Kubernetes an "
    "emptyDir volume with medium: Memory mounted at /dev/shm"
)


class Plan(NamedTuple):
    """Batches a request (``size``), requests in flight per worker, whether that fits the free
    space of ``/dev/shm`` (``fits``), the bytes it needs there and the free bytes (None: not
    known, nothing was checked); ``asked`` is the (size, requests) the settings asked for."""

    size: int
    requests: int
    fits: bool
    need: int
    free: int | None
    asked: tuple[int, int]

    @property
    def shrunk(self) -> bool:
        return self.fits and (self.size, self.requests) != self.asked


_OURS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def warn(message: str) -> None:
    """A :class:`SharedMemoryWarning` shown at the first caller outside workbench (the user's
    loop), however deep the loader started the pass."""
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_back is not None:
        frame, level = frame.f_back, level + 1
        if not frame.f_code.co_filename.startswith(_OURS):
            break
    warnings.warn(message, SharedMemoryWarning, stacklevel=level)


def free_bytes(path: str = SHM) -> int | None:
    """Bytes free on the file system holding ``path`` (None where there is none)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def room(free: int) -> int:
    """What of ``free`` bytes the workers may take: an eighth (at least 1 MiB) stays free, for
    torch's own segments, another process's and a ring being replaced."""
    return free - max(free // 8, 1 << 20)


def need(batch_bytes: int, workers: int, size: int, requests: int, slots: bool, lend: int) -> int:
    """Bytes of ``/dev/shm`` that ``workers`` processes take for batches of ``batch_bytes``,
    ``size`` a request, ``requests`` in flight each; their slot rings, or without ``slots``
    torch's per-batch tensors in flight (and ``lend`` more the consumer holds)."""
    per = batch_bytes + _PAGE  # each column's segment rounds up to a page
    if slots:
        return workers * ((requests + 1) * size + lend) * per
    return (workers * requests * size + lend) * per


def fit(
    batch_bytes: int,
    workers: int,
    prefetch: int,
    group: int,
    free: int | None,
    slots: bool = True,
    lend: int = 2,
) -> Plan:
    """The biggest group of batches a request (at most ``group`` and ``prefetch``), then the
    most requests in flight (``prefetch`` batches in all, as asked), whose shared memory fits
    ``free``; the asked one when the batch size or ``free`` is unknown; one batch, one request
    with ``fits`` False when nothing fits."""
    size = max(1, min(prefetch, group))
    asked = (size, max(1, prefetch // size))
    if not batch_bytes or free is None:
        return Plan(*asked, True, 0, free, asked)
    limit = room(free)
    for s in range(size, 0, -1):
        for r in range(max(1, prefetch // s), 0, -1):
            bytes_ = need(batch_bytes, workers, s, r, slots, lend)
            if bytes_ <= limit:
                return Plan(s, r, True, bytes_, free, asked)
    return Plan(1, 1, False, need(batch_bytes, workers, 1, 1, slots, lend), free, asked)


def message(plan: Plan, batch_bytes: int, workers: int, asked_need: int) -> str:
    """What the warning says: the sizes (needed vs free on /dev/shm), what the loader does
    instead, and the fix."""
    free = human_bytes(plan.free or 0)
    head = (
        f"process workers need {human_bytes(asked_need)} of shared memory ({workers} workers, "
        f"batches of {human_bytes(batch_bytes)}, {plan.asked[0]} a request, "
        f"{plan.asked[1]} in flight)"
        f" but {SHM} has {free} free"
    )
    if plan.fits:
        return (
            f"{head}: reading {plan.size} batches a request, {plan.requests} in flight per "
            f"worker instead ({human_bytes(plan.need)}), which is slower; for full speed {FIX}"
        )
    return (
        f"{head}, and even one batch at a time needs {human_bytes(plan.need)}: reading on "
        f"{workers} threads instead of processes; to use processes {FIX}"
    )


def note(plan: Plan, asked_need: int) -> str:
    """The fallback in a few words, for the loader's state ('' when none)."""
    if plan.fits and not plan.shrunk:
        return ""
    how = (
        "threads" if not plan.fits else f"{plan.size} batches a request, {plan.requests} in flight"
    )
    return (
        f"{how}: {SHM} has {human_bytes(plan.free or 0)} free, "
        f"process workers need {human_bytes(asked_need)}"
    )


class NoRoom(LoaderError):
    """A worker's slot ring found no room on /dev/shm (a batch whose size was not known before
    the workers started): the main process goes on with threads."""


def no_room(count: int, batch: Any) -> NoRoom:
    """The error of a worker whose slot ring, ``count`` batches like ``batch``, found no room."""
    parts = batch.values() if isinstance(batch, dict) else batch
    nbytes = sum(v.nbytes for v in parts if hasattr(v, "nbytes"))
    return NoRoom(
        f"a loader worker process found no room on {SHM} for its {count} batch slots of "
        f"{human_bytes(nbytes)} ({human_bytes(count * nbytes)}; "
        f"{human_bytes(free_bytes() or 0)} free)"
    )


def no_room_sharing(exc: BaseException) -> NoRoom:
    """The error of a worker whose batch, sent torch's own way, found no room on /dev/shm."""
    said = str(exc).split(": ", 1)[-1] if "(shm)" in str(exc) else str(exc)
    return NoRoom(
        f"a loader worker process found no room on {SHM} for a batch torch shares "
        f"({human_bytes(free_bytes() or 0)} free; torch: {said})"
    )


def drop_leftovers(*pids: int) -> None:
    """Remove the names failed allocations of processes ``pids`` left on /dev/shm: torch names a
    segment ``torch_<pid>_...`` and unlinks it once mapped, but not when the allocation failed
    (torch 2.x, the ``file_descriptor`` strategy: a mapped one has no name left to remove), or
    when the process was stopped between the two."""
    if not pids or torch.multiprocessing.get_sharing_strategy() != "file_descriptor":
        return  # file_system segments are torch's own to track
    try:
        names = os.listdir(SHM)
    except OSError:
        return
    prefixes = tuple(f"torch_{pid}_" for pid in pids)
    for name in names:
        if name.startswith(prefixes):
            try:
                os.unlink(os.path.join(SHM, name))
            except OSError:
                pass


def worker_said(exc: BaseException) -> str:
    """What a worker's :class:`NoRoom` said, out of the traceback torch wraps it in."""
    return str(exc).strip().splitlines()[-1].split("NoRoom: ", 1)[-1]


def on_threads(said: str, workers: int) -> str:
    """The warning when a worker found no room (``said``: :func:`worker_said`)."""
    return f"{said}: reading on {workers} threads instead of processes; to use processes {FIX}"
