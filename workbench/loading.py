"""Feed batches from a workbench dataset: one ``__getitems__`` call per batch, read ahead in threads
(default) or in torch DataLoader worker processes, in order, resumable mid-epoch, with live stats.

>>> dl = loader(open_dataset("data/train"), batch_size=1024, shuffle="block")
>>> for batch in dl: ...
"""

from __future__ import annotations

import collections
import ctypes
import queue
import sys
import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.utils.data

from .errors import InvalidInputError, LoaderTimeoutError, WorkerError
from .readers.base import BaseDataset
from .sampling import ORDERS, BatchSampler

__all__ = ["Loader", "LoaderStats", "loader"]

# Why (1 GiB memmap, 2-core box): processes ran at 11-77 % of threads (each batch copied via shm).
DEFAULT_WORKER_TYPE = "thread"
# Threads hand each batch across the GIL (~150 us on 2 cores): for small batches that costs more
# than it overlaps (2 GiB store, bs=256: block 1.8M rows/s in-process vs 0.7-0.8M with 1-2
# threads); from ~1 MiB per batch two threads win (bs=4096: 4.0M vs 3.7M). None picks by that.
AUTO_THREADS_FROM_BYTES = 1 << 20
AUTO_THREADS = 2
_JOIN_S = 1.0  # closing never waits longer than this on a read in progress
_MALLOC_TUNED = False


