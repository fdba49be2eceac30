"""Row gathers, ``out[:] = src[rows]``: on every core, without the GIL, where that pays.

A random 1 KiB row costs memory latency (TLB and cache misses), not bandwidth, so one core running
``np.take`` (which also holds the GIL) leaves most of the machine idle. ``torch.index_select``
over the same memory with torch's intra-op (OpenMP) threads keeps several rows in flight: on this
project's 2-core VM, 1,024 random sorted 1 KiB rows from the page cache took 125-153 us against
np.take's 183-258 us, and 256 rows 31-35 us against 42-66 us (``benchmarks/README.md``). Numba's
``prange`` lost to both (84-400 us), so torch, already a dependency, is the whole mechanism.

OpenMP's thread count is per calling thread, so a gather sets it for its own call only and puts
it back: the caller's torch ops (a training step, the benchmark's consumer) keep their setting.
Where it does not pay, np.take stays: small gathers (under ``MIN_PARALLEL_BYTES``, where thread
start-up costs more than it hides), one usable core, or dtypes and layouts torch does not share.

An OpenMP team waits for its slowest thread, so on oversubscribed cores (load 3.7 on 2 cores
here) one descheduled helper stalls the whole gather: in one such run the loader's full shuffle
with the OpenMP gather ran 2.4x (bs 1024) to 20x (bs 256) slower than with np.take. So both
paths are timed as they run (seconds per byte, a moving average per process) and the faster one
is used, the other re-tried every ``PROBE_EVERY`` gathers as the load changes. A path is charged
from its gather's start to the same thread's next gather: OpenMP helpers spin after a team ends
and take the core from the caller's own work (the consumer), which the gather alone never shows
(measured: bs 1024 full shuffle, 0.67M rows/s with the gather alone timed vs 1.81M with np.take).

A shuffled batch is one call per column of the compiled ``take_rows`` (``_take.c``, built by
``pip install``; :data:`native` is None where it could not be built, or with
``WB_NATIVE_GATHER=0``): it finds each row's shard itself (numpy needs a call per shard per column
and the Python around them) and, for batches of ``MIN_NATIVE_PARALLEL_BYTES`` or more, shares the
rows with helper threads of its own (``native_threads``). Those claim rows in small chunks, so the
caller never waits for a helper that is descheduled or asleep (the OpenMP failure above). bs-256
batches of random 1 KiB rows from the page cache, one array, summed, on this 2-core VM: 6.0-6.7M
rows/s with one thread, 7.2-7.4M with two; bs 1024 6.1-6.3M -> 7.9M (benchmarks/README.md). Readers
whose shards stay open (memmaps) pass every shard to :func:`take_into` at once: no Python splits a
batch by shard (``get_batch`` of 256 random rows over 5 shards: 49.7 -> 36.8 us).

>>> src = np.arange(12.0).reshape(6, 2)
>>> gather(src, np.array([1, 4]), np.empty((2, 2)))[:, 0].tolist()
[2.0, 8.0]
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from typing import Any

import numpy as np
import torch

from ..monitoring.container import container_limits

__all__: list[str] = []

try:  # optional=True in setup.py: an install without a C compiler still works, on numpy
    from . import _take as _compiled
except ImportError:  # pragma: no cover - depends on the install
    _compiled = None
native: Any = _compiled if os.environ.get("WB_NATIVE_GATHER", "1") != "0" else None

# Below this a 2-thread index_select measured no faster than np.take (64-128 KiB: often slower)
MIN_PARALLEL_BYTES = 256 << 10
# dtypes torch.from_numpy and index_select both handle (uint16/32/64 have only partial op support)
_TORCH_DTYPES = frozenset(
    np.dtype(t)
    for t in (
        "bool",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
)
_active: list[int] = []  # gathers in flight in this process (list ops are atomic under the GIL)
PROBE_EVERY = 32  # gathers between re-tries of the path that is currently slower
_ALPHA = 0.25  # weight of the newest timing in each path's moving average
_cost = {"take": 0.0, "torch": 0.0}  # seconds per byte, 0.0 = not timed yet (races are benign)
_calls = [0]
_CYCLE_MAX_S = 0.25  # a longer gap between gathers is a pause (epoch end, eval), not a cost
_last = threading.local()  # this thread's previous gather: (path, start, bytes)


def cores(default: str = "1") -> int:
    """Threads a gather may use: ``WB_GATHER_THREADS`` (``all`` = every core this process may run
    on, under its affinity and its cgroup's CPU quota), else ``default``. The OpenMP path's
    default is 1 (np.take): in the loader benchmark on a loaded 2-core VM it lost (bs 1024 full
    shuffle 0.20-0.37x of np.take, bs 256 0.81-1.18x), so it is opt-in; the compiled gather's
    default is every core (:func:`native_threads`)."""
    env = os.environ.get("WB_GATHER_THREADS", default)
    if env == "all":
        return container_limits().cores  # a pod's quota of 2 cores on a 64-core host: 2
    return max(1, int(env))


_CORES = cores()
_NATIVE_CORES = min(16, cores("all"))
# Below this one thread copies as fast as two (64 random 1 KiB rows: 4.9 vs 5.2M rows/s summed)
MIN_NATIVE_PARALLEL_BYTES = 64 << 10


def gather_threads() -> int:
    """Threads for the next gather: the cores shared among gathers already running here, and 1 in
    a DataLoader worker process (the processes already use the cores)."""
    if _CORES <= 1 or torch.utils.data.get_worker_info() is not None:
        return 1
    return max(1, _CORES // (len(_active) + 1))


def native_threads() -> int:
    """Threads for the next compiled gather: every core (``WB_GATHER_THREADS`` caps it), and 1 in
    a DataLoader worker process, where the worker processes already use the cores. Calls that
    overlap (read-ahead threads) share the pool: one call at a time gets the helpers."""
    if _NATIVE_CORES <= 1 or torch.utils.data.get_worker_info() is not None:
        return 1
    return _NATIVE_CORES


def torch_gatherable(src: np.ndarray, out: np.ndarray) -> bool:
    """Whether torch can gather ``src`` rows into ``out`` in place: a shared, native, C-order
    dtype."""
    return (
        src.dtype in _TORCH_DTYPES
        and src.dtype.isnative
        and out.dtype == src.dtype
        and src.ndim >= 1
        and src.flags.c_contiguous
        and out.flags.c_contiguous
    )


def _tensor(a: np.ndarray) -> torch.Tensor:
    # read-only memmaps: torch warns it cannot protect them; index_select only reads the source
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable", category=UserWarning
        )
        return torch.from_numpy(a)


def _pick() -> str:
    """The path with the lower measured cost; each untimed path first, the slower one now and
    then."""
    take, par = _cost["take"], _cost["torch"]
    if not par or not take:
        return "torch" if not par else "take"
    _calls[0] += 1
    best, other = ("torch", "take") if par <= take else ("take", "torch")
    return other if _calls[0] % PROBE_EVERY == 0 else best


def _settle(now: float) -> None:
    """Charge this thread's previous gather with its whole cycle (gather + what ran until now)."""
    prev = getattr(_last, "v", None)
    if prev is None:
        return
    path, t0, nbytes = prev
    if now - t0 < _CYCLE_MAX_S:
        per, old = (now - t0) / nbytes, _cost[path]
        _cost[path] = per if not old else old + _ALPHA * (per - old)


# rows per run, on average, from which copying runs as slices beats a per-row gather
RUN_COPY_MEAN = 16
_DETECT = object()  # gather's default: look for long runs itself


def run_breaks(rows: np.ndarray) -> np.ndarray | None:
    """Where the ascending runs of ``rows`` start (after the first), when runs are long enough
    (``RUN_COPY_MEAN`` rows on average) to copy as slices; None for a gather of scattered rows.

    A reader calls it once per batch and passes the answer to every column's :func:`gather`.

    >>> run_breaks(np.r_[0:20, 50:70]).tolist(), run_breaks(np.arange(0, 40, 2))
    ([20], None)
    """
    if len(rows) < RUN_COPY_MEAN:
        return None
    step = rows[1:] - rows[:-1] != 1
    if (int(np.count_nonzero(step)) + 1) * RUN_COPY_MEAN > len(rows):
        return None
    return np.flatnonzero(step) + 1


def gather(
    src: np.ndarray,
    rows: np.ndarray,
    out: np.ndarray,
    *,
    min_bytes: int = MIN_PARALLEL_BYTES,
    path: str | None = None,
    breaks: Any = _DETECT,
) -> np.ndarray:
    """``out[:] = src[rows]`` (rows bounds-checked by the caller's Plan), bit-identical to np.take.

    ``breaks``: :func:`run_breaks` of ``rows`` if the caller has it (None: no long runs).
    ``path`` ("take" or "torch") skips the measured choice (tests)."""
    if breaks is _DETECT:
        breaks = run_breaks(rows)
    if breaks is not None:  # long runs (run_rows): slice copies at memcpy speed
        edges = [0, *breaks.tolist(), len(rows)]
        for a, b in zip(edges[:-1], edges[1:]):
            r = int(rows[a])
            out[a:b] = src[r : r + b - a]
        return out
    threads = gather_threads() if out.nbytes >= min_bytes else 1
    if threads <= 1 or not torch_gatherable(src, out):  # the method: np.take's wrapper costs ~1 us
        return src.take(rows, axis=0, out=out, mode="clip")
    chosen = path or _pick()
    if path is None:
        now = time.perf_counter()
        _settle(now)
        _last.v = (chosen, now, out.nbytes)
    if chosen == "take":
        return src.take(rows, axis=0, out=out, mode="clip")
    idx = torch.from_numpy(rows if rows.dtype == np.int64 else rows.astype(np.int64))
    before = torch.get_num_threads()
    _active.append(1)
    try:
        if before != threads:
            torch.set_num_threads(threads)  # this thread's OpenMP team only, restored below
        torch.index_select(_tensor(src), 0, idx, out=torch.from_numpy(out))
    finally:
        if before != threads:
            torch.set_num_threads(before)
        _active.pop()
    return out


def sharded_ok(sources: list[Any], dtype: Any = None) -> bool:
    """Whether :func:`take_into` can read ``sources``: C-contiguous arrays of one dtype."""
    if not sources:
        return False
    want = getattr(sources[0], "dtype", None) if dtype is None else dtype
    return all(
        isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype == want for a in sources
    )


def take_into(
    sources: list[np.ndarray], starts: np.ndarray, rows: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """:func:`take_sharded` without its checks: ``sources`` passed :func:`sharded_ok`, ``out``
    is a new C-contiguous array of their dtype, ``starts`` int64, one per source."""
    threads = native_threads() if out.nbytes >= MIN_NATIVE_PARALLEL_BYTES else 1
    native.take_rows(
        sources, starts, rows if rows.dtype == np.int64 else rows.astype(np.int64), out, threads
    )
    return out


def start_into(
    sources: list[np.ndarray], starts: np.ndarray, rows: np.ndarray, out: np.ndarray
) -> bool:
    """Begin :func:`take_into` on the compiled gather's helper threads and return at once (the
    caller uses the last batch meanwhile); False where it cannot (no helpers here, a small batch,
    one already started): then call :func:`take_into`. One at a time per process; every start
    that returned True must be followed by :func:`finish_into`."""
    if native is None or native_threads() <= 1 or out.nbytes < MIN_NATIVE_PARALLEL_BYTES:
        return False
    return bool(native.take_rows_start(sources, starts, rows, out))


def finish_into() -> None:
    """Wait for the gather :func:`start_into` began."""
    native.take_rows_finish()


def take_sharded(sources: list[np.ndarray], starts: Any, rows: np.ndarray, out: np.ndarray) -> bool:
    """``out[i] = `` global row ``rows[i]``, where ``sources[j]`` holds the rows from ``starts[j]``
    on, in one native call without the GIL (on :func:`native_threads` threads when ``out`` is
    ``MIN_NATIVE_PARALLEL_BYTES`` or more); False (nothing done) where :data:`native` is missing
    or a source is not a C-contiguous array of ``out``'s dtype.

    >>> a, b = np.arange(4.0), np.arange(10.0, 13.0)
    >>> out = np.empty(3)
    >>> take_sharded([a, b], np.array([0, 4]), np.array([5, 0, 6]), out), out.tolist()
    (True, [11.0, 0.0, 12.0])
    """
    if native is None or not out.flags.c_contiguous or not sharded_ok(sources, out.dtype):
        return False
    take_into(sources, np.asarray(starts, np.int64), rows, out)
    return True
