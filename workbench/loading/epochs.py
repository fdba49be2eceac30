"""An epoch as the consumer iterates it: :func:`start_pass`, the pass a loader's config asks
for (in the caller, on read-ahead threads or in worker processes), and :class:`EpochIterator`,
which swaps that pass for a new one at a batch boundary when the loader was reconfigured. Both
know the :class:`~workbench.loading.loaders.Loader` only through the callbacks it gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from .fetch import Fetch
from .passes import FetchSpec, Key, OnBatch, Pass, SyncPass
from .threads import ThreadPass
from .workers.pool import KeptWorkers
from .workers.processes import ProcessPass

__all__: list[str] = []


def start_pass(
    cfg: Any,
    fetch: Fetch,
    keys: Iterator[Key],
    on_batch: OnBatch,
    on_end: Callable[[], None],
    kept: KeptWorkers,
) -> Pass:
    """The pass that reads ``keys`` under ``cfg`` (a ``LoaderConfig``): in the caller without
    workers, else on threads or in worker processes (kept in ``kept`` between passes)."""
    pin = cfg.pin_memory and torch.cuda.is_available()  # no CUDA: nothing to pin for
    spec = FetchSpec(
        fetch,
        cfg.num_workers,
        cfg.prefetch_factor,
        pin,
        cfg.timeout,
        cfg.multiprocessing_context,
        cfg.worker_init_fn,
        cfg.pin_memory_device,
        cfg.keeps_workers,
    )
    if cfg.num_workers == 0:
        return SyncPass(spec, keys, on_batch, on_end)
    if cfg.worker_type == "thread":
        return ThreadPass(spec, keys, on_batch, on_end)
    return ProcessPass(spec, keys, on_batch, on_end, kept=kept)


class EpochIterator:
    """A pass over the epoch as the consumer sees it, starting with ``first``. After
    :meth:`renew_at_next_batch` the pass is swapped at the next batch boundary for
    ``renew(old)``: the pass reading the rest of the epoch under the new settings, ``old``
    closed (None: nothing changed, ``old`` reads on). ``on_close()`` runs when it is closed."""

    def __init__(
        self, first: Pass, renew: Callable[[Pass], Pass | None], on_close: Callable[[], None]
    ) -> None:
        self._pass, self._renew, self._on_close = first, renew, on_close
        self._swap = self._done = False

    def __iter__(self) -> EpochIterator:
        return self

    def __next__(self) -> Any:
        if self._swap and not self._done:  # the hot path pays one check
            self._swap = False
            renewed = self._renew(self._pass)
            if renewed is not None:
                self._pass = renewed
        try:
            return next(self._pass)
        except StopIteration:
            self._done = True
            raise

    @property
    def done(self) -> bool:
        """Whether the epoch ended (no pass will be renewed)."""
        return self._done

    def renew_at_next_batch(self) -> None:
        """Swap the pass at the next batch boundary (the loader was reconfigured)."""
        self._swap = True

    def in_flight(self) -> int:
        return self._pass.in_flight()

    def pids(self) -> list[int]:
        return self._pass.pids()

    def close(self) -> None:
        self._pass.close()
        self._on_close()
