"""How batches are fetched: in the caller, on read-ahead threads, or in DataLoader worker
processes; and how failures become named errors.

A pass gets a frozen :class:`FetchSpec` and reports each delivered batch through callbacks;
it never sees the :class:`~workbench.loading.Loader` that made it.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.utils.data

from ._batch import keep_batch_memory
from ._batch import pin as _pin
from .datasets.base import BaseDataset
from .errors import LoaderTimeoutError, WorkerError

_JOIN_S = 1.0  # closing never waits longer than this on a read in progress


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
    keep_batch_memory()


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


@dataclass(frozen=True)
class FetchSpec:
    """What one pass needs to know; fixed for the pass."""

    dataset: Any
    num_workers: int
    prefetch_factor: int
    pin: bool
    timeout: float | None
    contiguous: bool  # every batch is one ascending run (sequential order on one rank)
    multiprocessing_context: Any = None


# (rows, batch, seconds the consumer waited, seconds since the previous batch)
OnBatch = Callable[[int, Any, float, float], None]


class Pass:
    """One pass over an epoch; subclasses implement ``_fetch`` and ``close``."""

    def __init__(self, spec: FetchSpec, batches: Iterator[np.ndarray], on_batch: OnBatch,
                 on_end: Callable[[], None]) -> None:
        self._spec, self._batches, self._done = spec, batches, False
        self._on_batch, self._on_end = on_batch, on_end
        self._last = time.perf_counter()

    def __iter__(self) -> Pass:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        start = time.perf_counter()
        try:
            batch, rows = self._fetch()
        except StopIteration:
            self.close()
            self._on_end()
            raise
        except BaseException:
            self.close(force=True)
            raise
        now = time.perf_counter()
        self._on_batch(rows, batch, now - start, now - self._last)
        self._last = now
        return batch

    def _fetch(self) -> tuple[Any, int]:
        raise NotImplementedError

    def close(self, force: bool = False) -> None:
        self._done = True

    def __del__(self) -> None:
        self.close(force=True)


class SyncPass(Pass):
    def _fetch(self) -> tuple[Any, int]:
        idx, spec = next(self._batches), self._spec
        try:
            batch = spec.dataset.__getitems__(_indices(spec.dataset, idx, spec.contiguous))
        except Exception as exc:
            raise _read_error(exc, idx, "in the main process") from exc
        return (_pin(batch) if spec.pin else batch), len(idx)


class ThreadPass(Pass):
    def __init__(self, spec: FetchSpec, *args: Any) -> None:
        super().__init__(spec, *args)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending: collections.deque = collections.deque()  # (future, idx) in delivery order
        self._depth = spec.num_workers * spec.prefetch_factor
        self._threads = [
            threading.Thread(target=_read_loop, name=f"workbench-loader-{i}", daemon=True,
                             args=(spec.dataset, self._tasks, self._stop, spec.pin, spec.contiguous))
            for i in range(spec.num_workers)
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
        timeout = self._spec.timeout
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


class ProcessPass(Pass):
    def __init__(self, spec: FetchSpec, batches: Iterator[np.ndarray], *args: Any) -> None:
        super().__init__(spec, batches, *args)
        self._sent: collections.deque = collections.deque()
        dl = torch.utils.data.DataLoader(
            spec.dataset, batch_sampler=_index_lists(batches, self._sent),
            collate_fn=_identity, num_workers=spec.num_workers, pin_memory=spec.pin,
            prefetch_factor=spec.prefetch_factor, timeout=spec.timeout or 0,
            persistent_workers=False, multiprocessing_context=spec.multiprocessing_context,
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
                raise _timeout(self._head(), self._spec.timeout, "a worker process") from exc
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
