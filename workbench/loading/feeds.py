"""What feeds a :class:`~workbench.loading.loaders.Loader` its batches: the sampler its config
and dataset call for, and a :class:`Feed`, which starts the passes that read the sampler's epoch
and keeps what they share (the ``Fetch``, the worker processes kept between passes, the epoch in
progress) and the count, stats, stage times and subscribers of the batches they deliver."""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable
from typing import Any

from ..datasets.protocols import MixesSources, PlansReads
from ..errors import WorkbenchError
from ..monitoring.metrics import BatchEvent, LoaderStats
from ..monitoring.pagecache import residency
from ..monitoring.stages import StageWindow
from .advice import Advisor
from .automatic import shards_at_once
from .batches import batch_nbytes
from .config import LoaderConfig
from .epochs import EpochIterator, start_pass
from .fetch import Capabilities, Fetch
from .passes import Pass, Span
from .ranks import resolve
from .sampling import BatchSampler
from .workers.pool import KeptWorkers

__all__: list[str] = []

# block order over a dataset without storage blocks (the sampler's default)
FALLBACK_BLOCK_ROWS = 4096


def shard_cache(dataset: Any) -> tuple[int, int] | None:
    """(bytes, biggest shard's bytes) of the cache a dataset that plans its reads streams its
    shards through, asked once per loader; None for any other dataset."""
    cache = dataset.cache if isinstance(dataset, PlansReads) else None
    held, biggest = getattr(cache, "cache_bytes", None), getattr(cache, "biggest", None)
    return (int(held), int(biggest)) if held and biggest else None


def resident(dataset: Any) -> float | None:
    """The page-cache fraction of a local dataset's files now (one ``mincore`` pass over them:
    ~1 ms for 1 GiB), None for one in memory or streamed from a URL."""
    where = getattr(dataset, "where", None)
    if not isinstance(where, str) or "://" in where or not os.path.exists(where):
        return None
    try:
        return residency(where).fraction
    except (WorkbenchError, OSError):
        return None


def sampler_for(num_rows: int, cfg: LoaderConfig, can: Capabilities) -> tuple[BatchSampler, str]:
    """The sampler over ``num_rows`` rows of a dataset that offers ``can`` under ``cfg``, and
    where its ``block_rows`` came from."""
    rank, world_size = resolve(cfg.rank, cfg.world_size)
    block_rows_from = (
        "given"
        if cfg.block_rows
        else "the dataset's storage blocks"
        if can.block_rows
        else "fallback: the dataset has no storage blocks"
    )
    sampler = BatchSampler(
        num_rows,
        cfg.batch_size,
        order=cfg.shuffle,
        seed=cfg.seed,
        block_rows=int(cfg.block_rows or can.block_rows or FALLBACK_BLOCK_ROWS),
        window=cfg.window,
        rank=rank,
        world_size=world_size,
        drop_last=cfg.drop_last,
        shard_rows=can.shard_rows,
        run_rows=cfg.run_rows,
        epoch_stride=can.epoch_rows,
    )
    if can.will_need is not None:  # cold windows read ahead
        sampler.advise = Advisor(can.will_need)
    return sampler, block_rows_from


def count_sources(counts: dict[str, int], column: Any, names: tuple[str, ...]) -> None:
    """Add a mixture's batch to ``counts``: its ``column`` holds each row's source number."""
    for name, n in zip(names, column.bincount(minlength=len(names)).tolist()):
        counts[name] = counts.get(name, 0) + n


