"""What the loader chooses for the options left None (``num_workers``, ``worker_type``,
``prefetch_factor``), from measured costs, and the checks of the values a config ends up with.

>>> choose(wb.loading.LoaderConfig(batch_size=512), row_nbytes=4096)["num_workers"]  # 2 MiB
2
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
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


def choose(cfg: Any, row_nbytes: int, reads_ahead: bool = False) -> dict[str, Any]:
    """The values of a ``LoaderConfig`` ``cfg`` for a dataset of ``row_nbytes`` a row that
    ``reads_ahead`` in-process or not: the automatic ones chosen (where its ``auto_*`` flags say
    they were None), every one checked, the flags made bools."""
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
    for name in ("batch_size", "window", "run_rows"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInputError(f"{name}={value!r}; use an integer of at least 1")
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
        workers = AUTO_THREADS if big else 0
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
    }
