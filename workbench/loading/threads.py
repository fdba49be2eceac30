"""Read-ahead threads: :class:`ThreadPass` reads batches on ``num_workers`` threads, in order,
``prefetch_factor`` each ahead of the consumer, each timing its stages where it runs; and their
ending at interpreter exit."""

from __future__ import annotations

import atexit
import collections
import queue
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from time import perf_counter
from typing import Any

from ..errors import WorkerError
from .batches import pin as _pin
from .fetch import Fetch, read_error, timeout_error
from .passes import FetchSpec, Pass

__all__: list[str] = []

_JOIN_S = 1.0  # closing never waits longer than this on a read in progress

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
    tid = threading.get_native_id()
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
                if timed:  # (batch, when its stages ended, this thread): pinning is hand-over
                    got = fetch.timed(*key)
                    fut.set_result((_pin(got[0]) if pin else got[0], *got[1:], tid))
                else:
                    batch = fetch(*key)
                    fut.set_result(_pin(batch) if pin else batch)
            except BaseException as exc:  # the consumer re-raises it as WorkerError
                fut.set_exception(exc)
            # a batch the consumer dropped is freed here, not at exit
            item = fut = batch = got = None
    finally:
        _READERS.discard(threading.current_thread())


class ThreadPass(Pass):
    hands_over = True

    def __init__(self, spec: FetchSpec, *args: Any) -> None:
        super().__init__(spec, *args)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        # (future, key, when choosing its rows began, seconds it took) in delivery order
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
            key = self._next_key(None)
            sample = perf_counter() - t0 if timed else 0.0
            if key is None:
                return
            fut: Future = Future()
            self._tasks.put((fut, key))
            self._pending.append((fut, key, t0, sample))

    def _fetch(self) -> tuple[Any, int]:
        self._fill()
        if not self._pending:
            raise StopIteration
        fut, key, chosen, sample = self._pending.popleft()
        timeout = self._spec.timeout
        try:
            if not self._timed:
                return fut.result(timeout=timeout), len(key[0])
            batch, t0, t1, t2, t3, tid = fut.result(timeout=timeout)
            self._times = (sample, t1 - t0, t3 - t2, t2 - t1)
            self._span = (key[1], key[2], chosen, t0, self._pid, tid)
            self._ready_at = t3
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
