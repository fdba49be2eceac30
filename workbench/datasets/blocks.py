"""Readers whose storage unit is a whole block: Parquet row groups, Dask array chunks.

Each touched block is fetched once per batch (one ``read_row_group`` / one ``compute``) and the
most recent blocks are cached per process, so block-ordered batches reuse them; the gather itself
is the one shared with the array readers. Batches are always copies (cached blocks stay intact).

>>> import dask.array as da
>>> ds = wb.open_dataset(da.ones((1000, 4), chunks=(100, 4)))   # DaskDataset, column "x"
>>> ds.get_batch(range(0, 256))["x"].shape                   # 3 blocks fetched, then gathered
torch.Size([256, 4])
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.manifest import Column
from .arrays import Array, ArraysDataset

__all__: list[str] = []

CACHED_BLOCKS = 2
DASK_BLOCK_BYTES = 64 << 20  # larger dask chunks are read in sub-blocks of about this size


class BlockDataset(ArraysDataset):
    """Subclasses implement ``_load_block(b) -> {column: array | CSR}`` (one storage read)."""

    share_views = False

    def _set_blocks(self, rows: list[int]) -> None:
        self._set_shards(rows)
        self._cache: OrderedDict[int, dict[str, Array]] = OrderedDict()
        self._cache_pid = os.getpid()
        self._lock = threading.Lock()

    def _count(self, n: int) -> None:
        pass  # reads are counted where a block is really loaded

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": OrderedDict(), "_cache_pid": None, "_lock": None}

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
            while len(self._cache) > CACHED_BLOCKS:
                self._cache.popitem(last=False)
        return got

    def _load_block(self, b: int) -> dict[str, Array]:
        raise NotImplementedError


class DaskDataset(BlockDataset):
    """A Dask array as column ``"x"``: one ``compute`` per block (chunk, or ~64 MiB piece of one).

    Computes run on the synchronous scheduler: the threaded one hangs in forked DataLoader
    workers, and a block is one chunk anyway. The dataset pickles the array's graph.
    """

    kind = "dask"

    def __init__(self, arr: Any, *, where: str, **kw: Any) -> None:
        rows0 = arr.chunks[0] if arr.ndim else ()
        if arr.ndim == 0 or any(np.isnan(r) for r in rows0):
            raise InvalidInputError(
                f"{where}: the Dask array needs a row axis with known chunk sizes; "
                "call arr.compute_chunk_sizes() first"
            )
        dt = np.dtype(arr.dtype)
        if dt.kind not in "biufc" or dt.names:
            raise InvalidInputError(f"{where}: Dask array dtype {dt} is not numeric; cast it first")
        col = Column("x", str(dt.newbyteorder("=")), tuple(int(s) for s in arr.shape[1:]))
        super().__init__((col,), int(arr.shape[0]), where=where, **kw)
        self._arr = arr
        self.row_nbytes = col.row_bytes
        per = max(1, DASK_BLOCK_BYTES // max(1, col.row_bytes))
        rows = [min(per, r - a) for r in rows0 for a in range(0, int(r), per)] if rows0 else []
        self._set_blocks(rows)
        self.block_rows = max(rows) if rows else 64

    def _load_block(self, b: int) -> dict[str, Array]:
        lo, hi = self._offs[b], self._offs[b + 1]
        a = np.asarray(self._arr[lo:hi].compute(scheduler="synchronous"))
        a.flags.writeable = False  # cached: batches are copies, nothing may edit the block
        return {"x": a}

    def describe_source(self) -> str:
        return f"dask array {self._arr.shape} {self._arr.dtype}, chunks {self._arr.chunksize}"
