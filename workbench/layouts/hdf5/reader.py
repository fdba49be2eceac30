"""The hdf5 layout's reader, also used for foreign HDF5 files (columns found by ``inputs.hdf5``).

Per batch, the sorted unique rows are cut into segments: rows in the same or adjacent chunks share
one ``read_direct`` (so every byte read lies in a chunk the batch touches anyway, and
``reads <= touched chunks``), then one numpy gather restores the asked order. h5py fancy indexing
is never used. Sparse columns keep their ``indptr`` in memory (per process) and read each merged
element range of ``indices``/``values`` once. File handles open lazily per process (reopened after
fork) and are never pickled.

>>> ds = wb.open_dataset("data.h5", key="train")      # the datasets of group /train, as columns
>>> ds.get_batch([5, 1, 7])["x"].shape
torch.Size([3, 3])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ...datasets.base import BaseDataset, Plan, pow2_block_rows, sparse_row_nbytes
from ...errors import CorruptDatasetError
from ...format.manifest import Column, Manifest
from ...format.sparse import CSR
from ..base import shard_paths

__all__: list[str] = []

_CACHE_BYTES = 8 << 20  # HDF5 chunk cache per open file: holds the chunks a sequential batch spans


class Hdf5Dataset(BaseDataset):
    kind = "hdf5"

    def __init__(
        self,
        files: list[Path],
        keys: dict[str, str],
        cols: tuple[Column, ...],
        rows: list[int],
        *,
        where: str,
        values_name: dict[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(cols, sum(rows), where=where, **kw)
        self._files = [str(f) for f in files]
        self._key = keys  # column -> dataset (or CSR group) path in every file
        self._offsets = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)]).astype(np.int64)
        self._offs = self._offsets.tolist()
        self._vname = values_name or {c.name: "values" for c in cols if c.sparse}
        self._pid: int | None = None
        self._drop_handles()
        self._chunk_rows = self._probe_chunk_rows()
        for c in (c for c in cols if c.sparse):
            nnz = sum(self._node(s, keys[c.name] + "/indices").shape[0] for s in range(len(rows)))
            self.row_nbytes += sparse_row_nbytes(c, nnz, self._n)
        if self._chunk_rows:
            per_chunk = max(1, self._chunk_rows * self.row_nbytes)
            self.block_rows = self._chunk_rows * max(1, -(-(1 << 20) // per_chunk))
        else:
            self.block_rows = pow2_block_rows(self.row_nbytes)

    # -- per-process handles ---------------------------------------------------------------
    def _drop_handles(self) -> None:
        self._handles: dict[int, h5py.File] = {}
        self._nodes: dict[tuple[int, str], Any] = {}
        self._indptr: dict[tuple[int, str], np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_handles": {}, "_nodes": {}, "_indptr": {}, "_pid": None}
        return state

    def _node(self, s: int, name: str) -> Any:
        if self._pid != os.getpid():  # forked (or unpickled): the parent's handles are not ours
            self._drop_handles()
            self._pid = os.getpid()
        node = self._nodes.get((s, name))
        if node is None:
            f = self._handles.get(s)
            if f is None:
                try:
                    f = self._handles[s] = h5py.File(
                        self._files[s], "r", rdcc_nbytes=_CACHE_BYTES, rdcc_nslots=1009
                    )
                except OSError as e:
                    raise CorruptDatasetError(
                        f"{self._files[s]}: cannot open ({e}); check the file or convert again"
                    ) from None
            try:
                node = self._nodes[(s, name)] = f[name]
            except KeyError:
                raise CorruptDatasetError(
                    f"{self._files[s]}: no dataset {name!r}; "
                    "run `workbench verify`, then convert again"
                ) from None
        return node

    def _probe_chunk_rows(self) -> int:
        if not self._files:
            return 0
        rows = [self._node(0, self._key[c.name]).chunks for c in self._cols if not c.sparse]
        chunked = [ch[0] for ch in rows if ch]
        return min(chunked) if chunked else 0

    def describe_source(self) -> str:
        shards = f" ({len(self._files)} shard files)" if len(self._files) > 1 else ""
        keys = [k.lstrip("/") for c, k in self._key.items() if k.lstrip("/") != c]
        return f"{self.where}{shards}" + (f" keys={keys}" if keys else "")

    # -- reading ---------------------------------------------------------------------------
    def _read(self, plan: Plan) -> dict[str, Any]:
        s = int(np.searchsorted(self._offsets, plan.lo, side="right")) - 1
        if (
            plan.contiguous
            and plan.hi < self._offs[s + 1]
            and not any(c.sparse for c in self._cols)
        ):
            lo = plan.lo - self._offs[s]  # one run in one shard: read straight into the batch
            self.stats.reads += 1
            out = {}
            for c in self._cols:
                out[c.name] = buf = np.empty((plan.k, *c.shape), c.dtype)
                self._read_into(s, self._key[c.name], buf, lo, lo + plan.k, 0)
            return out
        u, inv = plan.unique()
        sid = (
            np.zeros(u.size, np.int64)
            if len(self._offs) == 2
            else np.searchsorted(self._offsets, u, side="right") - 1
        )
        out: dict[str, Any] = {}
        dense = [c for c in self._cols if not c.sparse]
        if dense:
            out.update(self._read_dense(dense, u, inv, sid))
        for c in self._cols:
            if c.sparse:
                out[c.name] = self._read_sparse(c, u, inv, sid)
        return out

    def _read_dense(
        self, cols: list[Column], u: np.ndarray, inv: np.ndarray | None, sid: np.ndarray
    ) -> dict[str, np.ndarray]:
        local = u - self._offsets[sid]
        cr = self._chunk_rows or max(1, (64 << 10) // max(1, self.row_nbytes))
        chunk = local // cr
        brk = np.flatnonzero((np.diff(chunk) > 1) | (np.diff(sid) != 0)) + 1
        first = np.concatenate(([0], brk))
        last = np.concatenate((brk, [u.size])) - 1
        seg_lo, seg_hi = local[first], local[last] + 1
        seg_len = seg_hi - seg_lo
        buf_off = np.concatenate(([0], np.cumsum(seg_len)[:-1]))
        total = int(seg_len.sum())
        sel = None
        if not (inv is None and total == u.size):  # the buffer is not already the answer
            seg = np.repeat(np.arange(first.size), last - first + 1)
            pos = local - seg_lo[seg] + buf_off[seg]
            sel = pos if inv is None else pos[inv]
        self.stats.reads += first.size
        segs = list(zip(sid[first].tolist(), seg_lo.tolist(), seg_hi.tolist(), buf_off.tolist()))
        out = {}
        for c in cols:
            buf = np.empty((total, *c.shape), c.dtype)
            for s, lo, hi, o in segs:
                self._read_into(s, self._key[c.name], buf, lo, hi, o)
            out[c.name] = buf if sel is None else np.take(buf, sel, axis=0, mode="clip")
        return out

    def _read_into(self, s: int, name: str, buf: np.ndarray, lo: int, hi: int, o: int) -> None:
        if hi <= lo:
            return
        try:
            self._node(s, name).read_direct(buf, np.s_[lo:hi], np.s_[o : o + hi - lo])
        except OSError as e:
            raise CorruptDatasetError(
                f"{self._files[s]}: column {name!r} rows {lo}-{hi}: {e}; run "
                "`workbench verify`, then convert again"
            ) from None

    def _indptr_of(self, s: int, name: str) -> np.ndarray:
        ip = self._indptr.get((s, name))
        if ip is None:
            ip = self._indptr[(s, name)] = np.asarray(self._node(s, name + "/indptr")[:], np.int64)
        return ip

    def _read_sparse(
        self, c: Column, u: np.ndarray, inv: np.ndarray | None, sid: np.ndarray
    ) -> CSR:
        starts = np.empty(u.size, np.int64)
        ends = np.empty(u.size, np.int64)
        bounds = np.flatnonzero(np.diff(sid)) + 1
        for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), u.size]):
            s = int(sid[a])
            ip = self._indptr_of(s, self._key[c.name])
            local = u[a:b] - self._offs[s]
            starts[a:b], ends[a:b] = ip[local], ip[local + 1]
        egap = (self._node(0, self._key[c.name] + "/indices").chunks or (4096,))[0]
        brk = np.flatnonzero((starts[1:] - ends[:-1] > egap) | (np.diff(sid) != 0)) + 1
        first = np.concatenate(([0], brk))
        last = np.concatenate((brk, [u.size])) - 1
        seg_lo, seg_hi = starts[first], ends[last]
        buf_off = np.concatenate(([0], np.cumsum(seg_hi - seg_lo)[:-1]))
        total = int((seg_hi - seg_lo).sum())
        self.stats.reads += first.size
        segs = list(zip(sid[first].tolist(), seg_lo.tolist(), seg_hi.tolist(), buf_off.tolist()))
        ibuf = np.empty(total, c.index_dtype)
        vbuf = np.empty(total, c.dtype) if c.has_values else None
        for s, lo, hi, o in segs:
            self._read_into(s, self._key[c.name] + "/indices", ibuf, lo, hi, o)
            if vbuf is not None:
                self._read_into(s, f"{self._key[c.name]}/{self._vname[c.name]}", vbuf, lo, hi, o)
        seg = np.repeat(np.arange(first.size), last - first + 1)
        bstart = starts - seg_lo[seg] + buf_off[seg]
        lengths = ends - starts
        if inv is not None:
            bstart, lengths = bstart[inv], lengths[inv]
        indptr = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.repeat(bstart - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return CSR(indptr, ibuf[pos], None if vbuf is None else vbuf[pos], c.shape[0])


def open_reader(
    version: Path, manifest: Manifest, cols: tuple[Column, ...], **kw: Any
) -> Hdf5Dataset:
    return Hdf5Dataset(
        shard_paths(version, manifest),
        {c.name: c.name for c in cols},
        cols,
        [s.rows for s in manifest.shards],
        where=str(version),
        manifest=manifest,
        version_dir=version,
        **kw,
    )
