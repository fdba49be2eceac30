"""What runs in a worker process: one request is a group of batches (:func:`group_size`),
each read into a free slot of this worker's ring (``_slots``) and sent as a slot number; and
the main process's side of a request, :class:`Feed`, which groups the epoch's batches.

Our datasets read a batch straight into its slot (``get_batch(out=)``: one copy, not a gather
and a copy); anything else is fetched as usual and copied in, or, when it is not a batch of
dense tensors, sent torch's own way.

>>> group_size(256 << 10), group_size(64 << 20), group_size(0)
(16, 1, 1)
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from time import perf_counter
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
import torch.utils.data

from ..batches import keep_batch_memory, map_tensors
from ..fetch import Fetch
from ..passes import Key
from . import shm
from .slots import LEND, Full, SlotRef, Slots

__all__: list[str] = []


def worker_init(worker_id: int, user_init: Callable[[int], None] | None = None) -> None:
    torch.set_num_threads(1)  # 2 cores: torch threads in workers fight the main process for CPU
    keep_batch_memory()
    if user_init is not None:
        user_init(worker_id)


class BatchRequest(NamedTuple):
    """Main process -> worker: one batch of a request (its rows, epoch, number in the epoch,
    and the number of the pass asking, which tells a worker that a new pass began)."""

    idx: np.ndarray
    epoch: int
    k: int
    pass_no: int


class InSlot(NamedTuple):
    """Worker -> main process: a batch waiting in slot ``ref`` of worker ``pid``'s ring. The
    ring itself travels with a pass's first such message (else None); the main process keeps it
    per worker. Anything else a worker sends is a batch, sent torch's own way."""

    pid: int
    ref: SlotRef
    ring: Slots | None = None


class WorkerState:
    """A worker process's side of its ring: the :class:`Slots` (None until a batch sized one),
    how many batches it wrote (where the search for a free slot starts), the pass it reads for,
    and whether that pass's messages carried the ring yet."""

    __slots__ = ("ring", "written", "pass_no", "ring_sent")

    def __init__(self) -> None:
        self.ring: Slots | None = None
        self.written, self.pass_no, self.ring_sent = 0, 0, False

    def new_pass(self, pass_no: int) -> None:
        if pass_no != self.pass_no:
            if self.ring is not None:
                # torch threw away what the last pass left unread (persistent workers): those
                # slots will never be read, so never freed by the main process; and the message
                # that carried the ring may have been one of them, so it travels again
                self.ring.forget_unread()
            self.pass_no, self.ring_sent = pass_no, False

    def sent(self, ref: SlotRef) -> InSlot:
        """The message for a batch just written to ``ref``'s slot."""
        self.written += 1
        if self.ring_sent:
            return InSlot(os.getpid(), ref)
        self.ring_sent = True
        return InSlot(os.getpid(), ref, self.ring)


_WORKER = WorkerState()  # this process's (each worker process has its own)


class Timed(NamedTuple):
    """Worker -> main process, when stages are timed: a request's batches (as they would travel
    untimed), when each one's stages ended here (``Fetch.timed``'s four ``perf_counter()``
    stamps), when the group was done and this worker's pid."""

    batches: list[Any]
    stamps: list[tuple[float, float, float, float]]
    done: float
    pid: int


class FetchDataset(torch.utils.data.Dataset):
    """What worker processes read: ``__getitems__`` of a list of :class:`BatchRequest` is one
    whole batch each, put in this worker's slot ring when ``slots`` (how many per worker); a
    :class:`Timed` group when ``timed``."""

    def __init__(self, fetch: Fetch, slots: int = 0, timed: bool = False) -> None:
        self.fetch, self.slots, self.timed = fetch, slots, timed

    def __getitems__(self, group: list[BatchRequest]) -> Any:
        count = self.slots * len(group) + LEND
        state = _WORKER
        if self.slots and state.ring is not None and state.ring.count < count:
            state.ring = None  # sized by a short group (an epoch's last): a new one for full groups
        try:
            if not self.timed:
                return [_shared(self._one(req, count, state)) for req in group]
            got = [self._timed(req, count, state) for req in group]
            batches = [_shared(g[0]) for g in got]
        except RuntimeError as exc:  # torch's collate in a worker allocates on /dev/shm too
            if "shared memory" not in str(exc):
                raise
            shm.drop_leftovers(os.getpid())
            raise shm.no_room_sharing(exc) from exc
        return Timed(batches, [g[1:] for g in got], perf_counter(), os.getpid())

    def _one(self, req: BatchRequest, count: int, state: WorkerState) -> Any:
        fetch = self.fetch
        if not self.slots:
            return fetch(req.idx, req.epoch, req.k)
        got = _fill_ring(fetch, req, state) if fetch.fills else None
        if got is not None:
            return got
        return _to_ring(fetch(req.idx, req.epoch, req.k), count, req.pass_no, state)

    def _timed(
        self, req: BatchRequest, count: int, state: WorkerState
    ) -> tuple[Any, float, float, float, float]:
        fetch = self.fetch
        if self.slots and fetch.fills:  # read straight into a slot: all of it is the read
            t0 = perf_counter()
            got = _fill_ring(fetch, req, state)
            if got is not None:
                t1 = perf_counter()
                return got, t0, t1, t1, t1
        batch, t0, t1, t2, t3 = fetch.timed(req.idx, req.epoch, req.k)
        if self.slots:  # writing the slot is hand-over: the consumer sees it in the group's end
            batch = _to_ring(batch, count, req.pass_no, state)
        return batch, t0, t1, t2, t3


