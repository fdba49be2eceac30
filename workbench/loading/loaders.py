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
from collections.abc import Callable, Iterator
from typing import Any

from ..monitoring.metrics import BatchEvent
from .advice import Advisor
from .automatic import window_note
from .batches import keep_batch_memory
from .config import LoaderConfig
from .epochs import EpochIterator
from .feeds import Feed, sampler_for, shard_cache
from .fetch import Capabilities, check_dataset
from .options import refuse_samplers, takes_loader_options
from .passes import Pass

__all__ = ["Loader", "loader"]

_OPTIONS = frozenset(f.name for f in dataclasses.fields(LoaderConfig)) - {"block_rows", "shuffle"}


@takes_loader_options
class Loader:
    """Batches of any map-style ``dataset``, read ahead, in order, resumable; see :func:`loader`.

    The options keep ``torch.utils.data.DataLoader``'s names and meanings (the README maps each
    one) and add ours (``seed``, ``worker_type``, ``transform``, ``rank``/``world_size``,
    ``window``, ``run_rows``, ``block_rows``); ``loader.config`` holds them all, resolved (a
    :class:`~workbench.loading.config.LoaderConfig`), ``loader.<option>`` reads one, and
    ``reconfigure`` changes them while it runs. Each full pass advances the epoch, so
    consecutive ``for`` loops see new orders; ``set_epoch`` picks one. ``state_dict`` records
    the epoch's rows delivered (not read ahead); ``stages`` times their stages.

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
        self._feed = Feed(dataset)  # set first, as __del__ closes its workers
        check_dataset(dataset)
        refuse_samplers(options)
        self.dataset = dataset
        self._can = can = Capabilities.of(dataset)  # what it offers beyond __getitem__, asked once
        self._cache = cache = shard_cache(dataset)  # a streamed one's: shard order's window fits
        self.config = cfg = LoaderConfig.build(can.row_nbytes, can.reads_ahead, cache, **options)
        self.sampler, self.block_rows_from = sampler_for(len(dataset), cfg, can)
        self.block_rows = self.sampler.block_rows
        self.stats, self.stages = self._feed.stats, self._feed.stages
        self._epoch = 0
        self._pending: LoaderConfig | None = None
        self._lock = threading.RLock()  # changes are applied by one thread at a time

    order = property(lambda self: self.sampler.order, doc="The running epoch's order.")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_OPTIONS})

    def __getattr__(self, name: str) -> Any:
        # the options, as DataLoader exposes them (loader.batch_size, loader.num_workers, ...)
        if name in _OPTIONS and "config" in self.__dict__:
            return getattr(self.config, name)
        raise AttributeError(f"'Loader' object has no attribute {name!r}")

    def __repr__(self) -> str:
        return (
            f"Loader({type(self.dataset).__name__} of {len(self.dataset):,} rows, "
            f"batch_size={self.batch_size}, shuffle={self.order!r}, num_workers={self.num_workers}"
            f" ({self.worker_type}{'; ' + self._feed.kept.shm if self._feed.kept.shm else ''}),"
            f" block_rows={self.block_rows:,} ({self.block_rows_from})"
            f"{window_note(self.config, self._cache)})"
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass (a resumed position in that epoch is kept).

        Parameters
        ----------
        epoch : int
            The epoch number (0 or more); with ``seed`` it picks the order.
        """
        self.sampler.set_epoch(epoch)
        if epoch != self._epoch:
            self._feed.position = 0
        self._epoch = int(epoch)

    def reconfigure(self, **changes: Any) -> LoaderConfig:
        """Change options at the next batch boundary (``shuffle`` from the next epoch), without
        losing the epoch: every row of it is still delivered once. Read-ahead batches are
        dropped and readers rebuilt.

        Parameters
        ----------
        **changes
            New values of ``batch_size``, ``num_workers``, ``worker_type``, ``prefetch_factor``,
            ``pin_memory``, ``window``, ``run_rows`` or ``shuffle`` (None: automatic).

        Returns
        -------
        LoaderConfig
            The config that will apply.

        Raises
        ------
        InvalidInputError
            A change to another option, or an invalid value (or a window its cache can't hold).

        Examples
        --------
        >>> dl = loader(wb.open_dataset({"y": np.arange(1000)}), batch_size=100)
        >>> it = iter(dl); first = next(it); dl.reconfigure(batch_size=300).batch_size
        300
        >>> [len(b["y"]) for b in it], dl.batch_size   # the rest of the epoch, each row once
        ([300, 300, 300], 300)
        """
        with self._lock:  # atomic with __iter__: a pass starting now sees the change or waits
            cfg = (self._pending or self.config).with_changes(
                self._can.row_nbytes, self._can.reads_ahead, self._cache, **changes
            )
            self._pending = cfg
            it = self._feed.current()
            if it is None or it.done:  # not iterating: nothing to wait for
                self._apply_pending()
            else:
                it.renew_at_next_batch()
        return cfg

    def _apply_pending(self) -> None:
        with self._lock:
            cfg, self._pending = self._pending, None
            if cfg is not None:
                old, self.config = self.config, cfg
                self._feed.apply(old, cfg, self.sampler)

    def __iter__(self) -> Iterator[Any]:
        self._feed.end()
        keep_batch_memory()
        with self._lock:
            self._apply_pending()
            self.sampler.set_epoch(self._epoch)
            it = EpochIterator(self._new_pass(), self._renew, self._stop_advice)
            self._feed.track(it)
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
        return self._feed.start(
            self.config, self.sampler, self._epoch, self._can.plans_reads, self._finish_epoch
        )

    def subscribe(self, fn: Callable[[BatchEvent], None]) -> Callable[[], None]:
        """Call ``fn(event)`` for every delivered batch, on the consumer's thread (keep it cheap).

        Parameters
        ----------
        fn : callable
            Called with a :class:`~workbench.monitoring.metrics.BatchEvent` per batch.

        Returns
        -------
        callable
            Call it (no arguments) to unsubscribe ``fn``.
        """
        return self._feed.subscribe(fn)

    def read_ahead(self) -> int:
        """Batches read ahead of the consumer right now.

        Returns
        -------
        int
            Batches fetched and not yet delivered (0 in-process or between passes).
        """
        return self._feed.in_flight()

    def worker_pids(self) -> dict[int, str]:
        """The worker processes reading for this loader now, or kept between passes
        (``persistent_workers``); none for threads.

        Returns
        -------
        dict
            ``{pid: name}``, e.g. ``{4242: "loader worker 0"}``.
        """
        return {pid: f"loader worker {i}" for i, pid in enumerate(self._feed.pids())}

    def _finish_epoch(self) -> None:
        self._stop_advice()
        self._epoch, self._feed.position = self._epoch + 1, 0
        self.sampler.set_epoch(self._epoch)  # a whole epoch again after an elastic resume

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the epoch, the batches delivered in it (not those read ahead) and
        the rows they cover, so a loader with another batch size resumes exactly too.

        Returns
        -------
        dict
            What :meth:`load_state_dict` resumes from (a ``BatchSampler`` state).
        """
        return {**self.sampler.state_dict(self._feed.position), "epoch": self._epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the next pass starts at its epoch, after its delivered batches.

        Parameters
        ----------
        state : dict
            A :meth:`state_dict`, of this loader or one over the same rows and seed.

        Raises
        ------
        IncompatibleResumeError
            The state was saved under other fixed settings (rows, seed, block_rows, drop_last).
        """
        self._feed.end()
        self._apply_pending()
        self.sampler.load_state_dict(state)
        self._epoch, self._feed.position = self.sampler.epoch, self.sampler.batches_done

    def _stop_advice(self) -> None:
        if isinstance(self.sampler.advise, Advisor):  # no read-ahead for a pass that is over
            self.sampler.advise.cancel()

    def close(self) -> None:
        """Stop the reader threads or worker processes of the pass in progress, if any, and
        persistent workers."""
        self._feed.end()
        self._feed.kept.release()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if Feed is not None:  # None at interpreter exit: module globals are gone by then
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
    >>> dl = loader(ds, batch_size=1024, shuffle="full", seed=1, num_workers=2)  # 2 threads
    >>> sorted(torch.cat([b["y"] for b in dl]).tolist()) == list(range(4096))  # each row once
    True
    """
    return Loader(dataset, **options)