def _keep_batch_memory() -> None:
    """Serve batch-sized buffers from the malloc heap instead of a fresh mmap per batch (glibc).

    Why: glibc mmaps (and on free unmaps) each allocation above its threshold, so every gathered
    batch page-faults its buffer in again (bs=256 full shuffle, in-process: 225 -> 116 us/batch).
    Process-wide; keeps at most ~64 MiB of freed heap instead of returning it to the OS at once.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (32 MiB: glibc's maximum)
        libc.mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc (musl, ...): keep its defaults


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


def _map(obj: Any, fn: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(v, fn) for v in obj)
    return obj


def _nbytes(batch: Any) -> int:
    if type(batch) is dict and all(type(t) is torch.Tensor and t.layout == torch.strided
                                   for t in batch.values()):
        return sum(t.nbytes for t in batch.values())  # the common case, without _map (~10 us)
    sizes: list[int] = []

    def size(t: torch.Tensor) -> None:
        parts = {torch.sparse_coo: lambda: (t._indices(), t._values()),
                 torch.sparse_csr: lambda: (t.crow_indices(), t.col_indices(), t.values())}
        for p in parts.get(t.layout, lambda: (t,))():
            sizes.append(p.element_size() * p.nelement())

    _map(batch, size)
    return sum(sizes)


def _pin(batch: Any) -> Any:
    return _map(batch, lambda t: t.pin_memory())


def _describe(idx: np.ndarray) -> str:
    rows = idx.tolist()
    shown = rows if len(rows) <= 8 else rows[:4] + ["..."] + rows[-3:]
    return f"rows [{', '.join(map(str, shown))}] ({len(rows)} rows)"


def _read_error(exc: BaseException, idx: np.ndarray, where: str) -> WorkerError:
    lines = str(exc).strip().splitlines()
    # torch re-raises worker errors as "Caught X in DataLoader worker ... Traceback ... X: msg"
    original = lines[-1] if lines and "Traceback" in str(exc) else f"{type(exc).__name__}: {exc}"
    return WorkerError(
        f"reading {_describe(idx)} failed {where}: {original}. Fix the dataset, or run with "
        "num_workers=0 to debug the read in the main process"
    )


def _timeout(idx: np.ndarray, timeout: float | None, where: str) -> LoaderTimeoutError:
    return LoaderTimeoutError(
        f"reading {_describe(idx)} took longer than timeout={timeout}s in {where}; the storage is "
        "hung or far too slow: check it, or pass a larger timeout=")


def _identity(batch: Any) -> Any:
    return batch  # __getitems__ already returns a collated batch


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # 2 cores: torch threads in workers fight the main process for CPU
    _keep_batch_memory()


def _indices(dataset: Any, idx: np.ndarray, contiguous: bool = False) -> Any:
    # our readers take the sampler's int64 array as is (a list costs ~15 us/batch to build and
    # re-check), or a range when every batch is one run (their zero-copy path, no numpy checks);
    # foreign datasets get the list[int] of the Dataset protocol
    if not isinstance(dataset, BaseDataset):
        return idx.tolist()
    return range(int(idx[0]), int(idx[-1]) + 1) if contiguous and len(idx) else idx


def _index_lists(batches: Iterator[np.ndarray], sent: collections.deque) -> Iterator[list[int]]:
    for idx in batches:
        sent.append(idx)  # sent to the workers and not yet delivered, oldest first
        yield idx.tolist()


def _read_loop(dataset: Any, tasks: queue.SimpleQueue, stop: threading.Event, pin: bool,
               contiguous: bool) -> None:
    # Holds no reference to the iterator, so dropping the iterator lets GC stop the threads.
    while True:
        item = tasks.get()
        if item is None or stop.is_set():
            return
        fut, idx = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            batch = dataset.__getitems__(_indices(dataset, idx, contiguous))
            fut.set_result(_pin(batch) if pin else batch)
        except BaseException as exc:  # the consumer re-raises it as WorkerError
            fut.set_exception(exc)


class _Iter:
    """One pass over an epoch; subclasses implement ``_fetch`` and ``close``."""

    def __init__(self, owner: Loader, batches: Iterator[np.ndarray]) -> None:
        self._owner, self._batches, self._done = owner, batches, False
        self._last = time.perf_counter()

    def __iter__(self) -> _Iter:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        start = time.perf_counter()
        try:
            batch, rows = self._fetch()
        except StopIteration:
            self.close()
            self._owner._finish_epoch()
            raise
        except BaseException:
            self.close(force=True)
            raise
        now = time.perf_counter()
        stats = self._owner.stats
        stats.batches += 1
        stats.samples += rows
        stats.bytes += _nbytes(batch)
        stats.wait_s += now - start
        stats.total_s += now - self._last
        self._last = now
        self._owner._position += 1
        return batch

    def _fetch(self) -> tuple[Any, int]:
        raise NotImplementedError

    def close(self, force: bool = False) -> None:
        self._done = True

    def __del__(self) -> None:
        self.close(force=True)


class _SyncIter(_Iter):
    def _fetch(self) -> tuple[Any, int]:
        idx = next(self._batches)
        try:
            batch = self._owner.dataset.__getitems__(
                _indices(self._owner.dataset, idx, self._owner._contiguous))
        except Exception as exc:
            raise _read_error(exc, idx, "in the main process") from exc
        return (_pin(batch) if self._owner._pin else batch), len(idx)


class _ThreadIter(_Iter):
    def __init__(self, owner: Loader, batches: Iterator[np.ndarray]) -> None:
        super().__init__(owner, batches)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending: collections.deque = collections.deque()  # (future, idx) in delivery order
        self._depth = owner.num_workers * owner.prefetch_factor
        self._threads = [
            threading.Thread(target=_read_loop, name=f"workbench-loader-{i}", daemon=True,
                             args=(owner.dataset, self._tasks, self._stop, owner._pin,
                                   owner._contiguous))
            for i in range(owner.num_workers)
        ]
        for t in self._threads:
            t.start()
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._depth:
            idx = next(self._batches, None)
            if idx is None:
                return
            fut: Future = Future()
            self._tasks.put((fut, idx))
            self._pending.append((fut, idx))

    def _fetch(self) -> tuple[Any, int]:
        self._fill()
        if not self._pending:
            raise StopIteration
        fut, idx = self._pending.popleft()
        timeout = self._owner.timeout
        try:
            return fut.result(timeout=timeout), len(idx)
        except FutureTimeout:
            raise _timeout(idx, timeout, "a loader thread") from None
        except Exception as exc:
            raise _read_error(exc, idx, "in a loader thread") from exc

    def close(self, force: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._stop.set()
        for fut, _ in self._pending:
            fut.cancel()
        self._pending.clear()
        for _ in self._threads:
            self._tasks.put(None)
        if not force:  # a hung read cannot be joined; its daemon thread exits once the read returns
            deadline = time.monotonic() + _JOIN_S
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))


class _ProcessIter(_Iter):
    def __init__(self, owner: Loader, batches: Iterator[np.ndarray]) -> None:
        super().__init__(owner, batches)
        self._sent: collections.deque = collections.deque()
        dl = torch.utils.data.DataLoader(
            owner.dataset, batch_sampler=_index_lists(batches, self._sent),
            collate_fn=_identity, num_workers=owner.num_workers, pin_memory=owner._pin,
            prefetch_factor=owner.prefetch_factor, timeout=owner.timeout or 0,
            persistent_workers=False, multiprocessing_context=owner.multiprocessing_context,
            worker_init_fn=_worker_init,
        )
        self._it: Any = iter(dl)

    def _fetch(self) -> tuple[Any, int]:
        try:
            batch = next(self._it)
        except StopIteration:
            raise
        except Exception as exc:
            msg = str(exc) if isinstance(exc, RuntimeError) else ""
            if msg.startswith("DataLoader timed out"):
                raise _timeout(self._head(), self._owner.timeout, "a worker process") from exc
            if "DataLoader worker (pid" in msg:  # torch noticed a dead worker (SIGCHLD or its poll)
                raise LoaderTimeoutError(
                    f"a loader worker process died ({msg}); something killed it, often the "
                    "out-of-memory killer: use a smaller batch_size, fewer workers or "
                    "worker_type='thread'") from exc
            raise _read_error(exc, self._head(), "in a worker process") from exc
        return batch, len(self._sent.popleft())

    def _head(self) -> np.ndarray:
        # torch delivers in order, so the batch that failed is the oldest one not yet delivered
        return self._sent[0] if self._sent else np.empty(0, np.int64)

    def close(self, force: bool = False) -> None:
        self._done = True
        it, self._it = getattr(self, "_it", None), None
        if it is None:
            return
        if force:  # after a hang or a death, don't wait out torch's 5 s join per worker
            for w in getattr(it, "_workers", ()):
                if w.is_alive():
                    w.terminate()
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


class Loader:
    """Iterable of batches (``dict[str, Tensor]``) over ``dataset``; build it with :func:`loader`.

    Each full pass advances the epoch, so consecutive ``for`` loops see new orders; ``set_epoch``
    picks one explicitly. ``state_dict`` records batches delivered (not read ahead) in the epoch.

    ``num_workers=None`` (default) reads in the caller's thread when a batch is under 1 MiB and
    with 2 read-ahead threads above that (measured: see ``AUTO_THREADS_FROM_BYTES``);
    ``worker_type="process"`` uses torch DataLoader worker processes, which copy every batch
    through shared memory and are the slowest option for memory-mapped data.
    """

    def __init__(self, dataset: Any, *, batch_size: int = 256, shuffle: str | bool = "block",
                 seed: int = 0, num_workers: int | None = None,
                 worker_type: str = DEFAULT_WORKER_TYPE, pin_memory: bool = False,
                 prefetch_factor: int = 2, timeout: float | None = 30.0, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, window: int = 8,
                 multiprocessing_context: Any = None) -> None:
        order = ("block" if shuffle else "sequential") if isinstance(shuffle, bool) else shuffle
        if order not in ORDERS:
            raise InvalidInputError(f"shuffle={shuffle!r} is not understood; use one of {ORDERS}, "
                                    "True (block) or False (sequential)")
        if worker_type not in ("thread", "process"):
            raise InvalidInputError(f"worker_type={worker_type!r}; use 'thread' or 'process'")
        if num_workers is None:
            batch_bytes = batch_size * int(getattr(dataset, "row_nbytes", 0))
            big = worker_type == "process" or batch_bytes >= AUTO_THREADS_FROM_BYTES
            num_workers = AUTO_THREADS if big else 0
        if num_workers < 0 or prefetch_factor < 1:
            raise InvalidInputError(
                f"num_workers={num_workers}, prefetch_factor={prefetch_factor}; use "
                "num_workers >= 0 and prefetch_factor >= 1")
        self.dataset, self.order, self.seed, self.batch_size = dataset, order, seed, batch_size
        self.num_workers, self.worker_type = num_workers, worker_type
        self.prefetch_factor = prefetch_factor
        self.timeout = timeout if timeout and timeout > 0 else None
        self.multiprocessing_context = multiprocessing_context
        self._pin = bool(pin_memory) and torch.cuda.is_available()  # no CUDA: nothing to pin for
        self.sampler = BatchSampler(len(dataset), batch_size, order=order, seed=seed,
                                    block_rows=dataset.block_rows, window=window, rank=rank,
                                    world_size=world_size, drop_last=drop_last)
        # sequential on one rank: every batch is one ascending run (padding only wraps with W > 1)
        self._contiguous = order == "sequential" and world_size == 1
        self.stats = LoaderStats()
        self._epoch = self._position = 0
        self._current: weakref.ref | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass (a resumed position in that epoch is kept)."""
        self.sampler.set_epoch(epoch)
        if epoch != self._epoch:
            self._position = 0
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        self.close()
        _keep_batch_memory()
        self.sampler.set_epoch(self._epoch)
        batches = iter(self.sampler)  # after the resumed batches, if load_state_dict was used
        self._position = self.sampler.batches_done
        if self.num_workers == 0:
            it: _Iter = _SyncIter(self, batches)
        elif self.worker_type == "thread":
            it = _ThreadIter(self, batches)
        else:
            it = _ProcessIter(self, batches)
        self._current = weakref.ref(it)
        return it

    def _finish_epoch(self) -> None:
        self._epoch, self._position = self._epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the epoch and the batches delivered in it (not those read ahead)."""
        return {**self.sampler.state_dict(), "epoch": self._epoch, "batches_done": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the next pass starts at its epoch, after its delivered batches."""
        self.close()
        self.sampler.load_state_dict(state)  # raises IncompatibleResumeError if settings changed
        self._epoch, self._position = self.sampler.epoch, self.sampler.batches_done

    def close(self) -> None:
        """Stop the reader threads or worker processes of the pass in progress, if any."""
        ref = getattr(self, "_current", None)
        it = ref() if ref is not None else None
        self._current = None
        if it is not None:
            it.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def loader(dataset: Any, **options: Any) -> Loader:
    """Batches of ``dataset`` (see :class:`Loader` for options).

    >>> for batch in loader(ds, batch_size=1024, shuffle="full", seed=1):
    ...     loss = model(batch["x"]).sum()
    """
    return Loader(dataset, **options)
