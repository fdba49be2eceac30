"""Readers over numpy arrays: the "store" layout (memmapped ``.npy`` shards) and in-memory sources.

A batch is one gather per touched shard: a contiguous ascending batch inside one shard is a
zero-copy view of the memmap; anything else is one ``np.take`` into a preallocated array.

>>> ds = StoreDataset(version_dir, manifest, manifest.columns)
>>> ds.__getitems__(range(0, 256))["x"]       # zero-copy, read-only view of the page cache
"""

from __future__ import annotations

import mmap
from bisect import bisect_right
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UnsafeInputError
from ..manifest import Column
from ..sparse import CSR, concat
from .base import BaseDataset, Plan, pow2_block_rows, sparse_row_nbytes

__all__: list[str] = []

Array = Any  # np.ndarray | CSR


class ArraysDataset(BaseDataset):
    """Row-sharded numpy arrays / CSRs; subclasses provide ``_shard(s) -> {column: array}``."""

    def _set_shards(self, rows: list[int]) -> None:
        self._offsets = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)]).astype(np.int64)
        self._offs = self._offsets.tolist()

    share_views = True  # contiguous batches of read-only data are returned zero-copy

    def _shard(self, s: int) -> dict[str, Array]:
        raise NotImplementedError

    def _count(self, n: int) -> None:
        self.stats.reads += n

    def _read(self, plan: Plan) -> dict[str, Array]:
        offs = self._offs
        s = bisect_right(offs, plan.lo) - 1
        if plan.hi >= offs[s + 1]:
            return self._read_across(plan, s, bisect_right(offs, plan.hi) - 1)
        arrays, base = self._shard(s), offs[s]
        self._count(1)
        if plan.contiguous:
            a = plan.lo - base
            b = a + plan.k
            return {c.name: _view(arrays[c.name], a, b, self.share_views) for c in self._cols}
        local = plan.idx - base if base else plan.idx
        return {c.name: _take(arrays[c.name], local) for c in self._cols}

    def _read_across(self, plan: Plan, s0: int, s1: int) -> dict[str, Array]:
        """Several shards: gather sorted rows shard by shard into one array, then restore order."""
        order = None if plan.ascending else np.argsort(plan.idx, kind="stable")
        idx = plan.idx if order is None else plan.idx[order]
        cuts = [0, *np.searchsorted(idx, self._offsets[s0 + 1:s1 + 1]).tolist(), idx.size]
        spans = [(s, cuts[j], cuts[j + 1]) for j, s in enumerate(range(s0, s1 + 1)) if cuts[j + 1] > cuts[j]]
        self._count(len(spans))
        shards = {s: self._shard(s) for s, _, _ in spans}  # each fetched once, whatever the columns
        out: dict[str, Array] = {}
        for c in self._cols:
            if c.sparse:
                parts = [shards[s][c.name].take(idx[a:b] - self._offs[s]) for s, a, b in spans]
                csr = concat(parts)
                if order is not None:
                    inv = np.empty_like(order)
                    inv[order] = np.arange(order.size)
                    csr = csr.take(inv)
                out[c.name] = csr
                continue
            first = shards[spans[0][0]][c.name]
            buf = np.empty((idx.size, *first.shape[1:]), first.dtype)
            for s, a, b in spans:
                gather(shards[s][c.name], idx[a:b] - self._offs[s], buf[a:b])
            if order is not None:
                res = np.empty_like(buf)
                res[order] = buf
                buf = res
            out[c.name] = buf
        return out


def _view(v: Array, a: int, b: int, share: bool) -> Array:
    if isinstance(v, CSR):
        return v.slice(a, b)
    # read-only (memmapped) data is shared zero-copy; a writable user array (or a cached block) is
    # copied so that in-place edits of a batch never reach the source
    return v[a:b] if share and not v.flags.writeable else v[a:b].copy()


def _take(v: Array, local: np.ndarray) -> Array:
    if isinstance(v, CSR):
        return v.take(local)
    return gather(v, local, np.empty((local.size, *v.shape[1:]), v.dtype))


