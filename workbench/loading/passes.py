"""How batches are fetched: in the caller or on read-ahead threads (``workers/``: in DataLoader
worker processes); and how failures become named errors.

A pass gets a frozen :class:`FetchSpec` and reports each delivered batch through callbacks
(``on_batch``, ``on_end``); it is asked how many batches it has in flight and which worker
processes read for it, and stopped through one method, :meth:`Pass.close`. It never sees the
:class:`~workbench.loading.loaders.Loader` that made it (``epochs`` starts passes for it).
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Iterator

import numpy as np

from ..errors import WorkerError
from .batches import pin as _pin
from .fetch import Fetch, read_error, timeout_error

__all__: list[str] = []

_JOIN_S = 1.0  # closing never waits longer than this on a read in progress
# time the stages of each batch (read when a pass starts; 0: off, to measure what timing costs)
TIMED = os.environ.get("WB_STAGE_TIMES", "1") != "0"

# Reader threads are daemons so a hung read never blocks exit, but one still reading while the
# interpreter finalizes can free a torch tensor off the GIL and abort the process (std::terminate in
# torch's from_numpy deleter). At exit every pass is stopped and its readers joined first.
_PASSES: weakref.WeakSet = weakref.WeakSet()
_READERS: set[threading.Thread] = set()


@atexit.register
def _stop_readers() -> None:
    for p in list(_PASSES):
        p.close(force=True)
    deadline = time.monotonic() + _JOIN_S
    for t in list(_READERS):
        t.join(max(0.0, deadline - time.monotonic()))


def _read_loop(
    fetch: Fetch,
    tasks: queue.SimpleQueue,
    stop: threading.Event,
    pin: bool,
    init: Callable[[int], None] | None,
    worker_id: int,
    timed: bool = False,
) -> None:
    # Holds no reference to the iterator, so dropping the iterator lets GC stop the threads.
    try:
        if init is not None:
            init(worker_id)
        while True:
            item = tasks.get()
            if item is None or stop.is_set():
                return
            fut, key = item
            batch = got = None
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                if timed:  # (batch, read, transform, collate seconds)
                    got = fetch.timed(*key)
                    fut.set_result((_pin(got[0]), *got[1:]) if pin else got)
                else:
                    batch = fetch(*key)
                    fut.set_result(_pin(batch) if pin else batch)
            except BaseException as exc:  # the consumer re-raises it as WorkerError
                fut.set_exception(exc)
            # a batch the consumer dropped is freed here, not at exit
            item = fut = batch = got = None
    finally:
        _READERS.discard(threading.current_thread())


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


# (rows, batch, seconds the consumer waited, seconds since the previous batch, the producer's
# seconds in monitoring.stages.PRODUCER's order: as many as were timed, () for none; None: off)
OnBatch = Callable[[int, Any, float, float, "tuple[float, ...] | None"], None]


class Pass:
    """One pass over an epoch; subclasses implement ``_fetch`` and ``close``."""

    def __init__(
        self, spec: FetchSpec, batches: Iterator[Key], on_batch: OnBatch, on_end: Callable[[], None]
    ) -> None:
        self._spec, self._batches, self._done = spec, batches, False
        self._on_batch, self._on_end = on_batch, on_end
        self._began = self._last = time.perf_counter()
        self._timed = TIMED  # a subclass that times its stages sets _times per batch
        self._times: tuple[float, ...] | None = () if TIMED else None

    def __iter__(self) -> Pass:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._began = start = time.perf_counter()
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
        self._on_batch(rows, batch, now - start, now - self._last, self._times)
        self._last = now
        return batch

    def _fetch(self) -> tuple[Any, int]:
        raise NotImplementedError

    def in_flight(self) -> int:
        """Batches asked for and not yet delivered (the read-ahead depth now)."""
        return 0

    def pids(self) -> list[int]:
        """The worker processes reading for this pass that are alive (none in-process)."""
        return []

    def close(self, force: bool = False) -> None:
        """Stop: no more batches, read-ahead dropped, readers told to end (``force``: now,
        without waiting on a read in progress)."""
        self._done = True

    def __del__(self) -> None:
        self.close(force=True)


class SyncPass(Pass):
    """Batches read in the caller's thread; where our dataset can, the next batch's gather runs
    on the compiled gather's helper threads while the caller uses this one (no Python thread,
    no GIL hand-off: full shuffle of 1 KiB rows, 2 cores: bs 256 105 -> 93 us a batch, bs 1024
    343 -> 274, against the compiled random-gather limit's 69 and 242)."""

    _ahead: tuple[Key, Any] | None = None  # the next batch, and its gather if one was started

    def _fetch(self) -> tuple[Any, int]:
        spec, fetch, timed = self._spec, self._spec.fetch, self._timed
        t0, sample = self._began, 0.0  # a batch read ahead: its rows were chosen (timed) before
        if self._ahead is None:
            key, started = next(self._batches), None
            if timed:
                t1 = perf_counter()
                t0, sample = t1, t1 - t0
        else:
            (key, started), self._ahead = self._ahead, None
        try:
            if timed:
                batch, read, transform, collate = fetch.timed(*key, started, t0)
            else:
                batch = fetch(*key) if started is None else fetch.finish(started, *key)
        except WorkerError:
            raise
        except Exception as exc:
            raise read_error(exc, key[0], "in the main process", key) from exc
        if fetch.starts:  # sequential batches are views: nothing to read ahead
            nxt = next(self._batches, None)
            if timed:  # choosing the next rows counts here; starting their read, in the wait
                sample += perf_counter() - (t0 + read + transform + collate)
            if nxt is not None:
                self._ahead = (nxt, fetch.start(nxt[0]))
        if timed:
            self._times = (sample, read, transform, collate)
        return (_pin(batch) if spec.pin else batch), len(key[0])

    def in_flight(self) -> int:
        return int(self._ahead is not None and self._ahead[1] is not None)

    def close(self, force: bool = False) -> None:
        super().close(force)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[1] is not None:
            try:  # the helpers must not write into a batch nobody will read past this point
                self._spec.fetch.finish(ahead[1], *ahead[0])
            except Exception:
                pass


