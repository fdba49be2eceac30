"""Batches from torch DataLoader worker processes, handed over through reused shared-memory
slots (``_slots``) rather than a new shared tensor per batch; and stopping those workers.

Measured why (1 KiB rows, 2-core VM): torch's default path shm_opens, maps and page-faults a
fresh segment for every batch on both sides, which put process workers at 0.02x the thread path.
Then each request through torch's queues still cost ~150 us of CPU on each side, so one request
carries a group of small batches, read in the worker straight into its slots (``_requests``).
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import signal
import time
from typing import Any, Iterator

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import dataloader as _torch_dl

from ...errors import LoaderTimeoutError
from ..batches import pin as _pin
from ..fetch import read_error, timeout_error
from ..passes import FetchSpec, Key, Pass, ThreadPass
from . import shm
from .requests import Feed, FetchDataset, InSlot, group_size, worker_init
from .slots import LEND, Slots

__all__: list[str] = []

SLOTS = os.environ.get("WB_WORKER_SLOTS", "1") != "0"  # 0: torch's per-batch shared tensors
_POLL_S = 0.1  # how soon a dead worker is noticed while the consumer waits


class _WorkerIter(_torch_dl._MultiProcessingDataLoaderIter):
    """torch's worker iterator, noticing a dead worker by polling instead of by signal.

    torch's SIGCHLD handler raises its RuntimeError wherever the main thread happens to be: inside
    a library that swallows it (the consumer then waits out the whole ``timeout``), or between a
    queue's lock acquire and its ``try`` (the lock is never released and closing deadlocks). Both
    seen here, about 1 run in 40. So our workers leave its registry before the first index is
    sent, and the wait for a batch checks them every ``_POLL_S`` instead.
    """

    def _reset(self, loader: Any, first_iter: bool = False) -> None:
        if self._worker_pids_set:
            _torch_dl._utils.signal_handling._remove_worker_pids(id(self))
            self._worker_pids_set = False
        super()._reset(loader, first_iter)

    def __next__(self) -> Any:
        # torch's __next__ without its profiler range unless a profiler is on: the range's exit
        # op cost ~57 us a batch here (GIL hand-offs with the queues' threads; bs 256, 2 workers
        # 278 -> 253 us a batch)
        if torch.autograd._profiler_enabled():
            return super().__next__()
        data = self._next_data()
        self._num_yielded += 1
        return data

    def _try_get_data(self, timeout: float = _torch_dl._utils.MP_STATUS_CHECK_INTERVAL) -> Any:
        deadline = time.monotonic() + timeout
        while True:  # torch's own try checks the workers each time it comes back empty
            got = super()._try_get_data(max(0.0, min(_POLL_S, deadline - time.monotonic())))
            if got[0] or time.monotonic() >= deadline:
                return got


class _DataLoader(torch.utils.data.DataLoader):
    def _get_iterator(self) -> Any:
        if self.num_workers == 0:
            return super()._get_iterator()
        self.check_worker_number_rationality()
        return _WorkerIter(self)


def _identity(batch: Any) -> Any:
    return batch  # the fetch already collated (and transformed) it


class KeptWorkers:
    """A loader's worker processes between passes: the DataLoader the last pass built (whose
    workers torch keeps with ``persistent_workers``), the spec it was built for, and each
    worker's slot ring (pid -> :class:`Slots`) as the main process received it."""

    def __init__(self) -> None:
        self.dl: Any = None
        self.spec: FetchSpec | None = None
        self.rings: dict[int, Slots] = {}
        self.batch_bytes = 0  # the batches its rings were sized for
        self.spec_plan = (1, 1)  # and the batches a request, requests in flight they read
        self.shm = ""  # what a small /dev/shm made the last pass do instead ('' for nothing)
        self.no_room: FetchSpec | None = None  # the settings whose workers found no room

    def shm_plan(self, spec: FetchSpec, batch_bytes: int) -> shm.Plan:
        """How workers for ``spec`` reading batches of ``batch_bytes`` fit /dev/shm now."""
        group = group_size(batch_bytes)
        pf, free = spec.prefetch_factor, shm.free_bytes()
        return shm.fit(batch_bytes, spec.num_workers, pf, group, free, SLOTS, LEND)

    def check_shm(self, spec: FetchSpec, batch_bytes: int) -> shm.Plan:
        """:meth:`shm_plan`, warning (once a change) where it is not what ``spec`` asks."""
        if self.no_room == spec:  # these settings' workers found no room before: threads
            return self.shm_plan(spec, 0)._replace(fits=False)
        plan, workers = self.shm_plan(spec, batch_bytes), spec.num_workers
        asked = shm.need(batch_bytes, workers, *plan.asked, SLOTS, LEND)
        note = shm.note(plan, asked)
        if note and note.split(":")[0] != self.shm.split(":")[0]:
            shm.warn(shm.message(plan, batch_bytes, workers, asked))
        self.shm = note
        return plan

    def pids(self) -> list[int]:
        """The kept worker processes that are alive (none without ``persistent_workers``)."""
        return live_pids(getattr(self.dl, "_iterator", None))

    def release(self) -> None:
        """Stop the kept worker processes, if any, and let their slot rings go."""
        dl, self.dl, self.rings = self.dl, None, {}
        it = getattr(dl, "_iterator", None)
        if it is not None:
            shutdown_workers(it)


