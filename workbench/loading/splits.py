"""How one epoch's global order is cut (pure index logic): into windows, laid out anew after a
reconfigure, and between the ranks into batches, by the remainder policy.

Windows (block and shard orders). The block order splits rows into storage-aligned blocks
``[k*block_rows, (k+1)*block_rows)``; the blocks are permuted, giving a stream of rows that is
contiguous inside each block. That stream is cut into *windows* of ``window*block_rows`` rows
rounded down to a whole number of batches (at least one batch), and the rows of each window are
shuffled. A block cut by a window's edge carries its remaining rows into the next window, so every
batch is full (but the epoch's last) and lies inside one window, and touches at most
``max(window, ceil(batch_size/block_rows)) + 1`` blocks (the +1: windows need not start on a
block boundary; the dataset's short last block, if any, always ends the stream so it cannot add
one). The shard order's windows hold ``window`` shards' rows (at least the largest shard), so a
shard is needed by two consecutive windows at most and fetched once per epoch by a cache holding
what one window touches (about ``window + 2`` shards). Windows are built lazily from
``(seed, epoch, window start)``: memory per step is O(window*block_rows) plus the block
permutation (n/block_rows ints). ``reconfigure`` changes ``batch_size`` or ``window`` mid-epoch:
the rest of the epoch is laid out anew from the first batch boundary after the current window
(that one batch may straddle two windows), and every row is still read exactly once
(:func:`relayout`, ``workbench.loading.orders``).

``run_rows`` R > 1 (block and shard orders) shuffles each window in runs of R consecutive rows,
so a batch is B/R contiguous runs (copied at memory speed) from across the window; R=1 mixes
single rows. ``workbench.loading.orders.shuffle_quality`` says what each choice costs in mixing.

Rank sharding and the remainder policy, applied to the epoch's global order ``g`` (length n) with
``W = world_size`` and ``B = batch_size``:

- ``drop_last=False``: ``g`` is padded to ``T = ceil(n/W)*W`` rows by repeating its first ``T-n``
  rows (cycling through ``g`` again if ``n < T-n``), as torch's ``DistributedSampler`` does. So
  fewer than W rows per epoch are extra copies, on other ranks than their first copy's unless
  ``n < W``; with ``W=1`` nothing is padded and every row appears exactly once. Each rank gets
  ``T/W`` rows: full batches and possibly one final partial batch, of the same size on every rank.
- ``drop_last=True``: ``g`` is cut to ``T = floor(n/(W*B))*W*B`` rows: no row repeats, all batches
  are full, and the tail of the epoch's order (different rows each shuffled epoch) is skipped.

Global batch ``k`` covers ``g[k*W*B : (k+1)*W*B]``; rank ``r`` takes the ``r``-th contiguous slice
of it, so each rank's batch keeps the locality of the block order (every batch but, with ``W>1``,
the epoch's final one, which may be partial or padded by wrapping and straddle two windows). Every
rank yields ``len(sampler)`` batches.

>>> s = RankSplit(10, 0, 0, batch_size=4, rank=1, world_size=2, drop_last=False)
>>> len(s), s.positions(0), s.positions(1), s.padded_rows(10)
(2, (4, 4), (9, 1), 0)
"""

from __future__ import annotations

from .orders import EpochOrder

__all__: list[str] = []

Layout = list[tuple[int, int, int]]  # window segments: (start position, span, run rows)


class RankSplit:
    """Positions ``offset..`` of an epoch's order of ``num_rows`` (0, or where a resume or a
    change of batch size picks up) split between the ranks, batches numbered from
    ``first_batch``; see the remainder policy above."""

    def __init__(
        self,
        num_rows: int,
        offset: int,
        first_batch: int,
        batch_size: int,
        rank: int,
        world_size: int,
        drop_last: bool,
    ) -> None:
        w, b = world_size, batch_size
        rest = max(0, num_rows - offset)
        self.offset, self.first_batch = offset, first_batch
        self.batch_size, self.rank, self.world_size = b, rank, w
        self.total = (rest // (w * b)) * w * b if drop_last else -(-rest // w) * w
        self.per_rank = self.total // w

    def __len__(self) -> int:
        return self.first_batch + -(-self.per_rank // self.batch_size)

    def padded_rows(self, num_rows: int) -> int:
        """Rows of the epoch's order repeated to pad it (0 with drop_last, W=1)."""
        return max(0, self.offset + self.total - num_rows)

    def rows_done(self, batches: int) -> int:
        """Positions consumed by all ranks after ``batches`` batches each."""
        done = max(0, batches - self.first_batch) * self.world_size * self.batch_size
        return self.offset + min(done, self.total)

    def positions(self, k: int) -> tuple[int, int]:
        """``(first position, rows)`` of this rank's batch ``k``."""
        b, k = self.batch_size, k - self.first_batch
        size = min(b, self.per_rank - k * b)
        return self.offset + k * self.world_size * b + self.rank * size, size


def relayout(
    order: EpochOrder, layout: Layout | None, p: int, batch_size: int, window: int, run_rows: int
) -> Layout | None:
    """The window layout of ``order`` once ``p`` positions are read and the rest goes on with a
    new ``batch_size``, ``window`` or ``run_rows``: a new segment from the first batch boundary
    at or after the end of the window holding ``p``; None where that is the epoch's end."""
    w0, w1 = order.window_at(p)
    start = p if p == w0 else p + -(-(w1 - p) // batch_size) * batch_size
    if start >= order.n:
        return None
    return [s for s in layout or [] if s[0] < start] + [
        (start, order.span(window, batch_size), run_rows)
    ]
