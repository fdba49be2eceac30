"""torch DataLoader worker processes for :class:`~.processes.ProcessPass`: the DataLoader that
starts them (batches handed over through reused shared-memory slots, ``slots``, rather than a
new shared tensor per batch), the workers a loader keeps between passes, and stopping them.

Measured why (1 KiB rows, 2-core VM): torch's default path shm_opens, maps and page-faults a
fresh segment for every batch on both sides, which put process workers at 0.02x the thread path.
Then each request through torch's queues still cost ~150 us of CPU on each side, so one request
carries a group of small batches, read in the worker straight into its slots (``requests``).
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Any

import torch
import torch.utils.data
from torch.utils.data import dataloader as _torch_dl

from ..passes import FetchSpec
from . import shm
from .requests import Feed, FetchDataset, group_size, worker_init
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


def worker_loader(spec: FetchSpec, size: int, requests: int, timed: bool) -> Any:
    """The DataLoader whose workers read ``spec``'s batches, ``size`` a request, ``requests``
    requests in flight per worker (into slots unless ``WB_WORKER_SLOTS=0``), timing their
    stages when ``timed``; its batch sampler is the :class:`Feed` a pass points at its keys."""
    return _DataLoader(  # slots: pinned after the copy out, not before
        FetchDataset(spec.fetch, requests + 1 if SLOTS else 0, timed),
        batch_sampler=Feed(size, timed),
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


def deaths(it: Any) -> str:
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
    # stopped mid-allocation, a worker leaves its segment's name
    shm.drop_leftovers(*(w.pid for w in getattr(it, "_workers", ()) if not w.is_alive()))