class ThreadPass(Pass):
    def __init__(self, spec: FetchSpec, *args: Any) -> None:
        super().__init__(spec, *args)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # (future, key, seconds choosing its rows took) in delivery order
        self._pending: collections.deque = collections.deque()
        self._depth = spec.num_workers * spec.prefetch_factor
        self._threads = [
            threading.Thread(
                target=_read_loop,
                name=f"workbench-loader-{i}",
                daemon=True,
                args=(
                    spec.fetch,
                    self._tasks,
                    self._stop,
                    spec.pin,
                    spec.worker_init_fn,
                    i,
                    self._timed,
                ),
            )
            for i in range(spec.num_workers)
        ]
        _PASSES.add(self)
        for t in self._threads:
            _READERS.add(t)
            t.start()
        self._fill()

    def in_flight(self) -> int:
        return len(self._pending)

    def _fill(self) -> None:
        timed = self._timed
        while len(self._pending) < self._depth:
            t0 = perf_counter() if timed else 0.0
            key = next(self._batches, None)
            sample = perf_counter() - t0 if timed else 0.0
            if key is None:
                return
            fut: Future = Future()
            self._tasks.put((fut, key))
            self._pending.append((fut, key, sample))

    def _fetch(self) -> tuple[Any, int]:
        self._fill()
        if not self._pending:
            raise StopIteration
        fut, key, sample = self._pending.popleft()
        timeout = self._spec.timeout
        try:
            if not self._timed:
                return fut.result(timeout=timeout), len(key[0])
            batch, read, transform, collate = fut.result(timeout=timeout)
            self._times = (sample, read, transform, collate)
            return batch, len(key[0])
        except FutureTimeout:
            raise timeout_error(key[0], timeout, "a loader thread") from None
        except WorkerError:
            raise
        except Exception as exc:
            raise read_error(exc, key[0], "in a loader thread", key) from exc

    def close(self, force: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._stop.set()
        for fut, *_ in self._pending:
            fut.cancel()
        self._pending.clear()
        for _ in self._threads:
            self._tasks.put(None)
        if not force:  # a hung read cannot be joined; its daemon thread exits once the read returns
            deadline = time.monotonic() + _JOIN_S
            for t in self._threads:
                t.join(max(0.0, deadline - time.monotonic()))
