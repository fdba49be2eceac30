"""Batch samplers: which rows go in which batch, per epoch and per rank (pure index logic).

>>> s = BatchSampler(10, 4, order="block", seed=0, block_rows=4, window=2)
>>> [b.tolist() for b in s]   # one window of blocks 0-1 (rows 0..7), then the short last block
[[1, 2, 3, 5], [0, 4, 6, 7], [8, 9]]

Orders (``ORDERS``): ``"sequential"`` (rows ``0..n-1``); ``"full"`` (a uniform permutation per
epoch, from ``(seed, epoch)``; n int64); ``"block"`` (FFCV-style: storage-aligned blocks permuted,
rows shuffled within windows of about ``window`` blocks); ``"shard"`` (WebDataset's and Mosaic's
idea for streamed data: shards permuted, rows shuffled within windows of ``window`` shards;
``"block"`` without shard sizes). How windows and ranks cut an epoch: ``loading.splits``. A
batch's indices are sorted: row order inside a batch does not change the gradient, and sorted
indices let the reader coalesce neighbouring rows into range reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .orders import ORDERS, WINDOWED, EpochOrder
from .resume import STATE_KEYS, known_order, ranks, read_state, saved_state, setting, shard_sizes
from .splits import RankSplit, relayout

__all__ = ["ORDERS", "BatchSampler"]


class BatchSampler:
    """Yields batches of sorted int64 row indices; usable as a DataLoader ``batch_sampler=``.

    See the module docstring for the orders, ``workbench.loading.splits`` for how windows and
    ranks cut them.

    Parameters
    ----------
    num_rows, batch_size, seed : int
        Rows in the dataset (its ``len()``); rows a batch (the last may be short); with the
        epoch, the seed (default 0) picks the order: the same pair gives the same batches.
    order : {"block", "sequential", "full", "shard"}, default "block"
        The epoch's order (``ORDERS``).
    block_rows, window : int, default 4096, 8
        Rows a storage block, the unit the block order permutes; blocks (or shards) a window of
        the block and shard orders mixes.
    rank, world_size : int, default 0, 1
        This data-parallel rank and the ranks in all: each rank yields its share of every batch.
    drop_last : bool, default False
        Cut the epoch to whole batches on every rank, rather than pad it by repeating rows.
    shard_rows : sequence of int, optional
        Rows in each shard, in storage order (summing to ``num_rows``): the shard order's unit.
    run_rows : int, default 1
        Block and shard orders: a window is shuffled in runs of this many consecutive rows.
    epoch_stride : int, default 0
        Epoch ``e``'s indices are offset by ``e * epoch_stride``: for a dataset that numbers its
        rows across epochs (``epoch_rows``, as ``wb.mix`` does); 0: none.

    Raises
    ------
    InvalidInputError
        A value out of range, an unknown order, or shard sizes that do not sum to ``num_rows``.

    Examples
    --------
    >>> s = BatchSampler(1000, 64, order="full", seed=0); s.set_epoch(3)
    >>> batches = list(s); len(batches), len(s), batches[-1].shape   # 15 full batches + 40 rows
    (16, 16, (40,))
    >>> np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))   # each row once
    True
    """

    # told the storage runs (first rows, lengths) a pass reads next, once a window, to read them
    # ahead (a loader sets an ``_advice.Advisor`` over its dataset's ``will_need``); None: nobody
    advise: Callable[[np.ndarray, np.ndarray], Any] | None = None

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        order: str = "block",
        seed: int = 0,
        block_rows: int = 4096,
        window: int = 8,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        shard_rows: Any = None,
        run_rows: int = 1,
        epoch_stride: int = 0,
    ) -> None:
        self.order = self._next_order = known_order(order)
        self.epoch_stride = int(epoch_stride)
        self.run_rows = setting("run_rows", run_rows)
        self.num_rows = setting("num_rows", num_rows)
        self.batch_size = setting("batch_size", batch_size)
        self.block_rows = setting("block_rows", block_rows)
        self.window = setting("window", window)
        self.rank, self.world_size = ranks(rank, world_size)
        self.seed = setting("seed", seed)
        self.drop_last = bool(drop_last)
        self._shard_rows = shard_sizes(shard_rows, self.num_rows)
        self.epoch = self.batches_done = self._resume_from = 0
        self._order: EpochOrder | None = None
        self._segments: list[tuple[int, int, int]] | None = None  # None: one, from the settings
        self._plan(0, 0)

    def _plan(self, offset: int, first_batch: int) -> None:
        """Split the epoch's order from position ``offset`` on between the ranks."""
        w, b = self.world_size, self.batch_size
        self._split = RankSplit(self.num_rows, offset, first_batch, b, self.rank, w, self.drop_last)

    def __len__(self) -> int:
        return len(self._split)

    padded_rows = property(
        lambda self: self._split.padded_rows(self.num_rows),
        doc="Rows of the epoch's order repeated to pad it (0 with drop_last, W=1).",
    )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields, from its start.

        Calling it with the epoch just restored by :meth:`load_state_dict` keeps the resume point,
        so a ``for epoch in range(start, end): sampler.set_epoch(epoch)`` loop resumes correctly.

        Parameters
        ----------
        epoch : int
            The epoch number (0 or more); with ``seed`` it picks the order.
        """
        epoch = setting("epoch", epoch)
        if epoch != self.epoch:
            self.epoch, self.batches_done, self._resume_from = epoch, 0, 0
            self.order, self._segments = self._next_order, None
            self._plan(0, 0)

    def _epoch_order(self, epoch: int) -> EpochOrder:
        key = (self.seed, epoch)
        if self._order is None or self._order.key != key or self._order.order != self.order:
            self._order = EpochOrder(
                self.num_rows, self.order, self.seed, epoch, self.block_rows, self._shard_rows
            )
            self._segments = self._segments or [
                (0, self._order.span(self.window, self.batch_size), self.run_rows)
            ]
            self._order.set_segments(self._segments)
        return self._order

    def reconfigure(
        self,
        batches_done: int,
        *,
        batch_size: int | None = None,
        window: int | None = None,
        order: str | None = None,
        run_rows: int | None = None,
    ) -> None:
        """Go on after ``batches_done`` batches of this epoch with new settings.

        The rows already read keep their places in the epoch's order: the rest are read exactly
        once, from a batch boundary on. With ranks, every rank must make the same change after
        the same batch.

        Parameters
        ----------
        batches_done : int
            Batches of this epoch already consumed (by this rank).
        batch_size, window, run_rows : int, optional
            The new values, from the next batch on (None: unchanged).
        order : str, optional
            The order from the next epoch on (None: unchanged).

        Examples
        --------
        >>> s = BatchSampler(100, 10, order="block", block_rows=8, window=2)
        >>> first = [next(iter(s)) for _ in range(1)]; s.reconfigure(1, batch_size=25)
        >>> rows = np.concatenate(first + list(s)); len(rows), len(np.unique(rows))
        (100, 100)
        """
        b = self.batch_size if batch_size is None else setting("batch_size", batch_size)
        w = self.window if window is None else setting("window", window)
        r = self.run_rows if run_rows is None else setting("run_rows", run_rows)
        if order is not None:
            self._next_order = known_order(order)
        p = self.rows_done(batches_done)
        changed = (b, w, r) != (self.batch_size, self.window, self.run_rows)
        if self.order in WINDOWED and changed and p < self.num_rows:
            epoch_order = self._epoch_order(self.epoch)
            layout = relayout(epoch_order, self._segments, p, b, w, r)
            if layout is not None:
                self._segments = layout
                epoch_order.set_segments(layout)
        self.batch_size, self.window, self.run_rows = b, w, r
        self.batches_done = self._resume_from = batches_done
        self._plan(p, batches_done)

    def _batch(self, order: EpochOrder, k: int) -> np.ndarray:
        start, size = self._split.positions(k)
        if self.advise is not None:
            for runs in order.ahead(start, start + size):
                self.advise(*runs)
        if self.epoch_stride:
            return order.batch(start, size) + order.key[1] * self.epoch_stride
        return order.batch(start, size)

    def __iter__(self) -> Iterator[np.ndarray]:
        start, self._resume_from = self._resume_from, 0
        self.batches_done = start
        return self._run(self.epoch, start)

    def _run(self, epoch: int, start: int) -> Iterator[np.ndarray]:
        order = self._epoch_order(epoch)
        for k in range(start, len(self)):
            batch = self._batch(order, k)
            self.batches_done = k + 1  # counted before the yield: the consumer holds it now
            yield batch

    def shard_plan(self) -> list[int] | None:
        """The order this epoch needs its shards in, if known ahead.

        Returns
        -------
        list of int or None
            Shard numbers in reading order (shard, sequential orders over shards), else None.
        """
        if self._shard_rows is None or self.order not in ("shard", "sequential"):
            return None
        return (
            list(range(len(self._shard_rows)))
            if self.order == "sequential"
            else self._epoch_order(self.epoch).block_order()
        )

    def rows_done(self, batches: int) -> int:
        """Positions of the epoch's global order consumed by all ranks after ``batches`` batches
        each: what a resume at another world size or batch size starts from.

        Parameters
        ----------
        batches : int
            Batches of this epoch each rank consumed.

        Returns
        -------
        int
            Positions of the epoch's order they cover, padding included.
        """
        return self._split.rows_done(batches)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """JSON-able position: the epoch, the batches of it yielded and the global rows they
        cover, plus the settings and the epoch's window layout.

        Parameters
        ----------
        batches_done : int, optional
            The batches to record (default: those yielded; a loader passes those it delivered).

        Returns
        -------
        dict
            What :meth:`load_state_dict` resumes from.
        """
        done = self.batches_done if batches_done is None else batches_done
        self._epoch_order(self.epoch)
        now = {k: getattr(self, k) for k in STATE_KEYS}
        return saved_state(now, self.epoch, done, self._split, self._segments)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration resume right after the last batch recorded in ``state``.

        The epoch's order comes from the state (its order name and window layout), so the rows
        not yet read are read once even when this sampler has another ``batch_size``, ``window``
        or ``shuffle`` (those apply from the next epoch or batch on). A state saved at another
        world size (or rank) resumes *elastically*: the rows not yet read (from ``rows_done`` on)
        are split between the ranks now present; that epoch has fewer batches, the next whole.

        Parameters
        ----------
        state : dict
            A :meth:`state_dict`, of this sampler or one with the same fixed settings.

        Raises
        ------
        IncompatibleResumeError
            ``num_rows``, ``seed``, ``block_rows`` or ``drop_last`` differ, or an old state
            without ``rows_done`` meets another rank split.
        InvalidInputError
            The state names more batches than its epoch has, or holds invalid values.
        """
        at = read_state(state, {k: getattr(self, k) for k in STATE_KEYS})
        self.epoch, self._order, self.order, self._segments = at.epoch, None, at.order, at.windows
        self._plan(at.offset, at.first_batch)
        if at.done > len(self):
            raise InvalidInputError(
                f"batches_done={at.done} exceeds the {len(self)} batches per epoch; pass a state "
                "saved from a sampler with the same settings"
            )
        self.batches_done = self._resume_from = at.done
