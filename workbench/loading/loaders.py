"""Feed batches from any map-style Dataset: one batched read per batch for ours (PyTorch's
``__getitems__`` + ``collate_fn`` for the rest), read ahead in the background, in threads or in
worker processes, in order, resumable mid-epoch, with live stats.

>>> ds = wb.open_dataset({"x": np.zeros((5000, 4), "float32"), "y": np.arange(5000)})
>>> dl = loader(ds, batch_size=1024, shuffle="block", num_workers=0)
>>> [len(batch["y"]) for batch in dl], dl.stats.batches, dl.stats.samples
([1024, 1024, 1024, 1024, 904], 5, 5000)
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InvalidInputError
from ..monitoring.metrics import BatchEvent, LoaderStats
from .advice import Advisor
from .batches import batch_nbytes, keep_batch_memory
from .config import LoaderConfig
from .epochs import EpochIterator, start_pass
from .fetch import Capabilities, Fetch, check_dataset
from .options import takes_loader_options
from .passes import Pass
from .ranks import resolve
from .sampling import BatchSampler
from .workers.pool import KeptWorkers

__all__ = ["Loader", "loader"]

_OPTIONS = frozenset(f.name for f in dataclasses.fields(LoaderConfig)) - {"block_rows", "shuffle"}
FALLBACK_BLOCK_ROWS = 4096  # block order over a dataset without storage blocks (the sampler's default)


@takes_loader_options
class Loader:
    """Batches of any map-style ``dataset``, read ahead, in order, resumable; see :func:`loader`.

    The options keep ``torch.utils.data.DataLoader``'s names and meanings (the README maps each
    one) and add ours (``seed``, ``worker_type``, ``transform``, ``rank``/``world_size``,
    ``window``, ``run_rows``, ``block_rows``); ``loader.config`` holds them all, resolved (a
    :class:`~workbench.loading.config.LoaderConfig`), ``loader.<option>`` reads one, and
    ``reconfigure`` changes them while it runs. Each full pass advances the epoch, so
    consecutive ``for`` loops see new orders; ``set_epoch`` picks one. ``state_dict`` records
    the rows delivered (not those read ahead) in the epoch.

    Parameters
    ----------
    dataset : Dataset
        Any map-style dataset: ours (one batched read per batch), or any with ``__getitem__``
        (and ``__getitems__``), collated by ``collate_fn``.

    Raises
    ------
    InvalidInputError
        An unknown or invalid option, a sampler, or a dataset the loader cannot read by index.
    """

    def __init__(self, dataset: Any, **options: Any) -> None:
        self._workers = KeptWorkers()  # across passes; set first, as __del__ closes it
        check_dataset(dataset)
        if options.pop("sampler", None) is not None or options.pop("batch_sampler", None) is not None:
            raise InvalidInputError(
                "sampler= / batch_sampler= are not taken: the loader orders rows itself (shuffle=, "
                "seed=, rank=/world_size=), which is what makes its reads batched and its resume "
                "exact; for a custom sampler use torch.utils.data.DataLoader(dataset, "
                "batch_sampler=...) over the same dataset")
        self.dataset = dataset
        self._can = can = Capabilities.of(dataset)  # what it offers beyond __getitem__, asked once
        self.config = cfg = LoaderConfig.build(can.row_nbytes, can.reads_ahead, **options)
        rank, world_size = resolve(cfg.rank, cfg.world_size)
        self.block_rows = int(cfg.block_rows or can.block_rows or FALLBACK_BLOCK_ROWS)
        self.block_rows_from = ("given" if cfg.block_rows else "the dataset's storage blocks"
                                if can.block_rows else "fallback: the dataset has no storage blocks")
        self.sampler = BatchSampler(len(dataset), cfg.batch_size, order=cfg.shuffle, seed=cfg.seed,
                                    block_rows=self.block_rows, window=cfg.window, rank=rank,
                                    world_size=world_size, drop_last=cfg.drop_last,
                                    shard_rows=can.shard_rows, run_rows=cfg.run_rows)
        if can.will_need is not None:  # cold windows read ahead
            self.sampler.advise = Advisor(can.will_need)
        self.stats = LoaderStats()
        self._epoch = self._position = 0
        self._pending: LoaderConfig | None = None
        self._lock = threading.RLock()  # changes are applied by one thread at a time
        self._fetch: Fetch | None = None
        self._current: weakref.ref | None = None
        self._subscribers: tuple[Callable[[BatchEvent], None], ...] = ()

    order = property(lambda self: self.sampler.order, doc="The running epoch's order.")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_OPTIONS})

    def __getattr__(self, name: str) -> Any:
        # the options, as DataLoader exposes them (loader.batch_size, loader.num_workers, ...)
        if name in _OPTIONS and "config" in self.__dict__:
            return getattr(self.config, name)
        raise AttributeError(f"'Loader' object has no attribute {name!r}")

    def __repr__(self) -> str:
        return (f"Loader({type(self.dataset).__name__} of {len(self.dataset):,} rows, "
                f"batch_size={self.batch_size}, shuffle={self.order!r}, num_workers={self.num_workers}"
                f" ({self.worker_type}), block_rows={self.block_rows:,} ({self.block_rows_from}))")

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass (a resumed position in that epoch is kept)."""
        self.sampler.set_epoch(epoch)
        if epoch != self._epoch:
            self._position = 0
        self._epoch = int(epoch)

    def reconfigure(self, **changes: Any) -> LoaderConfig:
        """Change ``batch_size``, ``num_workers``, ``worker_type``, ``prefetch_factor``,
        ``pin_memory``, ``window`` or ``run_rows`` at the next batch boundary, ``shuffle`` from
        the next epoch, without losing the epoch: every row of it is still delivered once.
        Read-ahead batches are dropped and readers rebuilt; returns the config that will apply.

        >>> dl = loader(wb.open_dataset({"y": np.arange(1000)}), batch_size=100)
        >>> it = iter(dl); first = next(it); dl.reconfigure(batch_size=300).batch_size
        300
        >>> [len(b["y"]) for b in it], dl.batch_size   # the rest of the epoch, each row once
        ([300, 300, 300], 300)
        """
        with self._lock:  # atomic with __iter__: a pass starting now sees the change or waits
            cfg = (self._pending or self.config).with_changes(
                self._can.row_nbytes, self._can.reads_ahead, **changes)
            self._pending = cfg
            it = self._iterating()
            if it is None or it.done:  # not iterating: nothing to wait for
                self._apply_pending()
            else:
                it.renew_at_next_batch()
        return cfg

    def _apply_pending(self) -> None:
        with self._lock:
            cfg, self._pending = self._pending, None
            if cfg is None:
                return
            old, self.config = self.config, cfg
            self.sampler.reconfigure(self._position, batch_size=cfg.batch_size,
                                     window=cfg.window, order=cfg.shuffle, run_rows=cfg.run_rows)
            readers = ("num_workers", "worker_type", "prefetch_factor", "pin_memory")
            if any(getattr(old, k) != getattr(cfg, k) for k in readers):
                self._close_workers()

    def __iter__(self) -> Iterator[Any]:
        self._end_pass()
        keep_batch_memory()
        with self._lock:
            self._apply_pending()
            self.sampler.set_epoch(self._epoch)
            it = EpochIterator(self._new_pass(), self._renew, self._stop_advice)
            self._current = weakref.ref(it)
        return it

    def _renew(self, old: Pass) -> Pass | None:
        """The pass for the rest of the epoch under the pending config, ``old`` closed (the
        iterator's swap at a batch boundary); None where nothing is pending any more."""
        with self._lock:  # no other thread applies a change while passes swap
            if self._pending is None:
                return None
            old.close()
            self._apply_pending()
            return self._new_pass()

    def _new_pass(self) -> Pass:
        cfg, sampler = self.config, self.sampler
        batches = iter(sampler)  # after the resumed batches, if load_state_dict was used
        if self._can.plans_reads:  # a streamed dataset fetches ahead in this order
            self.dataset.plan_reads(sampler.shard_plan(), 2 if sampler.order == "sequential"
                                    else sampler.window + 3)  # shards one window touches
        epoch, start = self._epoch, sampler.batches_done
        self._position = start
        keys = ((idx, epoch, k) for k, idx in enumerate(batches, start))
        # sequential on one rank: every batch is one ascending run (padding only wraps with W > 1)
        contiguous = sampler.order == "sequential" and sampler.world_size == 1
        if self._fetch is None or self._fetch.contiguous != contiguous:
            self._fetch = Fetch(self.dataset, cfg.collate_fn, cfg.transform, cfg.seed, contiguous)
        return start_pass(cfg, self._fetch, keys, self._delivered, self._finish_epoch, self._workers)

    def _delivered(self, rows: int, batch: Any, wait_s: float, since_last_s: float) -> None:
        nbytes = rows * self._fetch.row_bytes or batch_nbytes(batch)  # type: ignore[union-attr]
        self.stats.add(rows, nbytes, wait_s, since_last_s)
        self._position += 1
        if self._subscribers:  # the hot path pays one check when nobody watches
            event = BatchEvent(time.perf_counter(), rows, nbytes, wait_s, since_last_s)
            for fn in self._subscribers:
                fn(event)

    def subscribe(self, fn: Callable[[BatchEvent], None]) -> Callable[[], None]:
        """Call ``fn(event)`` with a :class:`~workbench.monitoring.metrics.BatchEvent` for every delivered
        batch, on the consumer's thread (keep it cheap); returns the function that unsubscribes."""
        self._subscribers = (*self._subscribers, fn)

        def unsubscribe() -> None:
            self._subscribers = tuple(f for f in self._subscribers if f is not fn)

        return unsubscribe

    def _iterating(self) -> EpochIterator | None:
        """The epoch in progress, if any (held weakly: a dropped iterator stops its readers)."""
        ref = getattr(self, "_current", None)
        return ref() if ref is not None else None

    def read_ahead(self) -> int:
        """Batches read ahead of the consumer right now (0 in-process or between passes)."""
        it = self._iterating()
        return it.in_flight() if it is not None else 0

    def worker_pids(self) -> dict[int, str]:
        """``{pid: name}`` of the worker processes reading for this loader now, or kept between
        passes (``persistent_workers``); none for threads."""
        it = self._iterating()
        pids = (it.pids() if it is not None else []) or self._workers.pids()
        return {pid: f"loader worker {i}" for i, pid in enumerate(pids)}

    def _finish_epoch(self) -> None:
        self._stop_advice()
        self._epoch, self._position = self._epoch + 1, 0
        self.sampler.set_epoch(self._epoch)  # a whole epoch again after an elastic resume

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the epoch, the batches delivered in it (not those read ahead) and
        the rows they cover, so a loader with another batch size resumes exactly too."""
        return {**self.sampler.state_dict(self._position), "epoch": self._epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the next pass starts at its epoch, after its delivered batches."""
        self._end_pass()
        self._apply_pending()
        self.sampler.load_state_dict(state)  # raises IncompatibleResumeError if settings changed
        self._epoch, self._position = self.sampler.epoch, self.sampler.batches_done

    def _end_pass(self) -> None:
        it = self._iterating()
        self._current = None
        if it is not None:
            it.close()

    def _stop_advice(self) -> None:
        if isinstance(self.sampler.advise, Advisor):  # no read-ahead for a pass that is over
            self.sampler.advise.cancel()

    def close(self) -> None:
        """Stop the reader threads or worker processes of the pass in progress, if any, and
        persistent workers."""
        self._end_pass()
        self._close_workers()

    def _close_workers(self) -> None:
        self._workers.release()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if KeptWorkers is not None:  # None at interpreter exit: module globals are gone by then
            self.close()


@takes_loader_options
def loader(dataset: Any, **options: Any) -> Loader:
    """Batches of ``dataset``, read ahead in the background, in order, resumable mid-epoch.

    Parameters
    ----------
    dataset : Dataset
        Any map-style dataset; ours read each batch in one pass.

    Returns
    -------
    Loader
        An iterable of batches (``dict[str, Tensor]`` for ours, ``collate_fn``'s output for
        others), with ``len``, ``stats``, ``state_dict`` and ``reconfigure``.

    Raises
    ------
    InvalidInputError
        An unknown or invalid option, or a dataset the loader cannot read by index.

    Examples
    --------
    >>> ds = wb.open_dataset({"x": np.zeros((4096, 8), "float32"), "y": np.arange(4096)})
    >>> dl = loader(ds, batch_size=1024, shuffle="full", seed=1, num_workers=2)  # 2 read-ahead threads
    >>> sorted(torch.cat([batch["y"] for batch in dl]).tolist()) == list(range(4096))  # each row once
    True
    """
    return Loader(dataset, **options)
