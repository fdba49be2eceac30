"""``open_dataset`` of a Zarr array or group (format 2 or 3): a block is a run of whole chunks,
read with one slice per column and cached, so block-ordered batches decode each chunk once; the
block order's unit is a block, the shard order's units are the blocks. Arrays are opened anew in
each process that reads (``inputs.zarrs.Reopened``): after fork an fsspec store's event loop and
a zip store's file handle belong to the parent.

>>> import zarr
>>> z = zarr.create_array("a.zarr", shape=(1000, 4), chunks=(100, 4), dtype="float32")
>>> z[:] = np.arange(4000, dtype="float32").reshape(1000, 4)
>>> ds = wb.open_dataset("a.zarr")
>>> ds.block_rows, ds.shard_rows[:2], ds.get_batch([999, 0])["x"][:, 0].tolist()
(100, [100, 100], [3996.0, 0.0])
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .arrays import Array
from .blocks import DASK_BLOCK_BYTES, BlockDataset

__all__: list[str] = []


def block_sizes(rows: int, chunk_rows: list[int], row_nbytes: int) -> list[int]:
    """Rows of each block: the least common multiple of the columns' chunk rows (every block
    whole chunks of each; at most all rows), else the largest chunk; a block past ~64 MiB cut
    into pieces.

    >>> block_sizes(1000, [100, 250], 16), block_sizes(10, [4], 1 << 30)
    ([500, 500], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    """
    common = min(math.lcm(*[max(1, c) for c in chunk_rows]) if chunk_rows else 64, max(1, rows))
    if common * row_nbytes > DASK_BLOCK_BYTES:
        common = max(max(chunk_rows, default=64), 1)
    per = max(1, DASK_BLOCK_BYTES // max(1, row_nbytes))
    out = []
    for a in range(0, rows, common):
        span = min(common, rows - a)
        out += [min(per, span - b) for b in range(0, span, per)]
    return out


class WindowBlocks(BlockDataset):
    """Blocks cached per process up to a block order's window (16 blocks, at most ~128 MiB):
    the window's batches draw rows from all its blocks, so a cache of 2 would decode each chunk
    about once per batch instead of once per window."""

    CACHE_BYTES = 128 << 20
    MAX_CACHED = 16

    def _set_blocks(self, rows: list[int]) -> None:
        super()._set_blocks(rows)
        biggest = max(rows, default=1) * max(1, self.row_nbytes)
        self.cached_blocks = int(min(self.MAX_CACHED, max(2, self.CACHE_BYTES // biggest)))

    def _shard(self, b: int) -> dict[str, Array]:
        if self._cache_pid != os.getpid():  # forked or unpickled: start an empty cache
            self._cache, self._cache_pid, self._lock = OrderedDict(), os.getpid(), threading.Lock()
        with self._lock:  # the loader reads ahead in threads
            got = self._cache.get(b)
            if got is not None:
                self._cache.move_to_end(b)
                self.stats.cache_hits += 1
                return got
        got = self._load_block(b)  # outside the lock: other threads keep gathering meanwhile
        with self._lock:
            self.stats.reads += 1
            self._cache[b] = got
            while len(self._cache) > self.cached_blocks:
                self._cache.popitem(last=False)
        return got


class ZarrDataset(WindowBlocks):
    """Zarr arrays as columns, read block by block (see the module)."""

    kind = "zarr"

    def __init__(self, arrays: Any, members: list[Any], *, where: str, **kw: Any) -> None:
        cols = tuple(m.column for m in members)
        super().__init__(cols, members[0].rows, where=where, **kw)
        self._arrays = arrays  # inputs.zarrs.Reopened: pickles as its ref
        self._paths = {m.name: m.path for m in members}
        self.chunk_rows = {m.name: m.chunk_rows for m in members}
        rows = block_sizes(self._n, list(self.chunk_rows.values()), self.row_nbytes)
        self._set_blocks(rows)
        self.block_rows = max(rows) if rows else 64

    def zarr_arrays(self) -> dict[str, Any]:
        """Column -> its zarr Array, opened in this process (what ``wb.doctor`` looks at)."""
        return {name: self._arrays.array(path) for name, path in self._paths.items()}

    def inspected(self) -> Any:
        """What ``wb.inspect`` looks at for this dataset: its zarr node."""
        return self._arrays.node()

    def _load_block(self, b: int) -> dict[str, Array]:
        from ..inputs.zarrs import native

        lo, hi = self._offs[b], self._offs[b + 1]
        out = {}
        for name, path in self._paths.items():
            a = native(np.asarray(self._arrays.array(path)[lo:hi]))
            a.flags.writeable = False  # cached: batches are copies, nothing may edit the block
            out[name] = a
        return out

    def describe_source(self) -> str:
        chunks = ", ".join(f"{k}: {v}" for k, v in self.chunk_rows.items())
        return f"Zarr {self._arrays.ref}, chunk rows {{{chunks}}}"


def zarr_dataset(
    source: Any, where: str, columns: Any, *, key: Any = None, **kw: Any
) -> ZarrDataset:
    """A Zarr array or group (a path, a URL, a zip store or a zarr object), its arrays as
    columns."""
    from ..inputs.zarrs import pick, scan
    from ..inputs.zarrstores import Reopened, locate

    ref, node = locate(source)
    name = str(ref) if not isinstance(source, str) else where
    chosen = pick(name, scan(ref, node, key, name), columns)
    return ZarrDataset(Reopened(ref, node), chosen, where=name, **kw)
