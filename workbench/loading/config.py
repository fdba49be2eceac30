"""A loader's options as one frozen, validated object: what ``Loader.reconfigure`` swaps, whole,
at a batch boundary.

>>> c = LoaderConfig.build(row_nbytes=4096, batch_size=512)
>>> c.num_workers, c.with_changes(4096, batch_size=64).batch_size
(2, 64)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InvalidInputError
from .sampling import ORDERS

__all__ = ["LoaderConfig"]

# worker_type=None: processes for a per-batch transform (a Python one holds the GIL: 2 processes
# ran 1.36x the best thread setting with a light one, 1.72x with a heavy one, benchmarks/workers.py),
# where workers start by fork (nothing to pickle: a notebook's own functions work); else threads.
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

# what reconfigure changes at the next batch boundary, and what waits for the next epoch
LIVE_OPTIONS = ("batch_size", "num_workers", "worker_type", "prefetch_factor", "pin_memory",
                "window", "run_rows")
NEXT_EPOCH_OPTIONS = ("shuffle",)


_AUTO = {"auto_workers": "num_workers", "auto_prefetch": "prefetch_factor", "auto_type": "worker_type"}


def _forks(context: Any) -> bool:
    """Whether DataLoader workers would start by fork (``multiprocessing_context``, else the
    default start method)."""
    import multiprocessing

    if context is None:  # without fixing the method: the first of the list is the default
        method = multiprocessing.get_start_method(allow_none=True) or \
            multiprocessing.get_all_start_methods()[0]
    else:
        method = context if isinstance(context, str) else context.get_start_method()
    return method == "fork"


def _order_name(shuffle: Any) -> str:
    """An order name from ``shuffle=``: DataLoader's True (full) and False (sequential), or ours."""
    if isinstance(shuffle, bool):
        return "full" if shuffle else "sequential"
    if shuffle not in ORDERS:
        raise InvalidInputError(f"shuffle={shuffle!r} is not understood; use one of {ORDERS}, "
                                "True (full) or False (sequential)")
    return str(shuffle)


@dataclass(frozen=True)
class LoaderConfig:
    """Every option of :class:`~workbench.loading.loaders.Loader`, validated; ``shuffle`` is an order name
    and ``num_workers`` and ``prefetch_factor`` resolved (``auto_workers`` / ``auto_prefetch``
    say they were ``None``, chosen by batch bytes)."""

    batch_size: int = 256
    shuffle: str = "block"
    seed: int = 0
    num_workers: int = 0
    worker_type: str = DEFAULT_WORKER_TYPE
    prefetch_factor: int = 2
    pin_memory: bool = False
    window: int = 8
    run_rows: int = 1
    block_rows: int | None = None
    drop_last: bool = False
    collate_fn: Callable[[Any], Any] | None = None
    transform: Callable[..., Any] | None = None
    pin_memory_device: str = ""
    timeout: float | None = 30.0
    worker_init_fn: Callable[[int], None] | None = None
    multiprocessing_context: Any = None
    generator: torch.Generator | None = None
    persistent_workers: bool = False
    rank: int | None = None
    world_size: int | None = None
    auto_workers: bool = True
    auto_prefetch: bool = True
    auto_type: bool = True

    @classmethod
    def build(cls, row_nbytes: int = 0, reads_ahead: bool = False, **options: Any) -> LoaderConfig:
        """Validate ``options`` (DataLoader's names, plus ours) into a config, for a dataset of
        ``row_nbytes`` a row that ``reads_ahead`` in-process or not."""
        known = {f.name for f in dataclasses.fields(cls)} - set(_AUTO)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInputError(f"unknown loader option(s) {unknown}; the options are "
                                    f"{sorted(known)}")
        options["shuffle"] = _order_name(options.get("shuffle", "block"))
        generator = options.get("generator")
        if options.get("seed") is None:  # like DataLoader: the generator, if given, decides
            options["seed"] = generator.initial_seed() % (1 << 63) if generator is not None else 0
        timeout = options.get("timeout", 30.0)
        options["timeout"] = timeout if timeout and timeout > 0 else None
        for auto, name in _AUTO.items():
            options[auto] = options.get(name) is None
        return cls(**options)._checked(row_nbytes, reads_ahead)

    def with_changes(self, row_nbytes: int, reads_ahead: bool = False, **changes: Any) -> LoaderConfig:
        """This config with ``changes`` to the options ``reconfigure`` takes live or next epoch."""
        fixed = sorted(set(changes) - set(LIVE_OPTIONS) - set(NEXT_EPOCH_OPTIONS))
        if fixed:
            raise InvalidInputError(
                f"{fixed} cannot change while a loader runs; reconfigure takes "
                f"{list(LIVE_OPTIONS + NEXT_EPOCH_OPTIONS)}: build a new loader for the rest")
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for auto, name in _AUTO.items():
            if name in changes:
                options[auto] = changes[name] is None
        if "shuffle" in changes:
            changes["shuffle"] = _order_name(changes["shuffle"])
        return LoaderConfig(**{**options, **changes})._checked(row_nbytes, reads_ahead)

    def _checked(self, row_nbytes: int, reads_ahead: bool = False) -> LoaderConfig:
        kind = self.worker_type
        if self.auto_type:
            kind = "process" if self.transform is not None and _forks(
                self.multiprocessing_context) else DEFAULT_WORKER_TYPE
        if kind not in ("thread", "process"):
            raise InvalidInputError(f"worker_type={kind!r}; use 'thread', 'process', or None "
                                    "to let the loader choose")
        for name in ("batch_size", "window", "run_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name}={value!r}; use an integer of at least 1")
        batch_bytes = self.batch_size * int(row_nbytes or 0)
        prefetch = self.prefetch_factor
        if self.auto_prefetch:
            prefetch = 2 if kind == "thread" or not batch_bytes else \
                max(2, min(AUTO_PREFETCH_MAX, AUTO_PREFETCH_BYTES // batch_bytes))
        workers = self.num_workers
        if self.auto_workers:
            big = kind == "process" or (batch_bytes >= AUTO_THREADS_FROM_BYTES and not reads_ahead)
            workers = AUTO_THREADS if big else 0
        if not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 1:
            raise InvalidInputError(f"prefetch_factor={prefetch!r}; use an integer of at least 1, "
                                    "or None to let the loader choose")
        if not isinstance(workers, int) or workers < 0:
            raise InvalidInputError(f"num_workers={workers!r}; use an integer >= 0, or None to "
                                    "let the loader choose")
        return dataclasses.replace(self, num_workers=workers, worker_type=kind,
                                   pin_memory=bool(self.pin_memory),
                                   persistent_workers=bool(self.persistent_workers),
                                   prefetch_factor=prefetch)

    @property
    def keeps_workers(self) -> bool:
        """Whether worker processes outlive a pass: ``persistent_workers`` asked for, or the
        loader chose processes itself (``worker_type=None``: starting them every epoch cost 22 %
        of a 512-batch epoch here), and the readers are processes (threads start in ~0.1 ms)."""
        return ((self.persistent_workers or self.auto_type) and self.worker_type == "process"
                and self.num_workers > 0)

    def loader_options(self) -> dict[str, Any]:
        """The options that differ from the defaults, as ``wb.loader(ds, **options)`` takes them."""
        default = LoaderConfig.build()
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in _AUTO and getattr(self, f.name) != getattr(default, f.name)}
        for auto, name in _AUTO.items():
            if getattr(self, auto):
                out.pop(name, None)
            elif name == "worker_type":
                out[name] = self.worker_type  # chosen by hand: kept, even where it is the default
        return out
