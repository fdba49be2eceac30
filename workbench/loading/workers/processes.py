"""Batches from worker processes: :class:`ProcessPass`, over the DataLoader ``pool`` starts (or
the one it kept), each batch's stages timed in the worker that read it and sent with the batch
(``requests.Timed``); on threads instead where /dev/shm has no room for the slots."""

from __future__ import annotations

import collections
import itertools
from time import perf_counter
from typing import Any, Iterator

import numpy as np

from ...errors import LoaderTimeoutError
from ..batches import pin as _pin
from ..fetch import read_error, timeout_error
from ..passes import FetchSpec, Key, Pass, Span
from ..threads import ThreadPass
from . import shm
from .pool import KeptWorkers, deaths, live_pids, shutdown_workers, worker_loader
from .requests import Feed, InSlot, Timed

__all__: list[str] = []


class ProcessPass(Pass):
    """Batches from torch DataLoader worker processes; with ``persistent_workers`` the
    DataLoader (and its workers) is kept in ``kept`` and reused by the next pass."""

    hands_over = True

    def __init__(
        self, spec: FetchSpec, batches: Iterator[Key], *args: Any, kept: KeptWorkers | None = None
    ) -> None:
        super().__init__(spec, batches, *args)
        kept = kept if kept is not None else KeptWorkers()
        self._threads: Pass | None = None  # /dev/shm too small: the batches are read on these
        self._kept = kept
        dl = kept.dl if spec.persistent_workers and kept.spec == spec else None
        first = next(batches, None)  # its size sets how many batches a request carries
        if first is not None:
            batches = itertools.chain([first], batches)
        fetch = spec.fetch
        row = max(fetch.row_bytes, fetch.dataset.row_nbytes) if fetch.ours else 0
        batch_bytes = len(first[0]) * row if first is not None else 0
        if dl is not None and batch_bytes > kept.batch_bytes:  # their rings would grow
            if kept.shm_plan(spec, batch_bytes)[:3] != (*kept.spec_plan, True):
                dl = None  # not beside the rings they hold as they are: start over
            else:
                kept.batch_bytes = batch_bytes
        if dl is None:
            kept.release()  # kept workers built for other settings
            plan = kept.check_shm(spec, batch_bytes)
            if not plan.fits:
                self._read_on_threads(batches)
                return
            # prefetch_factor counts batches in flight per worker, as in torch; what travels
            # is requests of `size` of them
            dl = worker_loader(spec, plan.size, plan.requests, self._timed)
            kept.dl, kept.spec, kept.rings, kept.batch_bytes = dl, spec, {}, batch_bytes
            kept.spec_plan = (plan.size, plan.requests)
        self._rings = kept.rings  # worker pid -> its slot ring
        self._feed: Feed = dl.batch_sampler
        self._feed.start(batches)
        self._batches_in: collections.deque = collections.deque()  # one request's, received
        self._stamps: collections.deque = collections.deque()  # and their stage stamps
        self._group = (0.0, 0)  # when the worker finished the group received last, and its pid
        self._persistent = spec.persistent_workers
        try:  # starting the workers already feeds them: one may die before the first batch
            self._it: Any = iter(dl)
        except Exception as exc:
            raise self._error(exc) from exc
        self._last = perf_counter()  # starting the workers is not the consumer's step

    def _error(self, exc: Exception) -> Exception:
        msg = str(exc) if isinstance(exc, RuntimeError) else ""
        if msg.startswith("DataLoader timed out"):
            return timeout_error(self._head(), self._spec.timeout, "a worker process")
        if "DataLoader worker (pid" in msg:  # torch noticed a dead worker (SIGCHLD or its poll)
            how = deaths(getattr(self, "_it", None)) or msg  # _it is unset if iter() failed
            return LoaderTimeoutError(
                f"a loader worker process died ({how}); something killed it, often the "
                "out-of-memory killer: use a smaller batch_size, fewer workers or "
                "worker_type='thread'"
            )
        return read_error(exc, self._head(), "in a worker process")

    def _fetch(self) -> tuple[Any, int]:
        if self._threads is not None:
            return next(self._threads), self._rows[0]
        if not self._batches_in:
            try:
                got = next(self._it)  # one request's group of batches
            except StopIteration:
                raise
            except shm.NoRoom as exc:  # a batch of a size not known before: on threads
                return self._on_threads(exc)
            except Exception as exc:
                raise self._error(exc) from exc
            if type(got) is Timed:
                self._batches_in.extend(got.batches)
                self._stamps.extend(got.stamps)
                self._group = (got.done, got.pid)
            else:
                self._batches_in.extend(got)
        batch = self._batches_in.popleft()
        if type(batch) is InSlot:
            if batch.ring is not None and not batch.ring.same(self._rings.get(batch.pid)):
                self._rings[batch.pid] = batch.ring  # new, or sent again: keep the one lending
            batch = self._rings[batch.pid].read(batch.ref)
            if self._spec.pin:
                batch = _pin(batch)
        key = self._feed.sent.popleft()
        if self._timed:
            self._timed_stages(key)
        return batch, len(key[0])

    def _timed_stages(self, key: Key) -> None:
        """The stages of the batch ``key``, as its worker stamped them."""
        sampled = self._feed.sampled
        chosen, sample = sampled.popleft() if sampled else (0.0, 0.0)
        if not self._stamps:  # workers kept from an untimed pass
            self._times = ()
            return
        t0, t1, t2, t3 = self._stamps.popleft()
        done, pid = self._group
        self._times = (sample, t1 - t0, t3 - t2, t2 - t1)
        self._span = (key[1], key[2], chosen, t0, pid, pid)  # a worker reads on its main thread
        self._ready_at = done  # the group travels whole: handed over from when it was done

    def _on_threads(self, exc: Exception) -> tuple[Any, int]:
        spec, kept = self._spec, self._kept
        it, self._it = self._it, None
        shutdown_workers(it, force=True)
        kept.release()
        said = shm.worker_said(exc)
        if kept.no_room != spec:  # once a loader and settings
            shm.warn(shm.on_threads(said, spec.num_workers))
        kept.no_room, kept.shm = spec, f"threads: {said}"
        keys = itertools.chain(list(self._feed.sent), self._feed.batches)  # the undelivered
        self._read_on_threads(keys)
        return self._fetch()

    def _read_on_threads(self, keys: Iterator[Key]) -> None:
        """Read ``keys`` on threads from now on; this pass reports the batches they deliver."""
        self._rows = [0]
        self._threads = ThreadPass(self._spec, keys, self._relay, lambda: None)

    def _relay(
        self, rows: int, _: Any, wait: float, since: float, times: Any, span: Span | None
    ) -> None:
        """What the threads delivered, as this pass's own batch."""
        self._rows[0] = rows
        if times and span is not None:
            self._times, self._span = times[:4], span[2:]
            self._ready_at = span[0] - times[4]

    def in_flight(self) -> int:
        return self._threads.in_flight() if self._threads is not None else len(self._feed.sent)

    def pids(self) -> list[int]:
        return [] if self._threads is not None else live_pids(self._it)

    def _head(self) -> np.ndarray:
        # torch delivers in order, so the batch that failed is the oldest one not yet delivered
        return self._feed.sent[0][0] if self._feed.sent else np.empty(0, np.int64)

    def __del__(self) -> None:
        # a dropped pass (a loop left early) must not force-stop persistent workers that the
        # loader keeps for its next pass; force is for a hung or dead worker
        self.close()

    def close(self, force: bool = False) -> None:
        self._done = True
        threads = getattr(self, "_threads", None)
        if threads is not None:
            threads.close(force)
        it, self._it = getattr(self, "_it", None), None
        if it is None or (self._persistent and not force):
            return  # persistent workers outlive the pass; Loader.close() shuts them down
        shutdown_workers(it, force)