def gather(v: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = v[rows]``; rows were bounds-checked by the Plan. (torch.index_select looked
    faster in isolation but lost 10-35 % in the loader A/B: np.take stays.)"""
    return np.take(v, rows, axis=0, out=out, mode="clip")


class MemoryDataset(ArraysDataset):
    """In-memory or memory-mapped arrays (one shard). Memmaps pickle as a file reference.

    Other in-memory arrays necessarily pickle their data (spawned DataLoader workers get a copy).
    """

    kind = "arrays"

    def __init__(self, arrays: dict[str, Array], cols: tuple[Column, ...], *, where: str, **kw: Any) -> None:
        n = len(next(iter(arrays.values())))
        super().__init__(cols, n, where=where, **kw)
        self._arrays = {c.name: arrays[c.name] for c in cols}
        self._set_shards([n])
        for c in cols:
            if c.sparse:
                self.row_nbytes += sparse_row_nbytes(c, arrays[c.name].nnz, n)
        self.block_rows = pow2_block_rows(self.row_nbytes)

    def _shard(self, s: int) -> dict[str, Array]:
        return self._arrays

    def __getstate__(self) -> dict[str, Any]:
        refs = {k: (file_ref(v) if isinstance(v, np.ndarray) else None) or v for k, v in self._arrays.items()}
        return {**self.__dict__, "_arrays": refs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_arrays"] = {k: reopen(v) if isinstance(v, tuple) else v for k, v in state["_arrays"].items()}
        self.__dict__.update(state)


def file_ref(a: np.ndarray) -> tuple[str, int, str, tuple[int, ...]] | None:
    """``(filename, byte offset, dtype, shape)`` of a C-contiguous read-only or r+ memmap view."""
    m: Any = a
    while m is not None and not isinstance(m, np.memmap):
        m = getattr(m, "base", None)
    if m is None or getattr(m, "_mmap", None) is None or not m.filename or m.mode not in ("r", "r+"):
        return None
    if not a.flags.c_contiguous:
        return None
    start = m.offset - m.offset % mmap.ALLOCATIONGRANULARITY
    base = np.frombuffer(m._mmap, np.uint8).ctypes.data
    return (str(m.filename), a.ctypes.data - base + start, a.dtype.str, a.shape)


def reopen(ref: tuple[str, int, str, tuple[int, ...]]) -> np.ndarray:
    name, offset, dtype, shape = ref
    if 0 in shape:
        return np.empty(shape, dtype)
    return np.memmap(name, dtype=dtype, mode="r", offset=offset, shape=shape).view(np.ndarray)


def columns_of(arrays: dict[str, Any], where: str) -> tuple[dict[str, Array], tuple[Column, ...]]:
    """Validate a dict of arrays / CSR / scipy.sparse matrices as same-length columns."""
    if not arrays:
        raise InvalidInputError(f"{where}: no arrays given; pass e.g. {{'x': X, 'y': y}}")
    out: dict[str, Array] = {}
    cols = []
    for name, v in arrays.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"{where}: column names must be strings, got {name!r}")
        if hasattr(v, "tocsr") and not isinstance(v, np.ndarray):
            v = CSR.from_scipy(v)
        if isinstance(v, CSR):
            vdt = "float32" if v.values is None else str(v.values.dtype)
            cols.append(Column(name, vdt, (v.dim,), sparse=True, index_dtype=str(v.indices.dtype),
                               has_values=v.values is not None))
            out[name] = v
            continue
        if hasattr(v, "numpy") and hasattr(v, "detach"):  # torch tensor
            v = v.detach().cpu().numpy()
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise UnsafeInputError(f"{where}: column {name!r} has object dtype; convert it to a "
                                   "numeric array first")
        if a.dtype.kind not in "biufc" or a.ndim == 0:
            raise InvalidInputError(f"{where}: column {name!r} is {a.dtype} with shape {a.shape}; "
                                    "columns must be numeric arrays with a row axis")
        cols.append(Column(name, str(a.dtype.newbyteorder("=")), tuple(a.shape[1:])))
        out[name] = a
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(f"{where}: columns differ in length {lengths}; every column needs "
                                "one entry per row")
    return out, tuple(cols)
