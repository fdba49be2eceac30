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
  Windows are built lazily from ``(seed, epoch, window index)``: memory per step is
  O(window*block_rows) plus the block permutation (n/block_rows ints).

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
from collections.abc import Iterator
from typing import Any

import numpy as np

from workbench.errors import IncompatibleResumeError, InvalidInputError

__all__ = ["ORDERS", "BatchSampler", "epoch_order"]

ORDERS = ("sequential", "full", "block", "shard")
_STATE_KEYS = ("num_rows", "batch_size", "order", "seed", "block_rows", "window", "rank",
               "world_size", "drop_last")


def _int(name: str, value: object, low: int, hint: str) -> int:
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"{name}={value!r} is not an integer; {hint}") from None
    if v < low:
        raise InvalidInputError(f"{name}={v} is below {low}; {hint}")
    return int(v)


class _EpochOrder:
    """Random access to positions ``[start, stop)`` of one epoch's global order (before padding)."""

    def __init__(self, n: int, order: str, seed: int, epoch: int, block_rows: int, window: int,
                 batch_size: int, shard_rows: Any = None) -> None:
        self.n, self.order, self.key = n, order, (seed, epoch)
        self._perm: np.ndarray | None = None
        self._cache: tuple[int, np.ndarray] | None = None
        if order == "full":
            self._perm = np.random.default_rng([seed, epoch, 0]).permutation(n)
        elif order == "shard" and shard_rows is not None and len(shard_rows):
            # the shards, permuted, each one a block: a window holds `window` shards' worth of rows
            rows_of = np.asarray(shard_rows, dtype=np.int64)
            first = np.concatenate([[0], np.cumsum(rows_of)[:-1]]).astype(np.int64)
            self._blocks = np.random.default_rng([seed, epoch, 3]).permutation(len(rows_of))
            self._row0 = first[self._blocks]
            sizes = rows_of[self._blocks]
            # at least the largest shard, so no shard is needed by more than two windows
            rows = max(window * n / len(rows_of), int(rows_of.max()))
            self.span = max(1, -(-int(rows) // batch_size)) * batch_size
            self._starts = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=self._starts[1:])
        elif order in ("block", "shard"):  # shard order without shards: blocks stand in for them
            self.block_rows = block_rows
            self.span = max(1, (window * block_rows) // batch_size) * batch_size
            full, tail = divmod(n, block_rows)
            # A short last block goes last, so it cannot add a block to a window in the middle.
            self._blocks = np.random.default_rng([seed, epoch, 1]).permutation(full)
            sizes = np.full(full, block_rows, dtype=np.int64)
            if tail:
                self._blocks = np.append(self._blocks, full)
                sizes = np.append(sizes, tail)
            self._starts = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=self._starts[1:])
            self._row0 = self._blocks * block_rows

    def _window(self, w: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == w:
            return self._cache[1]
        pos = np.arange(w * self.span, min((w + 1) * self.span, self.n), dtype=np.int64)
        b = np.searchsorted(self._starts, pos, side="right") - 1
        rows = self._row0[b] + (pos - self._starts[b])
        np.random.default_rng([*self.key, 2, w]).shuffle(rows)
        self._cache = (w, rows)
        return rows

    def take(self, start: int, stop: int) -> np.ndarray:
        """Rows at positions ``[start, stop)``; positions past n wrap around to the start."""
        parts = []
        while start < stop:
            p = start % self.n
            end = min(stop - start, self.n - p)
            if self.order == "sequential":
                parts.append(np.arange(p, p + end, dtype=np.int64))
            elif self.order == "full":
                assert self._perm is not None
                parts.append(self._perm[p:p + end])
            else:
                w = p // self.span
                end = min(end, (w + 1) * self.span - p)
                parts.append(self._window(w)[p - w * self.span:p - w * self.span + end])
            start += end
        return np.concatenate(parts) if len(parts) != 1 else parts[0]


def epoch_order(num_rows: int, order: str, seed: int = 0, epoch: int = 0, block_rows: int = 4096,
                window: int = 8, batch_size: int = 1) -> np.ndarray:
    """The global order of one epoch (before padding and rank split), as int64 row indices.

    ``batch_size`` matters only for ``"block"`` (windows are rounded to whole batches).

    >>> epoch_order(6, "full", seed=1, epoch=2)   # a permutation of 0..5
    array([4, 5, 1, 0, 3, 2])
    >>> epoch_order(6, "sequential")
    array([0, 1, 2, 3, 4, 5])
    """
    s = BatchSampler(num_rows, batch_size, order=order, seed=seed, block_rows=block_rows,
                     window=window)
    if num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    return np.array(s._epoch_order(epoch).take(0, num_rows), dtype=np.int64)


class BatchSampler:
    """Yields batches of sorted int64 row indices; usable as a DataLoader ``batch_sampler=``.

    See the module docstring for the orders, the rank split and the remainder policy.

    >>> s = BatchSampler(1000, 64, order="full", seed=0); s.set_epoch(3)
    >>> batches = list(s); len(batches), len(s), batches[-1].shape   # 15 full batches + 40 rows
    (16, 16, (40,))
    >>> np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))   # each row once
    True
    """

    def __init__(self, num_rows: int, batch_size: int, order: str = "block", seed: int = 0,
                 block_rows: int = 4096, window: int = 8, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, shard_rows: Any = None) -> None:
        if order not in ORDERS:
            raise InvalidInputError(f"order={order!r} is unknown; pass one of {ORDERS}")
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
        self.order, self.drop_last = order, bool(drop_last)
        self._shard_rows = None if shard_rows is None else [int(r) for r in shard_rows]
        if self._shard_rows is not None and sum(self._shard_rows) != self.num_rows:
            raise InvalidInputError(f"shard_rows sum to {sum(self._shard_rows)}, not num_rows="
                                    f"{self.num_rows}; pass the dataset's shard sizes")
        self.epoch, self.batches_done = 0, 0
        self._resume_from = 0
        self._order: _EpochOrder | None = None
        self._plan(0)

    def _plan(self, offset: int) -> None:
        """Split the epoch's global order from position ``offset`` on (0, or where an elastic
        resume picks up) between the ranks; see the remainder policy in the module docstring."""
        w, b = self.world_size, self.batch_size
        rest = max(0, self.num_rows - offset)
        self._offset = offset
        self._total = (rest // (w * b)) * w * b if self.drop_last else -(-rest // w) * w
        self._per_rank = self._total // w

    def __len__(self) -> int:
        return -(-self._per_rank // self.batch_size)

    padded_rows = property(lambda self: max(0, self._total - self.num_rows),
                           doc="Rows of the epoch's order repeated to pad it (0 with drop_last, W=1).")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration yields, from its start.

        Calling it with the epoch just restored by :meth:`load_state_dict` keeps the resume point,
        so a ``for epoch in range(start, end): sampler.set_epoch(epoch)`` loop resumes correctly.
        """
        epoch = _int("epoch", epoch, 0, "pass a non-negative epoch number")
        if epoch != self.epoch:
            self.epoch, self.batches_done, self._resume_from = epoch, 0, 0
            self._plan(0)

    def _epoch_order(self, epoch: int) -> _EpochOrder:
        key = (self.seed, epoch)
        if self._order is None or self._order.key != key:
            self._order = _EpochOrder(self.num_rows, self.order, self.seed, epoch, self.block_rows,
                                      self.window, self.batch_size, self._shard_rows)
        return self._order

    def _batch(self, order: _EpochOrder, k: int) -> np.ndarray:
        b, w = self.batch_size, self.world_size
        size = min(b, self._per_rank - k * b)
        start = self._offset + k * w * b + self.rank * size
        rows = np.array(order.take(start, start + size), dtype=np.int64)
        rows.sort()
        return rows

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
            self._epoch_order(self.epoch)._blocks.tolist()

    def rows_done(self, batches: int) -> int:
        """Positions of the epoch's global order consumed by all ranks after ``batches`` batches
        each: what an elastic resume at another world size starts from."""
        return self._offset + min(batches * self.world_size * self.batch_size, self._total)

    def state_dict(self, batches_done: int | None = None) -> dict[str, Any]:
        """JSON-able position: the epoch, the batches of it yielded (or ``batches_done``, the
        ones a prefetching loader delivered) and the global rows they cover, plus the settings."""
        done = self.batches_done if batches_done is None else batches_done
        state = {k: getattr(self, k) for k in _STATE_KEYS}
        return {**state, "epoch": self.epoch, "batches_done": done, "rows_offset": self._offset,
                "rows_done": self.rows_done(done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next iteration resume right after the last batch recorded in ``state``.

        A state saved at another world size (or rank) resumes *elastically*: the epoch's global
        order is the same, so the rows not yet read (from ``rows_done`` on) are split between the
        ranks now present, and every remaining row is read once. That epoch then has fewer
        batches; the next epochs are whole again.
        """
        elastic = (state.get("world_size", self.world_size) != self.world_size
                   or state.get("rank", self.rank) != self.rank or state.get("rows_offset", 0))
        fixed = [k for k in _STATE_KEYS if k not in ("rank", "world_size")] if elastic else _STATE_KEYS
        changed = [k for k in fixed if k in state and state[k] != getattr(self, k)]
        if changed:
            diff = ", ".join(f"{k}: saved {state[k]!r} now {getattr(self, k)!r}" for k in changed)
            raise IncompatibleResumeError(
                f"sampler state does not match this sampler ({diff}); build the sampler with the "
                "saved settings or start from a fresh state")
        epoch = _int("epoch", state.get("epoch", 0), 0, "pass a state from state_dict()")
        if elastic:
            if "rows_done" not in state:
                raise IncompatibleResumeError(
                    "this state has no rows_done (saved by an older workbench), so it can resume "
                    f"only at its own world_size={state.get('world_size')} and rank={state.get('rank')}")
            rows = _int("rows_done", state["rows_done"], 0, "pass a state from state_dict()")
            self.epoch, self.batches_done, self._resume_from = epoch, 0, 0
            self._plan(rows)
            return
        done = _int("batches_done", state.get("batches_done", 0), 0,
                    "pass a state from state_dict()")
        self._plan(0)
        if done > len(self):
            raise InvalidInputError(f"batches_done={done} exceeds the {len(self)} batches per epoch; "
                                    "pass a state saved from a sampler with the same settings")
        self.epoch, self.batches_done, self._resume_from = epoch, done, done