class Feed:
    """The passes over one loader's ``dataset`` and what they delivered: ``position`` (batches
    of the epoch delivered), ``stats``, ``stages`` (each batch's seconds per stage: the
    producer's, as its pass timed them, and the consumer's wait and step) and the subscribers
    told of each batch."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.kept = KeptWorkers()  # across passes
        self.stats = LoaderStats()
        self.stages = StageWindow()
        self.position = 0
        self.fetch: Fetch | None = None
        self.subscribers: tuple[Callable[[BatchEvent], None], ...] = ()
        self._current: weakref.ref | None = None
        mixes = isinstance(dataset, MixesSources) and dataset.source_column
        self._mix = (dataset.source_column, dataset.names) if mixes else None

    def start(
        self,
        cfg: LoaderConfig,
        sampler: BatchSampler,
        epoch: int,
        plans_reads: bool,
        on_end: Callable[[], None],
    ) -> Pass:
        """The pass that reads the rest of ``sampler``'s epoch ``epoch`` under ``cfg``, telling
        a dataset that ``plans_reads`` its shard order first; ``on_end()`` at the epoch's end."""
        batches = iter(sampler)  # after the resumed batches, if load_state_dict was used
        if plans_reads:  # a streamed dataset fetches ahead in this order
            self.dataset.plan_reads(
                sampler.shard_plan(), shards_at_once(sampler.order, sampler.window)
            )
        self.position = start = sampler.batches_done
        self.stages.resident = resident(self.dataset)  # cold or warm, as this pass begins
        keys = ((idx, epoch, k) for k, idx in enumerate(batches, start))
        # sequential on one rank: every batch is one ascending run (padding only wraps with W > 1)
        contiguous = sampler.order == "sequential" and sampler.world_size == 1
        if self.fetch is None or self.fetch.contiguous != contiguous:
            self.fetch = Fetch(self.dataset, cfg.collate_fn, cfg.transform, cfg.seed, contiguous)
        return start_pass(cfg, self.fetch, keys, self.delivered, on_end, self.kept)

    def apply(self, old: LoaderConfig, cfg: LoaderConfig, sampler: BatchSampler) -> None:
        """Put ``cfg`` in force instead of ``old`` at a batch boundary: ``sampler`` goes on from
        the batches delivered, and the kept workers go where the readers change."""
        sampler.reconfigure(
            self.position,
            batch_size=cfg.batch_size,
            window=cfg.window,
            order=cfg.shuffle,
            run_rows=cfg.run_rows,
        )
        self.stages.clear()  # the verdict is on the settings in force
        readers = ("num_workers", "worker_type", "prefetch_factor", "pin_memory")
        if any(getattr(old, k) != getattr(cfg, k) for k in readers):
            self.kept.release()

    def delivered(
        self,
        rows: int,
        batch: Any,
        wait_s: float,
        since_last_s: float,
        times: tuple[float, ...] | None = None,
        span: Span | None = None,
    ) -> None:
        """Count a batch the consumer received, time its stages (``times``: the producer's, in
        ``monitoring.stages.PRODUCER``'s order; None: not timed; ``span``: where and when they
        ran, for the trace), and tell the subscribers."""
        nbytes = rows * self.fetch.row_bytes or batch_nbytes(batch)  # type: ignore[union-attr]
        self.stats.add(rows, nbytes, wait_s, since_last_s)
        if self._mix is not None and isinstance(batch, dict) and self._mix[0] in batch:
            count_sources(self.stats.sources, batch[self._mix[0]], self._mix[1])
        if times is not None:  # the step: the consumer's time between its calls for a batch
            self.stages.push((times, wait_s, since_last_s - wait_s, span))
        self.position += 1
        if self.subscribers:  # the hot path pays one check when nobody watches
            event = BatchEvent(time.perf_counter(), rows, nbytes, wait_s, since_last_s)
            for fn in self.subscribers:
                fn(event)

    def subscribe(self, fn: Callable[[BatchEvent], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every delivered batch; returns the function that unsubscribes."""
        self.subscribers = (*self.subscribers, fn)

        def unsubscribe() -> None:
            self.subscribers = tuple(f for f in self.subscribers if f is not fn)

        return unsubscribe

    def track(self, it: EpochIterator) -> None:
        """Hold ``it`` as the epoch in progress (weakly: a dropped iterator stops its readers)."""
        self._current = weakref.ref(it)

    def current(self) -> EpochIterator | None:
        """The epoch in progress, if any."""
        ref = self._current
        return ref() if ref is not None else None

    def end(self) -> None:
        """Close the epoch in progress, if any."""
        it, self._current = self.current(), None
        if it is not None:
            it.close()

    def in_flight(self) -> int:
        """Batches read ahead of the consumer now (0 in-process or between passes)."""
        it = self.current()
        return it.in_flight() if it is not None else 0

    def pids(self) -> list[int]:
        """The worker processes reading now, or kept between passes."""
        it = self.current()
        return (it.pids() if it is not None else []) or self.kept.pids()
