"""One epoch's global order of rows, before the rank split (pure index logic).

An order is a stream of positions ``0..n-1`` mapped to rows. The block and shard orders permute
storage blocks (or shards) and shuffle rows within *windows* of that stream. Windows are laid out
in *segments* ``(start position, span in rows, run rows)``: an epoch starts with one segment, and
a loader reconfigured mid-epoch (a new ``batch_size``, ``window`` or ``run_rows``) starts a new
segment at a batch boundary after the current window, so the rows already delivered keep their
places and every row of the epoch still appears exactly once. With ``run_rows`` R > 1 a window
is shuffled in runs of R consecutive positions (contiguous rows inside a block), so a batch is a
few contiguous runs that read at copy speed instead of a random gather of single rows.

:func:`shuffle_quality` puts one number on how well batches mix: 1.0 for a full shuffle, near 0
for sequential reads.

>>> o = EpochOrder(10, "block", seed=0, epoch=0, block_rows=4)
>>> o.set_segments([(0, o.span(window=2, batch_size=4), 1)])
>>> sorted(o.take(0, 10).tolist()) == list(range(10))
True
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

__all__ = ["epoch_order", "shuffle_quality"]

ORDERS = ("sequential", "full", "block", "shard")
AHEAD_WINDOWS = 2  # windows told ahead of the one a pass reads (see EpochOrder.ahead)
WINDOWED = ("block", "shard")


class EpochOrder:
    """Random access to positions ``[start, stop)`` of one epoch's order (``take``)."""

    def __init__(
        self, n: int, order: str, seed: int, epoch: int, block_rows: int, shard_rows: Any = None
    ) -> None:
        self.n, self.order, self.key = n, order, (seed, epoch)
        self._perm: np.ndarray | None = None
        self._cache: tuple[int, np.ndarray] | None = None
        self._sorted: tuple[int, int, int, np.ndarray] | None = None  # size, start, stop, batches
        self._segments: list[tuple[int, int, int]] = [(0, max(1, n), 1)]
        self._shards = shard_rows is not None and len(shard_rows) > 0
        self._largest, self._mean = block_rows, float(block_rows)
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

    def block_order(self) -> list[int]:
        """The epoch's blocks in the order it reads them (in the shard order: its shards)."""
        return self._blocks.tolist()

    def span(self, window: int, batch_size: int) -> int:
        """Rows per window: ``window`` blocks (shards) rounded down to whole batches, at least one
        batch; for shards at least the largest, so no shard is needed by more than two windows."""
        if self._shards and self.order == "shard":
            rows = max(window * self._mean, self._largest)
            return max(1, -(-int(rows) // batch_size)) * batch_size
        return max(1, (window * self._largest) // batch_size) * batch_size

    def set_segments(self, layout: Any) -> None:
        """Lay windows out as ``[(start, span, run_rows), ...]`` (see :func:`segments`)."""
        self._segments = segments(layout)
        self._firsts = [s[0] for s in self._segments]
        self._cache = self._sorted = None
        self._ahead = (-1, -1, -1, -1)  # ahead(): the window it saw last; positions told

    def _segment(self, p: int) -> int:
        return bisect.bisect_right(self._firsts, p) - 1

    def ahead(self, start: int, stop: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """What to read ahead when a pass asks for positions ``[start, stop)``, as
        :meth:`window_rows` runs: at a window's first batch, the window ``AHEAD_WINDOWS`` past
        it (every window is told once, that far ahead); at a jump (a pass's start, a resume) or a
        batch that reaches into another window (a new segment, the padding's wrap), that window
        and those up to ``AHEAD_WINDOWS`` past it; nothing inside a window, nor for the
        sequential (the kernel reads ahead) and full (random rows: the kernel's read-around)
        orders."""
        (c0, c1, t0, t1), p, q = self._ahead, start % self.n, (stop - 1) % self.n  # padding wraps
        if self.order not in WINDOWED or (c0 <= p < c1 and c0 <= q < c1):
            return []
        runs = []
        for x in (p, q):
            w0, w1 = self.window_at(x)
            if (w0, w1) == (c0, c1):
                continue
            if not t0 <= w0 < w1 <= t1:  # a jump: this window was not announced
                runs.append(self.window_rows(w0, w1))
                t0, t1 = w0, w1
            end = w1
            for _ in range(AHEAD_WINDOWS):
                end = self.window_at(end)[1] if end < self.n else end
            while t1 < end:  # the windows up to AHEAD_WINDOWS past this one, each told once
                nxt = self.window_at(t1)
                runs.append(self.window_rows(*nxt))
                t1 = nxt[1]
            c0, c1 = w0, w1
        self._ahead = (c0, c1, t0, t1)
        return runs

    def batch(self, start: int, size: int) -> np.ndarray:
        """The rows at positions ``[start, start + size)``, sorted (a batch read in disk order).

        Full and windowed orders sort a run of batches of this size in one call (per batch, the
        sort's own cost was most of the sampler's ~2-5 us a batch); never a view of the order.
        """
        if self.order == "sequential" and start + size <= self.n:
            return np.arange(start, start + size, dtype=np.int64)
        c = self._sorted
        if (
            c is not None
            and c[0] == size
            and c[1] <= start
            and start + size <= c[2]
            and (start - c[1]) % size == 0
        ):
            return c[3][(start - c[1]) // size]
        stop = start + size
        if size >= 8 and stop <= self.n:  # batches up to the window's end (full: 64 batches)
            end = start + 64 * size if self._perm is not None else self.window_at(start)[1]
            stop = start + max(1, (min(end, self.n) - start) // size) * size
        if stop - start == size:  # one batch (it crosses a window, or wraps, or is tiny)
            return np.sort(self.take(start, stop))
        batches = np.sort(self.take(start, stop).reshape(-1, size), axis=1)
        self._sorted = (size, start, stop, batches)
        return batches[0]

    def window_at(self, p: int) -> tuple[int, int]:
        """``[start, stop)`` positions of the window holding position ``p``."""
        i = self._segment(p)
        start, span, _ = self._segments[i]
        end = self._segments[i + 1][0] if i + 1 < len(self._segments) else self.n
        w0 = start + (p - start) // span * span
        return w0, min(w0 + span, end, self.n)

    def window_rows(self, w0: int, w1: int) -> tuple[np.ndarray, np.ndarray]:
        """The storage rows of window ``[w0, w1)`` (windowed orders) as runs: first rows and
        lengths, one run per block (or shard) it draws from, in the window's block order."""
        # the window's positions lie in a few consecutive blocks: map them block by block
        b0 = int(np.searchsorted(self._starts, w0, side="right")) - 1
        b1 = int(np.searchsorted(self._starts, w1 - 1, side="right"))
        lo = np.maximum(self._starts[b0:b1], w0)
        hi = np.minimum(self._starts[b0 + 1 : b1 + 1], w1)
        return self._row0[b0:b1] + (lo - self._starts[b0:b1]), hi - lo

    def _window(self, w0: int, w1: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == w0:
            return self._cache[1]
        rows = _concat_ranges(*self.window_rows(w0, w1))
        rng, run = np.random.default_rng([*self.key, 2, w0]), self._segments[self._segment(w0)][2]
        if run <= 1:
            rng.shuffle(rows)
        else:  # the runs of `run` positions in a random order, each run's rows kept in order
            perm = rng.permutation(-(-len(rows) // run))
            rows = rows[_concat_ranges(perm * run, np.minimum(run, len(rows) - perm * run))]
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
                parts.append(self._perm[p : p + end])
            else:
                w0, w1 = self.window_at(p)
                end = min(end, w1 - p)
                parts.append(self._window(w0, w1)[p - w0 : p - w0 + end])
            start += end
        return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[i], starts[i]+1, ..., starts[i]+lengths[i]-1`` for every i, one after another."""
    shift = starts - (np.cumsum(lengths) - lengths)  # each range's start minus its place
    return np.repeat(shift, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def segments(layout: Any) -> list[tuple[int, int, int]]:
    """A window layout as ``(start, span, run_rows)`` int triples (ascending starts, the first at
    0), from ours or from a saved state's lists; a state saved before runs existed has pairs.

    >>> segments([[0, 64], [128, 32, 4]])
    [(0, 64, 1), (128, 32, 4)]
    """
    return [(int(s[0]), int(s[1]), int(s[2]) if len(s) > 2 else 1) for s in layout]


def epoch_order(
    num_rows: int,
    order: str,
    seed: int = 0,
    epoch: int = 0,
    block_rows: int = 4096,
    window: int = 8,
    batch_size: int = 1,
    run_rows: int = 1,
) -> np.ndarray:
    """The global order of one epoch (before padding and rank split), as int64 row indices.

    Parameters
    ----------
    num_rows : int
        Rows in the dataset.
    order : {"sequential", "full", "block", "shard"}
        The order (without shard sizes, the shard order permutes blocks as the block order does).
    seed, epoch : int, default 0
        Together they pick the permutation: the same pair gives the same order.
    block_rows : int, default 4096
        Rows a storage block, the unit the block order permutes.
    window : int, default 8
        Blocks the block and shard orders mix at a time.
    batch_size : int, default 1
        Matters only for the windowed orders (windows are rounded to whole batches).
    run_rows : int, default 1
        Block order: rows a contiguous run (a window is shuffled in runs of this many).

    Returns
    -------
    numpy.ndarray
        Every row index ``0..num_rows-1`` once, in the epoch's order (int64).

    Examples
    --------
    >>> epoch_order(6, "full", seed=1, epoch=2)   # a permutation of 0..5
    array([4, 5, 1, 0, 3, 2])
    >>> epoch_order(6, "sequential")
    array([0, 1, 2, 3, 4, 5])
    """
    if num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    o = EpochOrder(num_rows, order, seed, epoch, block_rows)
    o.set_segments([(0, o.span(window, batch_size), run_rows)])
    return np.array(o.take(0, num_rows), dtype=np.int64)


def shuffle_quality(batches: Any, num_rows: int) -> float:
    """How well batches mix, as one number: the mean distance on disk between two rows of the
    same batch, over that of a uniform shuffle ((n+1)/3). 1.0: as mixed as a full shuffle;
    near 0: neighbours (sequential reads). Block order scores about ``1 - 1/window``, and runs
    of R rows in batches of B about ``(1 - 1/window) * (1 - R/B)``.

    Parameters
    ----------
    batches : iterable of array-like
        Each batch's row indices.
    num_rows : int
        Rows in the dataset the indices come from.

    Returns
    -------
    float
        The score; 0.0 when no batch holds two rows.

    Examples
    --------
    >>> near, spread = [np.arange(100)], [np.arange(0, 10_000, 100)]
    >>> shuffle_quality(near, 10_000) < 0.02, shuffle_quality(spread, 10_000) > 0.9
    (True, True)
    """
    total, pairs = 0.0, 0
    for batch in batches:
        x = np.sort(np.asarray(batch, dtype=np.float64))
        m = len(x)
        if m < 2:
            continue
        # sum over pairs i<j of x_j - x_i, in one pass over the sorted batch
        total += float(np.dot(x, 2 * np.arange(m) - m + 1))
        pairs += m * (m - 1) // 2
    return total / pairs / ((num_rows + 1) / 3) if pairs and num_rows else 0.0
