"""How batches are fetched: the pass every way of reading shares, and :class:`SyncPass`, in the
caller (``threads``: on read-ahead threads; ``workers/``: in DataLoader worker processes).

A pass gets a frozen :class:`FetchSpec` and reports each delivered batch through callbacks
(``on_batch``, ``on_end``), with its stage seconds and its span (where and when its stages ran,
for ``monitoring.trace``); it is asked how many batches it has in flight and which worker
processes read for it, and stopped through one method, :meth:`Pass.close`. It never sees the
:class:`~workbench.loading.loaders.Loader` that made it (``epochs`` starts passes for it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Iterator

import numpy as np

from ..errors import WorkerError
from .batches import pin as _pin
from .fetch import Fetch, read_error
from .workers.ranges import profiling, stage_range

__all__: list[str] = []

# time the stages of each batch (read when a pass starts; 0: off, to measure what timing costs)
TIMED = os.environ.get("WB_STAGE_TIMES", "1") != "0"


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

# A timed batch's span, for the trace: (delivered at, the consumer's thread, epoch, batch number,
# sampling began, reading began, the reader's pid, the reader's thread); perf_counter() seconds,
# one clock for every process of the machine (CLOCK_MONOTONIC).
Span = tuple[float, int, int, int, float, float, int, int]

# (rows, batch, seconds the consumer waited, seconds since the previous batch, the producer's
# seconds in monitoring.stages.PRODUCER's order up to handoff: () where none were timed, None:
# timing off; the batch's Span, or None)
OnBatch = Callable[[int, Any, float, float, "tuple[float, ...] | None", "Span | None"], None]


class Pass:
    """One pass over an epoch; subclasses implement ``_fetch`` and ``close``.

    A subclass that times its stages sets, per batch, ``_times`` (sample, read, transform,
    collate seconds), ``_span`` (epoch, batch number, sampling began, reading began, reader pid,
    reader thread) and ``_ready_at`` (when the batch was ready to hand over); the hand-over is the
    time from then (or from the consumer's asking, if later) to the consumer holding it.
    """

    hands_over = False  # the batch comes from other threads: the consumer's take is a handoff

    def __init__(
        self, spec: FetchSpec, batches: Iterator[Key], on_batch: OnBatch, on_end: Callable[[], None]
    ) -> None:
        self._spec, self._batches, self._done = spec, batches, False
        self._on_batch, self._on_end = on_batch, on_end
        self._began = self._last = perf_counter()
        self._timed = TIMED
        self._times: tuple[float, ...] | None = () if TIMED else None
        self._span: tuple[int, int, float, float, int, int] = (0, 0, 0.0, 0.0, 0, 0)
        self._ready_at = 0.0
        self._ranged = False  # a profiler runs: the stages open their ranges (this batch)
        self._pid, self._tid = os.getpid(), threading.get_native_id()  # the consumer's

    def __iter__(self) -> Pass:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        self._began = start = perf_counter()
        self._ranged = ranged = profiling()  # once a batch: no range costs without a profiler
        try:
            if ranged and self.hands_over:
                with stage_range("workbench.handoff"):
                    batch, rows = self._fetch()
            else:
                batch, rows = self._fetch()
        except StopIteration:
            self.close()
            self._on_end()
            raise
        except BaseException:
            self.close(force=True)
            raise
        now = perf_counter()
        times = self._times
        if times:
            ready = self._ready_at
            times = (*times, now - (ready if ready > start else start))
            span: Span | None = (now, self._tid, *self._span)
        else:
            span = None
        self._on_batch(rows, batch, now - start, now - self._last, times, span)
        self._last = now
        return batch

    def _fetch(self) -> tuple[Any, int]:
        raise NotImplementedError

    def _next_key(self, *default: None) -> Any:
        """The sampler's next batch (``default`` at the end, else StopIteration)."""
        if self._ranged:
            with stage_range("workbench.sample"):
                return next(self._batches, *default)
        return next(self._batches, *default)

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

    # the next batch, its gather if one was started, and when and how long choosing it took
    _ahead: tuple[Key, Any, float, float] | None = None

    def _fetch(self) -> tuple[Any, int]:
        spec, fetch, timed = self._spec, self._spec.fetch, self._timed
        t0 = self._began
        if self._ahead is None:
            key, started = self._next_key(), None
            if timed:
                t1 = perf_counter()
                chosen, sample, t0 = t0, t1 - t0, t1
        else:  # read ahead: its rows were chosen (and timed) before
            (key, started, chosen, sample), self._ahead = self._ahead, None
        try:
            if timed:
                batch, t0, t1, t2, t3 = fetch.timed(*key, started, t0)
            else:
                batch = fetch(*key) if started is None else fetch.finish(started, *key)
        except WorkerError:
            raise
        except Exception as exc:
            raise read_error(exc, key[0], "in the main process", key) from exc
        ready = t3 if timed else 0.0
        if fetch.starts:  # sequential batches are views: nothing to read ahead
            nxt = self._next_key(None)
            if nxt is not None:  # choosing its rows counts for it; starting their read, here
                chose = ready
                ready = perf_counter() if timed else 0.0
                self._ahead = (nxt, fetch.start(nxt[0]), chose, ready - chose)
        if timed:
            self._times = (sample, t1 - t0, t3 - t2, t2 - t1)
            self._span = (key[1], key[2], chosen, t0, self._pid, self._tid)
            self._ready_at = ready
        if spec.pin:
            if self._ranged:
                with stage_range("workbench.handoff"):
                    return _pin(batch), len(key[0])
            return _pin(batch), len(key[0])
        return batch, len(key[0])

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
