"""What the loader chooses for the options left None (``num_workers``, ``worker_type``,
``prefetch_factor``, ``window``), from measured costs and the dataset's shard cache, and the
checks of the values a config ends up with.

>>> choose(wb.loading.LoaderConfig(batch_size=512), row_nbytes=4096)["num_workers"]  # 2 MiB
2
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..monitoring.container import container_limits
from .sampling import ORDERS

__all__: list[str] = []

# worker_type=None: processes for a per-batch transform (a Python one holds the GIL: 2 processes
# ran 1.36x the best thread setting with a light one, 1.72x with a heavy one,
# benchmarks/workers.py), where workers start by fork (nothing to pickle: a notebook's own
# functions work); else threads.
DEFAULT_WORKER_TYPE = "thread"
# Threads hand each batch across the GIL (~150 us on 2 cores): for small batches that costs more
# than it overlaps (2 GiB store, bs=256: block 1.8M rows/s in-process vs 0.7-0.8M with 1-2
# threads); from ~1 MiB per batch two threads win (bs=4096: 4.0M vs 3.7M). None picks by that,
# except for a dataset that reads the next batch in the background in-process (``reads_ahead``:
# memmapped stores and arrays), where in-process wins at every size (bs 4096, 1 GiB store: block
# 4.74M vs 3.70M, full 4.52M vs 3.44M).
AUTO_THREADS_FROM_BYTES = 1 << 20
AUTO_THREADS = 2
# Worker processes: each request through torch's queues costs ~150 us of CPU a side, so small
# batches travel in groups of up to prefetch_factor (``_requests.group_size``); None keeps about
# 4 MiB in flight per process worker, one group (bs=256 x 1 KiB, 2 processes, full shuffle:
# 307 us a batch one a request, 139 us 16 a request).
AUTO_PREFETCH_BYTES, AUTO_PREFETCH_MAX = 4 << 20, 16
# Shard order over a streamed dataset holds the window's shards and SHARD_LAG more at once (a
# batch straddles two windows), so its cache must hold window + SHARD_LAG shards or it fetches
# them again and again (24 shards of 1 MiB, a cache of 6, window 8: 48.6 fetches a shard an
# epoch, 128 of one; window 2: 1.0). window=None: DEFAULT_WINDOW, or there the widest window up
# to it whose shards fit with FETCH_AHEAD more, fetched while a batch reads; at least 1.
DEFAULT_WINDOW, SHARD_LAG, FETCH_AHEAD = 8, 3, 1


def shards_at_once(order: str, window: int) -> int:
    """Shards a pass in ``order`` needs at once: the ``lag`` a streamed dataset plans with."""
    return 2 if order == "sequential" else window + SHARD_LAG


def fitted_window(order: str, cache: tuple[int, int] | None) -> int:
    """The automatic window in ``order`` over a dataset whose shard ``cache`` is (bytes it
    holds, bytes of the biggest shard), None where it has none."""
    if cache is None or order != "shard":
        return DEFAULT_WINDOW
    held = cache[0] // max(1, cache[1])
    return max(1, min(DEFAULT_WINDOW, held - SHARD_LAG - FETCH_AHEAD))


def check_window(window: int, order: str, cache: tuple[int, int] | None) -> None:
    """Refuse a ``window`` given in shard order whose shards the ``cache`` cannot hold."""
    if cache is None or order != "shard":
        return
    (cache_bytes, biggest), need = cache, shards_at_once(order, window)
    held = cache_bytes // max(1, biggest)
    if need <= held:
        return
    most = held - SHARD_LAG
    fix = (
        f"use window<={most}, or leave window out to fit it to the cache"
        if most >= 1
        else "or use shuffle='sequential' (it holds 2 shards at once)"
    )
    raise InvalidInputError(
        f"window={window} in shard order needs {need} shards in the cache at once (the "
        f"window's and {SHARD_LAG} more), {need * biggest:,} bytes with shards of up to "
        f"{biggest:,} bytes, but cache_bytes={cache_bytes:,} holds {held}: shards would be "
        f"fetched again and again. Raise cache_bytes to {need * biggest:,} "
        f"({(need + FETCH_AHEAD) * biggest:,} to also fetch ahead), {fix}"
    )


def window_note(cfg: Any, cache: tuple[int, int] | None) -> str:
    """``", window=N (why)"`` for a loader's repr in the orders that mix windows, else ``""``."""
    if cfg.shuffle not in ("block", "shard"):
        return ""
    why = "default" if cfg.auto_window else "given"
    if cfg.shuffle == "shard" and cache is not None:
        held, size = cache[0] // max(1, cache[1]), f"{cache[0] / 2**20:,.1f}".removesuffix(".0")
        why = (
            f"the cache's {size} MiB holds {held} shards, too few for shard order's "
            f"{SHARD_LAG + 1}: raise cache_bytes to {(SHARD_LAG + 1 + FETCH_AHEAD) * cache[1]:,}"
            if held <= SHARD_LAG
            else f"fitted to the cache: {size} MiB holds {held} shards"
            if cfg.auto_window
            else f"given: {shards_at_once('shard', cfg.window)} of the {held} shards the cache "
            "holds"
        )
    return f", window={cfg.window} ({why})"


