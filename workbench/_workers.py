"""Batches from torch DataLoader worker processes, handed over through reused shared-memory
slots (``_slots``) rather than a new shared tensor per batch; and stopping those workers.

Measured why (1 KiB rows, 2-core VM): torch's default path shm_opens, maps and page-faults a
fresh segment for every batch on both sides, which put process workers at 0.02x the thread path.
"""

from __future__ import annotations

import collections
import functools
import os
import signal
import time
from collections.abc import Callable
from typing import Any, Iterator

import numpy as np
import torch
import torch.utils.data
from torch.utils.data import dataloader as _torch_dl

from ._batch import keep_batch_memory
from ._batch import pin as _pin
from ._fetch import Fetch, read_error, timeout_error
from ._prefetch import FetchSpec, Key, Pass
from ._slots import Slots, SlotRef
from .errors import LoaderTimeoutError

__all__: list[str] = []

SLOTS = os.environ.get("WB_WORKER_SLOTS", "1") != "0"  # 0: torch's per-batch shared tensors


def _worker_init(worker_id: int, user_init: Callable[[int], None] | None = None) -> None:
    torch.set_num_threads(1)  # 2 cores: torch threads in workers fight the main process for CPU
    keep_batch_memory()
    if user_init is not None:
        user_init(worker_id)


class _FetchDataset(torch.utils.data.Dataset):
    """What worker processes read: ``__getitems__((idx, epoch, k))`` is one whole batch, put in
    this worker's slot ring when ``slots`` (``slots`` = how many per worker)."""

    def __init__(self, fetch: Fetch, slots: int = 0) -> None:
        self.fetch, self.slots = fetch, slots

    def __getitems__(self, key: tuple[np.ndarray, int, int]) -> Any:
        batch = self.fetch(*key)
        return _to_ring(batch, self.slots) if self.slots else batch


_RING: list[Any] = [None, 0]  # this worker process's Slots and its batch counter


def _to_ring(batch: Any, count: int) -> Any:
    """In a worker: the batch written into its next slot (a SlotRef crosses the process
    boundary); the first time, or when it no longer fits, a new ring travels with it once."""
    ring, n = _RING
    ref = ring.write(n, batch) if ring is not None else None
    if ref is not None:
        _RING[1] = n + 1
        return (os.getpid(), ref)
    ring = Slots.for_batch(batch, rows=0, count=count)  # sized by this batch
    ref = ring.write(0, batch) if ring is not None else None
    if ref is None:
        return batch  # not a dict/tuple/list of dense tensors of one length: torch's own way
    _RING[0], _RING[1] = ring, 1
    return (os.getpid(), ref, ring)


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


class ProcessPass(Pass):
    """Batches from torch DataLoader worker processes; with ``persistent_workers`` the
    DataLoader (and its workers) is kept in ``holder`` and reused by the next pass."""

    def __init__(self, spec: FetchSpec, batches: Iterator[Key], *args: Any,
                 holder: dict[str, Any] | None = None) -> None:
        super().__init__(spec, batches, *args)
        holder = holder if holder is not None else {}
        dl = holder.get("dl") if spec.persistent_workers and holder.get("spec") == spec else None
        if dl is None:
            release(holder)  # kept workers built for other settings
            feed = _Feed()
            dl = _DataLoader(  # slots: pinned after the copy out, not before
                _FetchDataset(spec.fetch, spec.prefetch_factor + 1 if SLOTS else 0),
                batch_sampler=feed, collate_fn=_identity,
                num_workers=spec.num_workers, pin_memory=spec.pin and not SLOTS,
                pin_memory_device=spec.pin_memory_device, prefetch_factor=spec.prefetch_factor,
                timeout=spec.timeout or 0, persistent_workers=spec.persistent_workers,
                multiprocessing_context=spec.multiprocessing_context,
                worker_init_fn=functools.partial(_worker_init, user_init=spec.worker_init_fn))
            holder["dl"], holder["spec"], holder["rings"] = dl, spec, {}
        self._rings: dict[int, Slots] = holder["rings"]  # worker pid -> its slot ring
        self._feed: _Feed = dl.batch_sampler
        self._feed.batches, self._feed.sent = batches, collections.deque()
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
                "worker_type='thread'")
        return read_error(exc, self._head(), "in a worker process")

    def _fetch(self) -> tuple[Any, int]:
        try:
            batch = next(self._it)
        except StopIteration:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        if isinstance(batch, tuple) and len(batch) in (2, 3) and isinstance(batch[1], SlotRef):
            if len(batch) == 3:
                self._rings[batch[0]] = batch[2]
            batch = self._rings[batch[0]].read(batch[1])
            if self._spec.pin:
                batch = _pin(batch)
        return batch, len(self._feed.sent.popleft())

    def in_flight(self) -> int:
        return len(self._feed.sent)

    def pids(self) -> list[int]:
        return live_pids(self._it)

    def _head(self) -> np.ndarray:
        # torch delivers in order, so the batch that failed is the oldest one not yet delivered
        return self._feed.sent[0] if self._feed.sent else np.empty(0, np.int64)

    def __del__(self) -> None:
        # a dropped pass (a loop left early) must not force-stop persistent workers that the
        # loader keeps for its next pass; force is for a hung or dead worker
        self.close()

    def close(self, force: bool = False) -> None:
        self._done = True
        it, self._it = getattr(self, "_it", None), None
        if it is None or (self._persistent and not force):
            return  # persistent workers outlive the pass; Loader.close() shuts them down
        shutdown_workers(it, force)


def release(holder: dict[str, Any]) -> None:
    """Stop the persistent workers kept in ``holder``, if any."""
    it = getattr(holder.pop("dl", None), "_iterator", None)
    if it is not None:
        shutdown_workers(it)


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
