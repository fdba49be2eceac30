"""Feed batches from any map-style Dataset: one batched read per batch for ours (PyTorch's
``__getitems__`` + ``collate_fn`` for the rest), read ahead in threads (default) or in torch
DataLoader worker processes, in order, resumable mid-epoch, with live stats.

>>> ds = wb.open_dataset({"x": np.zeros((5000, 4), "float32"), "y": np.arange(5000)})
>>> dl = loader(ds, batch_size=1024, shuffle="block", num_workers=0)
>>> [len(batch["y"]) for batch in dl], dl.stats.batches, dl.stats.samples
([1024, 1024, 1024, 1024, 904], 5, 5000)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ._batch import batch_nbytes, keep_batch_memory
from ._fetch import Fetch
from ._prefetch import (FetchSpec, Pass, ProcessPass, SyncPass, ThreadPass, live_pids,
                        shutdown_workers)
from .errors import InvalidInputError
from .metrics import BatchEvent
from .ranks import resolve
from .sampling import ORDERS, BatchSampler

__all__ = ["Loader", "LoaderStats", "loader"]

# Why (1 GiB memmap, 2-core box): processes ran at 11-77 % of threads (each batch copied via shm).
DEFAULT_WORKER_TYPE = "thread"
# Threads hand each batch across the GIL (~150 us on 2 cores): for small batches that costs more
# than it overlaps (2 GiB store, bs=256: block 1.8M rows/s in-process vs 0.7-0.8M with 1-2
# threads); from ~1 MiB per batch two threads win (bs=4096: 4.0M vs 3.7M). None picks by that.
AUTO_THREADS_FROM_BYTES = 1 << 20
AUTO_THREADS = 2
FALLBACK_BLOCK_ROWS = 4096  # block order over a dataset without storage blocks (the sampler's default)


@dataclass
class LoaderStats:
    """Running counters: ``wait_s`` is time the consumer spent blocked on data, ``total_s`` wall
    time from the start of each pass to its latest batch (summed over passes)."""

    batches: int = 0
    samples: int = 0
    bytes: int = 0
    wait_s: float = 0.0
    total_s: float = 0.0

    def _per_s(self, amount: float) -> float:
        return amount / self.total_s if self.total_s else 0.0

    samples_per_s = property(lambda self: self._per_s(self.samples))
    mb_per_s = property(lambda self: self._per_s(self.bytes / 1e6))
    wait_fraction = property(lambda self: self._per_s(self.wait_s))

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "samples_per_s": self.samples_per_s, "mb_per_s": self.mb_per_s,
                "wait_fraction": self.wait_fraction}

    def reset(self) -> None:
        self.batches = self.samples = self.bytes = 0
        self.wait_s = self.total_s = 0.0


class Loader:
    """Iterable of batches over any map-style ``dataset``; build it with :func:`loader`.

    The options keep ``torch.utils.data.DataLoader``'s names and meanings (``batch_size``,
    ``shuffle``, ``num_workers``, ``collate_fn``, ``pin_memory``, ``drop_last``, ``timeout``,
    ``worker_init_fn``, ``multiprocessing_context``, ``generator``, ``prefetch_factor``,
    ``persistent_workers``, ``pin_memory_device``); the README maps each one. Ours besides:
    ``shuffle`` also takes an order name ("sequential", "full", "block", "shard"; the default
    "block" is a storage-aligned quasi-random order, "shard" permutes whole shards for streaming), ``seed``, ``worker_type`` ("thread" or "process"),
    ``transform`` (a per-batch function run where the batch is read), ``rank``/``world_size``
    (default: those of an initialised ``torch.distributed`` group, else 0 of 1),
    ``window`` and ``block_rows`` (the block order's unit; default: the dataset's storage blocks,
    or 4096 rows for a dataset without them: ``loader.block_rows`` says which).

    Each full pass advances the epoch, so consecutive ``for`` loops see new orders; ``set_epoch``
    picks one explicitly. ``state_dict`` records batches delivered (not read ahead) in the epoch.

    ``num_workers=None`` (default) reads in the caller's thread when a batch is under 1 MiB and
    with 2 read-ahead threads above that (measured: see ``AUTO_THREADS_FROM_BYTES``);
    ``worker_type="process"`` uses torch DataLoader worker processes, which copy every batch
    through shared memory and are the slowest option for memory-mapped data.
    """

    def __init__(self, dataset: Any, *, batch_size: int = 256, shuffle: str | bool = "block",
                 seed: int | None = None, num_workers: int | None = None,
                 worker_type: str = DEFAULT_WORKER_TYPE, collate_fn: Callable[[Any], Any] | None = None,
                 pin_memory: bool = False, pin_memory_device: str = "", drop_last: bool = False,
                 timeout: float | None = 30.0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None, generator: torch.Generator | None = None,
                 prefetch_factor: int = 2, persistent_workers: bool = False,
                 transform: Callable[..., Any] | None = None, rank: int | None = None,
                 world_size: int | None = None,
                 window: int = 8, block_rows: int | None = None, sampler: Any = None,
                 batch_sampler: Any = None) -> None:
        check_dataset(dataset)
        rank, world_size = resolve(rank, world_size)
        if sampler is not None or batch_sampler is not None:
            raise InvalidInputError(
                "sampler= / batch_sampler= are not taken: the loader orders rows itself (shuffle=, "
                "seed=, rank=/world_size=), which is what makes its reads batched and its resume "
                "exact; for a custom sampler use torch.utils.data.DataLoader(dataset, "
                "batch_sampler=...) over the same dataset")
        order = ("full" if shuffle else "sequential") if isinstance(shuffle, bool) else shuffle
        if order not in ORDERS:
            raise InvalidInputError(f"shuffle={shuffle!r} is not understood; use one of {ORDERS}, "
                                    "True (full) or False (sequential)")
        if worker_type not in ("thread", "process"):
            raise InvalidInputError(f"worker_type={worker_type!r}; use 'thread' or 'process'")
        if num_workers is None:
            batch_bytes = batch_size * int(getattr(dataset, "row_nbytes", 0) or 0)
            big = worker_type == "process" or batch_bytes >= AUTO_THREADS_FROM_BYTES
            num_workers = AUTO_THREADS if big else 0
        if num_workers < 0 or prefetch_factor < 1:
            raise InvalidInputError(
                f"num_workers={num_workers}, prefetch_factor={prefetch_factor}; use "
                "num_workers >= 0 and prefetch_factor >= 1")
        if seed is None:  # like DataLoader: the generator, if given, decides the order
            seed = generator.initial_seed() % (1 << 63) if generator is not None else 0
        self.dataset, self.order, self.seed, self.batch_size = dataset, order, seed, batch_size
        self.num_workers, self.worker_type = num_workers, worker_type
        self.prefetch_factor, self.drop_last = prefetch_factor, drop_last
        self.timeout = timeout if timeout and timeout > 0 else None
        self.multiprocessing_context, self.worker_init_fn = multiprocessing_context, worker_init_fn
        self.collate_fn, self.transform, self.generator = collate_fn, transform, generator
        self.persistent_workers = bool(persistent_workers) and worker_type == "process" and num_workers > 0
        self.pin_memory_device = pin_memory_device
        self.pin_memory = bool(pin_memory)
        self._pin = self.pin_memory and torch.cuda.is_available()  # no CUDA: nothing to pin for
        own = getattr(dataset, "block_rows", None)
        self.block_rows = int(block_rows or own or FALLBACK_BLOCK_ROWS)
        self.block_rows_from = ("given" if block_rows else "the dataset's storage blocks" if own
                                else "fallback: the dataset has no storage blocks")
        self.sampler = BatchSampler(len(dataset), batch_size, order=order, seed=seed,
                                    block_rows=self.block_rows, window=window, rank=rank,
                                    world_size=world_size, drop_last=drop_last,
                                    shard_rows=getattr(dataset, "shard_rows", None))
        # sequential on one rank: every batch is one ascending run (padding only wraps with W > 1)
        self._contiguous = order == "sequential" and world_size == 1
        self.stats = LoaderStats()
        self._epoch = self._position = 0
        self._current: weakref.ref | None = None
        self._workers: dict[str, Any] = {}  # a persistent DataLoader, kept across passes
        self._subscribers: tuple[Callable[[BatchEvent], None], ...] = ()

    def __repr__(self) -> str:
        return (f"Loader({type(self.dataset).__name__} of {len(self.dataset):,} rows, "
                f"batch_size={self.batch_size}, shuffle={self.order!r}, num_workers={self.num_workers}"
                f" ({self.worker_type}), block_rows={self.block_rows:,} ({self.block_rows_from}))")

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass (a resumed position in that epoch is kept)."""
        self.sampler.set_epoch(epoch)
        if epoch != self._epoch:
            self._position = 0
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        self._end_pass()
        keep_batch_memory()
        self.sampler.set_epoch(self._epoch)
        batches = iter(self.sampler)  # after the resumed batches, if load_state_dict was used
        if hasattr(self.dataset, "plan_reads"):  # a streamed dataset fetches ahead in this order
            self.dataset.plan_reads(self.sampler.shard_plan(), 2 if self.order == "sequential"
                                    else self.sampler.window + 3)  # shards one window touches
        epoch, start = self._epoch, self.sampler.batches_done
        self._position = start
        keys = ((idx, epoch, k) for k, idx in enumerate(batches, start))
        fetch = Fetch(self.dataset, self.collate_fn, self.transform, self.seed, self._contiguous)
        spec = FetchSpec(fetch, self.num_workers, self.prefetch_factor, self._pin, self.timeout,
                         self.multiprocessing_context, self.worker_init_fn,
                         self.pin_memory_device, self.persistent_workers)
        if self.num_workers == 0:
            it: Pass = SyncPass(spec, keys, self._delivered, self._finish_epoch)
        elif self.worker_type == "thread":
            it = ThreadPass(spec, keys, self._delivered, self._finish_epoch)
        else:
            it = ProcessPass(spec, keys, self._delivered, self._finish_epoch, holder=self._workers)
        self._current = weakref.ref(it)
        return it

    def _delivered(self, rows: int, batch: Any, wait_s: float, since_last_s: float) -> None:
        stats = self.stats
        nbytes = batch_nbytes(batch)
        stats.batches += 1
        stats.samples += rows
        stats.bytes += nbytes
        stats.wait_s += wait_s
        stats.total_s += since_last_s
        self._position += 1
        if self._subscribers:  # the hot path pays one check when nobody watches
            event = BatchEvent(time.perf_counter(), rows, nbytes, wait_s, since_last_s)
            for fn in self._subscribers:
                fn(event)

    def subscribe(self, fn: Callable[[BatchEvent], None]) -> Callable[[], None]:
        """Call ``fn(event)`` with a :class:`~workbench.metrics.BatchEvent` for every delivered
        batch, on the consumer's thread (keep it cheap); returns the function that unsubscribes."""
        self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            self._subscribers = tuple(f for f in self._subscribers if f is not fn)

        return unsubscribe

    def _pass(self) -> Pass | None:
        """The pass in progress, if any (held weakly: a dropped iterator stops its readers)."""
        ref = getattr(self, "_current", None)
        return ref() if ref is not None else None

    def read_ahead(self) -> int:
        """Batches read ahead of the consumer right now (0 in-process or between passes)."""
        it = self._pass()
        return it.in_flight() if it is not None else 0

    def worker_pids(self) -> dict[int, str]:
        """``{pid: name}`` of the worker processes reading for this loader now, or kept between
        passes (``persistent_workers``); none for threads."""
        pids = getattr(self._pass(), "pids", lambda: [])()
        if not pids:
            dl = getattr(self, "_workers", {}).get("dl")
            pids = live_pids(getattr(dl, "_iterator", None))
        return {pid: f"loader worker {i}" for i, pid in enumerate(pids)}

    def _finish_epoch(self) -> None:
        self._epoch, self._position = self._epoch + 1, 0
        self.sampler.set_epoch(self._epoch)  # a whole epoch again after an elastic resume

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the epoch and the batches delivered in it (not those read ahead)."""
        return {**self.sampler.state_dict(self._position), "epoch": self._epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the next pass starts at its epoch, after its delivered batches."""
        self._end_pass()
        self.sampler.load_state_dict(state)  # raises IncompatibleResumeError if settings changed
        self._epoch, self._position = self.sampler.epoch, self.sampler.batches_done

    def _end_pass(self) -> None:
        it = self._pass()
        self._current = None
        if it is not None:
            it.close()

    def close(self) -> None:
        """Stop the reader threads or worker processes of the pass in progress, if any, and
        persistent workers."""
        self._end_pass()
        dl = getattr(self, "_workers", {}).pop("dl", None)
        it = getattr(dl, "_iterator", None)
        if it is not None:
            shutdown_workers(it)

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def check_dataset(dataset: Any) -> None:
    """A map-style dataset (``__len__`` and ``__getitem__``) or a clear error naming the way out."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        raise InvalidInputError(
            f"{type(dataset).__name__} is an IterableDataset: it has no random access, so it cannot "
            "be shuffled, split across ranks or resumed by position. Iterate it with "
            "torch.utils.data.DataLoader(dataset, batch_size=...), or convert the stream once: "
            "wb.convert(iter(dataset), 'data.store'), then wb.loader(wb.open_dataset('data.store'))")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise InvalidInputError(
            f"a {type(dataset).__name__} is not a map-style dataset: give it __len__ and "
            "__getitem__ (as torch.utils.data.Dataset subclasses do), or open your data with "
            "wb.open_dataset(...)")


def loader(dataset: Any, **options: Any) -> Loader:
    """Batches of ``dataset`` (see :class:`Loader` for options).

    >>> ds = wb.open_dataset({"x": np.zeros((4096, 8), "float32"), "y": np.arange(4096)})
    >>> dl = loader(ds, batch_size=1024, shuffle="full", seed=1, num_workers=2)  # 2 read-ahead threads
    >>> sorted(torch.cat([batch["y"] for batch in dl]).tolist()) == list(range(4096))  # each row once
    True
    """
    return Loader(dataset, **options)