class ProcessPass(Pass):
    """Batches from torch DataLoader worker processes; with ``persistent_workers`` the
    DataLoader (and its workers) is kept in ``kept`` and reused by the next pass."""

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
            size, requests = plan.size, plan.requests
            feed = Feed(size)
            dl = _DataLoader(  # slots: pinned after the copy out, not before
                FetchDataset(spec.fetch, requests + 1 if SLOTS else 0),
                batch_sampler=feed,
                collate_fn=_identity,
                num_workers=spec.num_workers,
                pin_memory=spec.pin and not SLOTS,
                pin_memory_device=spec.pin_memory_device,
                prefetch_factor=requests,
                timeout=spec.timeout or 0,
                persistent_workers=spec.persistent_workers,
                multiprocessing_context=spec.multiprocessing_context,
                worker_init_fn=functools.partial(worker_init, user_init=spec.worker_init_fn),
            )
            kept.dl, kept.spec, kept.rings, kept.batch_bytes = dl, spec, {}, batch_bytes
            kept.spec_plan = (size, requests)
        self._rings = kept.rings  # worker pid -> its slot ring
        self._feed: Feed = dl.batch_sampler
        self._feed.start(batches)
        self._ready: collections.deque = collections.deque()
        self._persistent = spec.persistent_workers
        try:  # starting the workers already feeds them: one may die before the first batch
            self._it: Any = iter(dl)
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> Exception:
        msg = str(exc) if isinstance(exc, RuntimeError) else ""
        if msg.startswith("DataLoader timed out"):
            return timeout_error(self._head(), self._spec.timeout, "a worker process")
        if "DataLoader worker (pid" in msg:  # torch noticed a dead worker (SIGCHLD or its poll)
            how = _deaths(getattr(self, "_it", None)) or msg  # _it is unset if iter() failed
            return LoaderTimeoutError(
                f"a loader worker process died ({how}); something killed it, often the "
                "out-of-memory killer: use a smaller batch_size, fewer workers or "
                "worker_type='thread'"
            )
        return read_error(exc, self._head(), "in a worker process")

    def _fetch(self) -> tuple[Any, int]:
        if self._threads is not None:
            return next(self._threads), self._rows[0]
        if not self._ready:
            try:
                self._ready.extend(next(self._it))  # one request's group of batches
            except StopIteration:
                raise
            except shm.NoRoom as exc:  # a batch of a size not known before: on threads
                return self._on_threads(exc)
            except Exception as exc:
                raise self._error(exc) from exc
        batch = self._ready.popleft()
        if type(batch) is InSlot:
            if batch.ring is not None and not batch.ring.same(self._rings.get(batch.pid)):
                self._rings[batch.pid] = batch.ring  # new, or sent again: keep the one lending
            batch = self._rings[batch.pid].read(batch.ref)
            if self._spec.pin:
                batch = _pin(batch)
        return batch, len(self._feed.sent.popleft()[0])

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
        rows = self._rows = [0]
        self._threads = ThreadPass(
            self._spec, keys, lambda n, *_: rows.__setitem__(0, n), lambda: None
        )

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


def _deaths(it: Any) -> str:
    """How the worker processes of ``it`` that are gone ended, e.g. ``pid 7 killed by SIGKILL``."""
    out = []
    for w in getattr(it, "_workers", ()):
        code = w.exitcode
        if code:
            how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with {code}"
            out.append(f"pid {w.pid} {how}")
    return ", ".join(out)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


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
