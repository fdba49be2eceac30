"""One epoch's global order of rows, before the rank split (pure index logic).

An order is a stream of positions ``0..n-1`` mapped to rows. The block and shard orders permute
storage blocks (or shards) and shuffle rows within *windows* of that stream. Windows are laid out
in *segments* ``(start position, span in rows)``: an epoch starts with one segment, and a loader
reconfigured mid-epoch (a new ``batch_size`` or ``window``) starts a new segment at a batch boundary
after the current window, so the rows already delivered keep their places and every row of the
epoch still appears exactly once.

>>> o = EpochOrder(10, "block", seed=0, epoch=0, block_rows=4)
>>> o.set_segments([(0, o.span(window=2, batch_size=4))])
>>> sorted(o.take(0, 10).tolist()) == list(range(10))
True
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

__all__ = ["epoch_order"]

ORDERS = ("sequential", "full", "block", "shard")
WINDOWED = ("block", "shard")


class EpochOrder:
    """Random access to positions ``[start, stop)`` of one epoch's order (``take``)."""

    def __init__(self, n: int, order: str, seed: int, epoch: int, block_rows: int,
                 shard_rows: Any = None) -> None:
        self.n, self.order, self.key = n, order, (seed, epoch)
        self._perm: np.ndarray | None = None
        self._cache: tuple[int, np.ndarray] | None = None
        self._segments: list[tuple[int, int]] = [(0, max(1, n))]
        self._shards = shard_rows is not None and len(shard_rows) > 0
        self._largest = self._mean = block_rows
        if order == "full":
            self._perm = np.random.default_rng([seed, epoch, 0]).permutation(n)
        elif order == "shard" and self._shards:
            # the shards, permuted, each one a block: a window holds `window` shards' worth of rows
            rows_of = np.asarray(shard_rows, dtype=np.int64)
            first = np.concatenate([[0], np.cumsum(rows_of)[:-1]]).astype(np.int64)
            self._blocks = np.random.default_rng([seed, epoch, 3]).permutation(len(rows_of))
            self._row0, sizes = first[self._blocks], rows_of[self._blocks]
            self._largest, self._mean = int(rows_of.max()), n / len(rows_of)
        elif order in WINDOWED:  # shard order without shards: blocks stand in for them
            full, tail = divmod(n, block_rows)
            # A short last block goes last, so it cannot add a block to a window in the middle.
            self._blocks = np.random.default_rng([seed, epoch, 1]).permutation(full)
            sizes = np.full(full, block_rows, dtype=np.int64)
            if tail:
                self._blocks = np.append(self._blocks, full)
                sizes = np.append(sizes, tail)
            self._row0 = self._blocks * block_rows
        if order in WINDOWED:
            self._starts = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=self._starts[1:])

    def span(self, window: int, batch_size: int) -> int:
        """Rows per window: ``window`` blocks (shards) rounded down to whole batches, at least one
        batch; for shards at least the largest, so no shard is needed by more than two windows."""
        if self._shards and self.order == "shard":
            rows = max(window * self._mean, self._largest)
            return max(1, -(-int(rows) // batch_size)) * batch_size
        return max(1, (window * self._largest) // batch_size) * batch_size

    def set_segments(self, segments: list[tuple[int, int]]) -> None:
        """Lay windows out as ``[(start, span), ...]`` (ascending starts, the first at 0)."""
        self._segments = [(int(s), int(w)) for s, w in segments]
        self._cache = None

    def window_at(self, p: int) -> tuple[int, int]:
        """``[start, stop)`` positions of the window holding position ``p``."""
        i = bisect.bisect_right([s for s, _ in self._segments], p) - 1
        start, span = self._segments[i]
        end = self._segments[i + 1][0] if i + 1 < len(self._segments) else self.n
        w0 = start + (p - start) // span * span
        return w0, min(w0 + span, end, self.n)

    def _window(self, w0: int, w1: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == w0:
            return self._cache[1]
        pos = np.arange(w0, w1, dtype=np.int64)
        b = np.searchsorted(self._starts, pos, side="right") - 1
        rows = self._row0[b] + (pos - self._starts[b])
        np.random.default_rng([*self.key, 2, w0]).shuffle(rows)
        self._cache = (w0, rows)
        return rows

    def take(self, start: int, stop: int) -> np.ndarray:
        """Rows at positions ``[start, stop)``; positions past n wrap around to the start."""
        parts = []
        while start < stop:
            p = start % self.n
            end = min(stop - start, self.n - p)
            if self.order == "sequential":
                parts.append(np.arange(p, p + end, dtype=np.int64))
            elif self._perm is not None:
                parts.append(self._perm[p:p + end])
            else:
                w0, w1 = self.window_at(p)
                end = min(end, w1 - p)
                parts.append(self._window(w0, w1)[p - w0:p - w0 + end])
            start += end
        return np.concatenate(parts) if len(parts) != 1 else parts[0]


def epoch_order(num_rows: int, order: str, seed: int = 0, epoch: int = 0, block_rows: int = 4096,
                window: int = 8, batch_size: int = 1) -> np.ndarray:
    """The global order of one epoch (before padding and rank split), as int64 row indices.

    ``batch_size`` matters only for the windowed orders (windows are rounded to whole batches).

    >>> epoch_order(6, "full", seed=1, epoch=2)   # a permutation of 0..5
    array([4, 5, 1, 0, 3, 2])
    >>> epoch_order(6, "sequential")
    array([0, 1, 2, 3, 4, 5])
    """
    if num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    o = EpochOrder(num_rows, order, seed, epoch, block_rows)
    o.set_segments([(0, o.span(window, batch_size))])
    return np.array(o.take(0, num_rows), dtype=np.int64)
