"""How batches are fetched: in the caller, on read-ahead threads, or in DataLoader worker
processes; and how failures become named errors.

A pass gets a frozen :class:`FetchSpec` and reports each delivered batch through callbacks;
it never sees the :class:`~workbench.loading.Loader` that made it.
"""

from __future__ import annotations

import collections
import functools
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
from ._fetch import Fetch, read_error, timeout_error
from .errors import LoaderTimeoutError, WorkerError

_JOIN_S = 1.0  # closing never waits longer than this on a read in progress


def _worker_init(worker_id: int, user_init: Callable[[int], None] | None = None) -> None:
    torch.set_num_threads(1)  # 2 cores: torch threads in workers fight the main process for CPU
    keep_batch_memory()
    if user_init is not None:
        user_init(worker_id)


class _FetchDataset(torch.utils.data.Dataset):
    """What worker processes read: ``__getitems__((idx, epoch, k))`` is one whole batch."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch

    def __getitems__(self, key: tuple[np.ndarray, int, int]) -> Any:
        return self.fetch(*key)


def _identity(batch: Any) -> Any:
    return batch  # the fetch already collated (and transformed) it


class _Feed:
    """A batch sampler torch can iterate again each epoch (persistent workers): each pass
    points it at its own batches and records what was sent, oldest first, for error messages."""

    def __init__(self) -> None:
        self.batches: Iterator[Key] = iter(())
        self.sent: collections.deque = collections.deque()

    def __iter__(self) -> Iterator[Key]:
        for key in self.batches:
            self.sent.append(key[0])
            yield key


def _read_loop(fetch: Fetch, tasks: queue.SimpleQueue, stop: threading.Event, pin: bool,
               init: Callable[[int], None] | None, worker_id: int) -> None:
    # Holds no reference to the iterator, so dropping the iterator lets GC stop the threads.
    if init is not None:
        init(worker_id)
    while True:
        item = tasks.get()
        if item is None or stop.is_set():
            return
        fut, key = item
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            batch = fetch(*key)
            fut.set_result(_pin(batch) if pin else batch)
        except BaseException as exc:  # the consumer re-raises it as WorkerError
            fut.set_exception(exc)


@dataclass(frozen=True)
class FetchSpec:
    """What one pass needs to know; fixed for the pass."""

    fetch: Fetch
    num_workers: int
    prefetch_factor: int
    pin: bool
    timeout: float | None
    multiprocessing_context: Any = None
    worker_init_fn: Callable[[int], None] | None = None
    pin_memory_device: str = ""
    persistent_workers: bool = False


Key = tuple[np.ndarray, int, int]  # a batch: its row indices, its epoch, its number in the epoch


# (rows, batch, seconds the consumer waited, seconds since the previous batch)
OnBatch = Callable[[int, Any, float, float], None]


class Pass:
    """One pass over an epoch; subclasses implement ``_fetch`` and ``close``."""

    def __init__(self, spec: FetchSpec, batches: Iterator[Key], on_batch: OnBatch,
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

    def in_flight(self) -> int:
        """Batches asked for and not yet delivered (the read-ahead depth now)."""
        return 0

    def close(self, force: bool = False) -> None:
        self._done = True

    def __del__(self) -> None:
        self.close(force=True)


class SyncPass(Pass):
    def _fetch(self) -> tuple[Any, int]:
        key, spec = next(self._batches), self._spec
        try:
            batch = spec.fetch(*key)
        except WorkerError:
            raise
        except Exception as exc:
            raise read_error(exc, key[0], "in the main process") from exc
        return (_pin(batch) if spec.pin else batch), len(key[0])


class ThreadPass(Pass):
    def __init__(self, spec: FetchSpec, *args: Any) -> None:
        super().__init__(spec, *args)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._pending: collections.deque = collections.deque()  # (future, idx) in delivery order
        self._depth = spec.num_workers * spec.prefetch_factor
        self._threads = [
            threading.Thread(target=_read_loop, name=f"workbench-loader-{i}", daemon=True,
                             args=(spec.fetch, self._tasks, self._stop, spec.pin,
                                   spec.worker_init_fn, i))
            for i in range(spec.num_workers)
        ]
        for t in self._threads:
            t.start()
        self._fill()

    def in_flight(self) -> int:
        return len(self._pending)

    def _fill(self) -> None:
        while len(self._pending) < self._depth:
            key = next(self._batches, None)
            if key is None:
                return
            fut: Future = Future()
            self._tasks.put((fut, key))
            self._pending.append((fut, key[0]))

    def _fetch(self) -> tuple[Any, int]:
        self._fill()
        if not self._pending:
            raise StopIteration
        fut, idx = self._pending.popleft()
        timeout = self._spec.timeout
        try:
            return fut.result(timeout=timeout), len(idx)
        except FutureTimeout:
            raise timeout_error(idx, timeout, "a loader thread") from None
        except WorkerError:
            raise
        except Exception as exc:
            raise read_error(exc, idx, "in a loader thread") from exc

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
    """Batches from torch DataLoader worker processes; with ``persistent_workers`` the
    DataLoader (and its workers) is kept in ``holder`` and reused by the next pass."""

    def __init__(self, spec: FetchSpec, batches: Iterator[Key], *args: Any,
                 holder: dict[str, Any] | None = None) -> None:
        super().__init__(spec, batches, *args)
        holder = holder if holder is not None else {}
        dl = holder.get("dl") if spec.persistent_workers and holder.get("spec") == spec else None
        if dl is None:
            stale = holder.pop("dl", None)  # kept workers built for other settings
            if stale is not None and getattr(stale, "_iterator", None) is not None:
                shutdown_workers(stale._iterator)
            feed = _Feed()
            dl = torch.utils.data.DataLoader(
                _FetchDataset(spec.fetch), batch_sampler=feed, collate_fn=_identity,
                num_workers=spec.num_workers, pin_memory=spec.pin,
                pin_memory_device=spec.pin_memory_device, prefetch_factor=spec.prefetch_factor,
                timeout=spec.timeout or 0, persistent_workers=spec.persistent_workers,
                multiprocessing_context=spec.multiprocessing_context,
                worker_init_fn=functools.partial(_worker_init, user_init=spec.worker_init_fn))
            holder["dl"], holder["spec"] = dl, spec
        self._feed: _Feed = dl.batch_sampler
        self._feed.batches, self._feed.sent = batches, collections.deque()
        self._persistent = spec.persistent_workers
        self._it: Any = iter(dl)

    def _fetch(self) -> tuple[Any, int]:
        try:
            batch = next(self._it)
        except StopIteration:
            raise
        except Exception as exc:
            msg = str(exc) if isinstance(exc, RuntimeError) else ""
            if msg.startswith("DataLoader timed out"):
                raise timeout_error(self._head(), self._spec.timeout, "a worker process") from exc
            if "DataLoader worker (pid" in msg:  # torch noticed a dead worker (SIGCHLD or its poll)
                raise LoaderTimeoutError(
                    f"a loader worker process died ({msg}); something killed it, often the "
                    "out-of-memory killer: use a smaller batch_size, fewer workers or "
                    "worker_type='thread'") from exc
            raise read_error(exc, self._head(), "in a worker process") from exc
        return batch, len(self._feed.sent.popleft())

    def in_flight(self) -> int:
        return len(self._feed.sent)

    def pids(self) -> list[int]:
        return live_pids(self._it)

    def _head(self) -> np.ndarray:
        # torch delivers in order, so the batch that failed is the oldest one not yet delivered
        return self._feed.sent[0] if self._feed.sent else np.empty(0, np.int64)

    def close(self, force: bool = False) -> None:
        self._done = True
        it, self._it = getattr(self, "_it", None), None
        if it is None or (self._persistent and not force):
            return  # persistent workers outlive the pass; Loader.close() shuts them down
        shutdown_workers(it, force)


def live_pids(it: Any) -> list[int]:
    """The worker processes of a torch DataLoader iterator that are alive."""
    return [w.pid for w in getattr(it, "_workers", ()) if w.is_alive()]


def shutdown_workers(it: Any, force: bool = False) -> None:
    """Stop a torch DataLoader iterator's worker processes (at once when ``force``)."""
    if force:  # after a hang or a death, don't wait out torch's 5 s join per worker
        for w in getattr(it, "_workers", ()):
            if w.is_alive():
                w.terminate()
    shutdown = getattr(it, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
