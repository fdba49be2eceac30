"""Batch samplers: which rows go in which batch, per epoch and per rank (pure index logic).

>>> s = BatchSampler(10, 4, order="block", seed=0, block_rows=4, window=2)
>>> [b.tolist() for b in s]   # one window of blocks 0-1 (rows 0..7), then the short last block
[[1, 2, 3, 5], [0, 4, 6, 7], [8, 9]]

Orders (``ORDERS``):

- ``"sequential"``: rows ``0..n-1``.
- ``"full"``: a uniform permutation per epoch, seeded from ``(seed, epoch)``; materialises n int64.
- ``"shard"``: for streamed data (WebDataset's / Mosaic's idea): shards are permuted and rows
  shuffled within windows of ``window`` shards' rows (at least the largest shard), so a shard is
  needed by two consecutive windows at most and fetched once per epoch by a cache holding what one
  window touches (about ``window + 2`` shards). Without shard sizes it is ``"block"``.
- ``"block"``: FFCV-style quasi-random. Rows are split into storage-aligned blocks
  ``[k*block_rows, (k+1)*block_rows)``; the blocks are permuted, giving a stream of rows that is
  contiguous inside each block. That stream is cut into *windows* of ``window*block_rows`` rows rounded
  down to a whole number of batches (at least one batch), and the rows of each window are shuffled.
  A block cut by a window's edge carries its remaining rows into the next window, so every batch is
  full (but the epoch's last) and lies inside one window, and touches at most
  ``max(window, ceil(batch_size/block_rows)) + 1`` blocks (the +1: windows need not start on a
  block boundary; the dataset's short last block, if any, always ends the stream so it cannot add one).
  Windows are built lazily from ``(seed, epoch, window start)``: memory per step is
  O(window*block_rows) plus the block permutation (n/block_rows ints). ``reconfigure`` changes
  ``batch_size`` or ``window`` mid-epoch: the rest of the epoch is laid out anew from the first
  batch boundary after the current window (that one batch may straddle two windows), and every
  row is still read exactly once (``workbench.loading.orders``).

``run_rows`` R > 1 (block and shard orders) shuffles each window in runs of R consecutive rows,
so a batch is B/R contiguous runs (copied at memory speed) from across the window; R=1 mixes
single rows. ``workbench.loading.orders.shuffle_quality`` says what each choice costs in mixing.

Within a batch indices are sorted ascending: the order of rows inside a batch does not change the
gradient, and sorted indices let the reader coalesce neighbouring rows into range reads.

Rank sharding and the remainder policy, applied to the epoch's global order ``g`` (length n) with
``W = world_size`` and ``B = batch_size``:

- ``drop_last=False``: ``g`` is padded to ``T = ceil(n/W)*W`` rows by repeating its first ``T-n`` rows
  (cycling through ``g`` again if ``n < T-n``), as torch's ``DistributedSampler`` does. So fewer than W
  rows per epoch are extra copies, on other ranks than their first copy's unless ``n < W``; with
  ``W=1`` nothing is padded and every row appears exactly once. Each rank gets ``T/W`` rows: full batches and possibly one final partial batch,
  of the same size on every rank.
- ``drop_last=True``: ``g`` is cut to ``T = floor(n/(W*B))*W*B`` rows: no row repeats, all batches are
  full, and the tail of the epoch's order (different rows each shuffled epoch) is skipped.

Global batch ``k`` covers ``g[k*W*B : (k+1)*W*B]``; rank ``r`` takes the ``r``-th contiguous slice of it,
so each rank's batch keeps the locality of the block order (every batch but, with ``W>1``, the
epoch's final one, which may be partial or padded by wrapping and straddle two windows). Every rank yields ``len(sampler)`` batches.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import IncompatibleResumeError, InvalidInputError
from .orders import ORDERS, WINDOWED, EpochOrder, segments

__all__ = ["ORDERS", "BatchSampler"]

# fixed for a sampler's life: a state saved under other values cannot name the same rows
_FIXED_KEYS = ("num_rows", "seed", "block_rows", "drop_last")
_STATE_KEYS = (*_FIXED_KEYS, "batch_size", "order", "window", "run_rows", "rank", "world_size")


def _int(name: str, value: object, low: int, hint: str) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"{name}={value!r} is not an integer; {hint}") from None
    if v < low:
        raise InvalidInputError(f"{name}={v} is below {low}; {hint}")
    return int(v)


def _order(order: object) -> str:
    if order not in ORDERS:
        raise InvalidInputError(f"order={order!r} is unknown; pass one of {ORDERS}")
    return str(order)


class BatchSampler:
    """Yields batches of sorted int64 row indices; usable as a DataLoader ``batch_sampler=``.

    See the module docstring for the orders, the rank split and the remainder policy.

    >>> s = BatchSampler(1000, 64, order="full", seed=0); s.set_epoch(3)
    >>> batches = list(s); len(batches), len(s), batches[-1].shape   # 15 full batches + 40 rows
    (16, 16, (40,))
    >>> np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))   # each row once
    True
    """

    # told the storage runs (first rows, lengths) a pass reads next, once a window, to read them
    # ahead (a loader sets an ``_advice.Advisor`` over its dataset's ``will_need``); None: nobody
    advise: Callable[[np.ndarray, np.ndarray], Any] | None = None

    def __init__(self, num_rows: int, batch_size: int, order: str = "block", seed: int = 0,
                 block_rows: int = 4096, window: int = 8, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, shard_rows: Any = None, run_rows: int = 1) -> None:
        self.order = self._next_order = _order(order)
        self.run_rows = _int("run_rows", run_rows, 1, "pass the rows per contiguous run, at least 1")
        self.num_rows = _int("num_rows", num_rows, 0, "pass the dataset's len()")
        self.batch_size = _int("batch_size", batch_size, 1, "pass a batch_size of at least 1")
        self.block_rows = _int("block_rows", block_rows, 1,
                               "pass the dataset's block_rows (rows per storage chunk), at least 1")
        self.window = _int("window", window, 1, "pass how many blocks to mix at once, at least 1")
        self.world_size = _int("world_size", world_size, 1, "pass the number of ranks, at least 1")
        self.rank = _int("rank", rank, 0, "pass a rank in 0..world_size-1")
        if self.rank >= self.world_size:
            raise InvalidInputError(f"rank={self.rank} is out of range for world_size="
                                    f"{self.world_size}; pass a rank in 0..{self.world_size - 1}")
        self.seed = _int("seed", seed, 0, "pass a non-negative integer seed")
        self.drop_last = bool(drop_last)
        self._shard_rows = None if shard_rows is None else [int(r) for r in shard_rows]
        if self._shard_rows is not None and sum(self._shard_rows) != self.num_rows:
            raise InvalidInputError(f"shard_rows sum to {sum(self._shard_rows)}, not num_rows="
                                    f"{self.num_rows}; pass the dataset's shard sizes")
        self.epoch, self.batches_done = 0, 0
        self._resume_from = 0
        self._order: EpochOrder | None = None
        self._segments: list[tuple[int, int, int]] | None = None  # None: one, from the settings
        self._plan(0, 0)

    def _plan(self, offset: int, first_batch: int) -> None:
        """Split the epoch's global order from position ``offset`` on (0, or where a resume or a
        change of batch size picks up) between the ranks, numbering batches from ``first_batch``;
        see the remainder policy in the module docstring."""
        w, b = self.world_size, self.batch_size
        rest = max(0, self.num_rows - offset)
        self._offset, self._k0 = offset, first_batch
        self._total = (rest // (w * b)) * w * b if self.drop_last else -(-rest // w) * w
        self._per_rank = self._total // w

    def __len__(self) -> int:
        return self._k0 + -(-self._per_rank // self.batch_size)

    padded_rows = property(lambda self: max(0, self._offset + self._total - self.num_rows),
                           doc="Rows of the epoch's order repeated to pad it (0 with drop_last, W=1).")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields, from its start.

        Calling it with the epoch just restored by :meth:`load_state_dict` keeps the resume point,
        so a ``for epoch in range(start, end): sampler.set_epoch(epoch)`` loop resumes correctly.
        """
        epoch = _int("epoch", epoch, 0, "pass a non-negative epoch number")
        if epoch != self.epoch:
            self.epoch, self.batches_done, self._resume_from = epoch, 0, 0
            self.order, self._segments = self._next_order, None
            self._plan(0, 0)

    def _epoch_order(self, epoch: int) -> EpochOrder:
        key = (self.seed, epoch)
        if self._order is None or self._order.key != key or self._order.order != self.order:
            self._order = EpochOrder(self.num_rows, self.order, self.seed, epoch, self.block_rows,
                                     self._shard_rows)
            self._segments = self._segments or [
                (0, self._order.span(self.window, self.batch_size), self.run_rows)]
            self._order.set_segments(self._segments)
        return self._order

    def reconfigure(self, batches_done: int, *, batch_size: int | None = None,
                    window: int | None = None, order: str | None = None,
                    run_rows: int | None = None) -> None:
        """Go on after ``batches_done`` batches of this epoch with a new ``batch_size``,
        ``window`` or ``run_rows`` (``order`` applies from the next epoch). The rows already
        read keep their places in the epoch's order: the rest are read exactly once, from a
        batch boundary on.
        With ranks, every rank must make the same change after the same batch.

        >>> s = BatchSampler(100, 10, order="block", block_rows=8, window=2)
        >>> first = [next(iter(s)) for _ in range(1)]; s.reconfigure(1, batch_size=25)
        >>> rows = np.concatenate(first + list(s)); len(rows), len(np.unique(rows))
        (100, 100)
        """
        b = self.batch_size if batch_size is None else _int(
            "batch_size", batch_size, 1, "pass a batch_size of at least 1")
        w = self.window if window is None else _int(
            "window", window, 1, "pass how many blocks to mix at once, at least 1")
        r = self.run_rows if run_rows is None else _int(
            "run_rows", run_rows, 1, "pass the rows per contiguous run, at least 1")
        if order is not None:
            self._next_order = _order(order)
        p = self.rows_done(batches_done)
        changed = (b, w, r) != (self.batch_size, self.window, self.run_rows)
        if self.order in WINDOWED and changed and p < self.num_rows:
            epoch_order = self._epoch_order(self.epoch)
            w0, w1 = epoch_order.window_at(p)
            # a new layout from the first batch boundary at or after the current window's end
            start = p if p == w0 else p + -(-(w1 - p) // b) * b
            if start < self.num_rows:
                self._segments = [s for s in self._segments or [] if s[0] < start] + \
                    [(start, epoch_order.span(w, b), r)]
                epoch_order.set_segments(self._segments)
        self.batch_size, self.window, self.run_rows = b, w, r
        self.batches_done = self._resume_from = batches_done
        self._plan(p, batches_done)

    def _batch(self, order: EpochOrder, k: int) -> np.ndarray:
        b, w, k = self.batch_size, self.world_size, k - self._k0
        size = min(b, self._per_rank - k * b)
        start = self._offset + k * w * b + self.rank * size
        if self.advise is not None:
            for runs in order.ahead(start, start + size):
                self.advise(*runs)
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
        """The order this epoch needs its shards in, if known ahead (shard, sequential orders)."""
        if self._shard_rows is None or self.order not in ("shard", "sequential"):
            return None
        return list(range(len(self._shard_rows))) if self.order == "sequential" else \
            self._epoch_order(self.epoch).block_order()

    def rows_done(self, batches: int) -> int:
        """Positions of the epoch's global order consumed by all ranks after ``batches`` batches
        each: what a resume at another world size or batch size starts from."""
        done = max(0, batches - self._k0) * self.world_size * self.batch_size
        return self._offset + min(done, self._total)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """JSON-able position: the epoch, the batches of it yielded (or ``batches_done``, the
        ones a prefetching loader delivered) and the global rows they cover, plus the settings
        and the epoch's window layout."""
        done = self.batches_done if batches_done is None else batches_done
        self._epoch_order(self.epoch)
        state = {k: getattr(self, k) for k in _STATE_KEYS}
        return {**state, "epoch": self.epoch, "batches_done": done, "rows_offset": self._offset,
                "batches_offset": self._k0, "rows_done": self.rows_done(done),
                "windows": [list(s) for s in self._segments or []]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration resume right after the last batch recorded in ``state``.

        The epoch's order comes from the state (its order name and window layout), so the rows
        not yet read are read once even when this sampler has another ``batch_size``, ``window``
        or ``shuffle`` (those apply from the next epoch or batch on). A state saved at another
        world size (or rank) resumes *elastically*: the rows not yet read (from ``rows_done`` on)
        are split between the ranks now present. That epoch then has fewer batches; the next
        epochs are whole again.
        """
        changed = [k for k in _FIXED_KEYS if k in state and state[k] != getattr(self, k)]
        if changed:
            diff = ", ".join(f"{k}: saved {state[k]!r} now {getattr(self, k)!r}" for k in changed)
            raise IncompatibleResumeError(
                f"sampler state does not match this sampler ({diff}); build the sampler with the "
                "saved settings or start from a fresh state")
        epoch = _int("epoch", state.get("epoch", 0), 0, "pass a state from state_dict()")
        done = _int("batches_done", state.get("batches_done", 0), 0,
                    "pass a state from state_dict()")
        ranks = (state.get("world_size", self.world_size), state.get("rank", self.rank))
        same_plan = (ranks == (self.world_size, self.rank)
                     and state.get("batch_size", self.batch_size) == self.batch_size
                     and ("batches_offset" in state or not state.get("rows_offset", 0)))
        if not same_plan and "rows_done" not in state:
            raise IncompatibleResumeError(
                "this state has no rows_done (saved by an older workbench), so it can resume "
                f"only at its own world_size={state.get('world_size')} and rank={state.get('rank')}"
                f" and batch_size={state.get('batch_size')}")
        self.epoch, self._order = epoch, None
        self.order = _order(state.get("order", self.order))
        self._segments = segments(state["windows"]) if state.get("windows") else None
        if same_plan:
            self._plan(_int("rows_offset", state.get("rows_offset", 0), 0, "pass a saved state"),
                       _int("batches_offset", state.get("batches_offset", 0), 0, "a saved state"))
            if done > len(self):
                raise InvalidInputError(
                    f"batches_done={done} exceeds the {len(self)} batches per epoch; pass a state "
                    "saved from a sampler with the same settings")
            self.batches_done = self._resume_from = done
            return
        rows = _int("rows_done", state["rows_done"], 0, "pass a state from state_dict()")
        first = done if ranks[0] == self.world_size else 0
        self._plan(rows, first)
        self.batches_done = self._resume_from = first