def _shared(batch: Any) -> Any:
    """A batch that travels torch's own way, its CPU tensors moved to /dev/shm here and not as
    torch's queue pickles them: there a failure is printed by the queue's thread and the batch
    never arrives (the loader would wait for its timeout)."""
    return batch if type(batch) is InSlot else map_tensors(batch, _to_shm)


def _to_shm(t: torch.Tensor) -> torch.Tensor:
    if t.device.type == "cpu" and not t.is_shared():
        t.share_memory_()
    return t


def _fill_ring(fetch: Fetch, req: BatchRequest, state: WorkerState) -> InSlot | None:
    """In a worker: our dataset's batch read straight into a free slot of the ring (one copy,
    not a gather and a copy); None where there is no ring yet or the batch does not fit."""
    ring, idx = state.ring, req.idx
    if ring is None or len(idx) > ring.rows or set(ring.layout) != set(fetch.dataset.columns):
        return None
    state.new_pass(req.pass_no)
    try:
        slot = ring.claim(state.written)
    except Full:
        return None
    try:
        fetch.fill(idx, ring.views(slot, len(idx)))
    except BaseException:
        ring.unclaim(slot)
        raise
    return state.sent(SlotRef(slot, len(idx), "dict", tuple(ring.layout)))


def _to_ring(batch: Any, count: int, pass_no: int, state: WorkerState) -> Any:
    """In a worker: the batch written into a free slot (a SlotRef crosses the process
    boundary); the first time, or when it no longer fits, a new ring travels with it once."""
    state.new_pass(pass_no)
    ring = state.ring
    try:
        ref = ring.write(state.written, batch) if ring is not None else None
    except Full:  # the consumer holds every slot (it should not: the main process copies then)
        return batch
    if ref is not None:
        return state.sent(ref)
    try:
        ring = Slots.for_batch(batch, rows=0, count=count)  # sized by this batch
    except RuntimeError as exc:  # /dev/shm full: a batch of unknown size is not checked before
        if "shared memory" not in str(exc):
            raise
        shm.drop_leftovers(os.getpid())
        raise shm.no_room(count, batch) from exc
    ref = ring.write(0, batch) if ring is not None else None
    if ref is None:
        return batch  # not a dict/tuple/list of dense tensors of one length: torch's own way
    state.ring, state.written, state.ring_sent = ring, 0, False
    return state.sent(ref)


# about 4 MiB a request, at most 16 batches (and at most prefetch_factor): measured (bs 256 of
# 1 KiB rows, 2 workers, full shuffle) 307 us a batch one a request, 189 at 1 MiB, 139 at 4 MiB
# x 16, 127 at 8 MiB
GROUP_BYTES = int(os.environ.get("WB_GROUP_BYTES", 4 << 20))  # 1: one batch a request
MAX_GROUP = 16


def group_size(batch_bytes: int) -> int:
    """Batches a worker reads per request: about ``GROUP_BYTES`` a request, so that torch's
    per-request cost (two queues, pickling, a feeder thread: ~150 us of CPU here) is shared by
    small batches; one a request where the batch size in bytes is unknown (foreign datasets).

    >>> group_size(256 << 10), group_size(64 << 20), group_size(0)
    (16, 1, 1)
    """
    return max(1, min(MAX_GROUP, GROUP_BYTES // batch_bytes)) if batch_bytes else 1


class Feed:
    """A batch sampler torch can iterate again each epoch (persistent workers): each pass
    points it at its own batches and records what was sent and not yet delivered (its keys),
    oldest first, for error messages and for threads to read on from; and, when ``timed``, when
    choosing each one's rows began and how long it took (``sampled``, in the same order)."""

    def __init__(self, size: int, timed: bool = False) -> None:
        self.batches: Iterator[Key] = iter(())
        self.sent: collections.deque = collections.deque()
        self.sampled: collections.deque = collections.deque()
        self.passes, self.size, self.timed = 0, size, timed  # size: batches a request

    def start(self, batches: Iterator[Key]) -> None:
        self.batches, self.sent, self.sampled = batches, collections.deque(), collections.deque()
        self.passes += 1

    def __iter__(self) -> Iterator[list[BatchRequest]]:
        n, group, size, batches = self.passes, [], self.size, iter(self.batches)
        sent, sampled, timed = self.sent, self.sampled, self.timed
        while True:
            t0 = perf_counter() if timed else 0.0
            key = next(batches, None)
            if key is None:
                break
            if timed:
                sampled.append((t0, perf_counter() - t0))
            sent.append(key)
            group.append(BatchRequest(*key, n))
            if len(group) == size:
                yield group
                group = []
        if group:
            yield group