def forks(context: Any) -> bool:
    """Whether DataLoader workers would start by fork (``multiprocessing_context``, else the
    default start method)."""
    import multiprocessing

    if context is None:  # without fixing the method: the first of the list is the default
        method = (
            multiprocessing.get_start_method(allow_none=True)
            or multiprocessing.get_all_start_methods()[0]
        )
    else:
        method = context if isinstance(context, str) else context.get_start_method()
    return method == "fork"


def order_name(shuffle: Any) -> str:
    """An order name from ``shuffle=``: DataLoader's True (full) and False (sequential), or ours."""
    if isinstance(shuffle, bool):
        return "full" if shuffle else "sequential"
    if shuffle not in ORDERS:
        raise InvalidInputError(
            f"shuffle={shuffle!r} is not understood; use one of {ORDERS}, "
            "True (full) or False (sequential)"
        )
    return str(shuffle)


def choose(
    cfg: Any, row_nbytes: int, reads_ahead: bool = False, cache: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The values of a ``LoaderConfig`` ``cfg`` for a dataset of ``row_nbytes`` a row that
    ``reads_ahead`` in-process or not and streams through a shard ``cache`` (bytes, biggest
    shard) or not: the automatic ones chosen (where its ``auto_*`` flags say they were None),
    every one checked, the flags made bools."""
    window = fitted_window(cfg.shuffle, cache) if cfg.auto_window else cfg.window
    kind = cfg.worker_type
    if cfg.auto_type:
        kind = (
            "process"
            if cfg.transform is not None and forks(cfg.multiprocessing_context)
            else DEFAULT_WORKER_TYPE
        )
    if kind not in ("thread", "process"):
        raise InvalidInputError(
            f"worker_type={kind!r}; use 'thread', 'process', or None to let the loader choose"
        )
    for name, value in (
        ("batch_size", cfg.batch_size),
        ("window", window),
        ("run_rows", cfg.run_rows),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name}={value!r}; use an integer of at least 1")
    if not cfg.auto_window:  # the fitted one may not fit either: then plan_reads warns
        check_window(window, cfg.shuffle, cache)
    batch_bytes = cfg.batch_size * int(row_nbytes or 0)
    prefetch = cfg.prefetch_factor
    if cfg.auto_prefetch:
        prefetch = (
            2
            if kind == "thread" or not batch_bytes
            else max(2, min(AUTO_PREFETCH_MAX, AUTO_PREFETCH_BYTES // batch_bytes))
        )
    workers = cfg.num_workers
    if cfg.auto_workers:
        big = kind == "process" or (batch_bytes >= AUTO_THREADS_FROM_BYTES and not reads_ahead)
        # a process per core at most: under a CPU quota of one core a second one only competes
        procs = min(AUTO_THREADS, container_limits().cores)
        workers = (procs if kind == "process" else AUTO_THREADS) if big else 0
    if not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 1:
        raise InvalidInputError(
            f"prefetch_factor={prefetch!r}; use an integer of at least 1, "
            "or None to let the loader choose"
        )
    if not isinstance(workers, int) or workers < 0:
        raise InvalidInputError(
            f"num_workers={workers!r}; use an integer >= 0, or None to let the loader choose"
        )
    return {
        "num_workers": workers,
        "worker_type": kind,
        "pin_memory": bool(cfg.pin_memory),
        "persistent_workers": bool(cfg.persistent_workers),
        "prefetch_factor": prefetch,
        "window": window,
    }
