"""Readers over row-sharded NumPy arrays and CSRs: the base of the store layout's reader and of
in-memory arrays and memmaps (:class:`~.memory.MemoryDataset`).

A batch is one gather per touched shard: a contiguous ascending batch inside one shard is a
zero-copy view of read-only (memmapped) data; anything else is one :func:`~.gather.gather` (on
every core where that pays, else ``np.take``) into a new array, or one compiled call per column
over every shard (:mod:`.nativepath`).

>>> ds = wb.open_dataset({"x": np.arange(10.0)})   # a MemoryDataset: one shard
>>> ds.get_batch([3, 1])["x"].tolist(), isinstance(ds, ArraysDataset)
([3.0, 1.0], True)
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np
import torch

from ..format.sparse import CSR, concat
from ..monitoring.pagecache import will_need
from . import gather as _gather
from .base import BaseDataset, Plan
from .gather import gather, run_breaks
from .nativepath import NativePath
from .tensors import shared_tensor

__all__: list[str] = []

Array = Any  # np.ndarray | CSR
WILL_NEED_BYTES = 256 << 20  # read-ahead asked for in one call at most (a window of big shards)


class ArraysDataset(NativePath, BaseDataset):
    """Row-sharded numpy arrays / CSRs; subclasses provide ``_shard(s) -> {column: array}``.

    The compiled gather's reads over every shard at once come from :class:`NativePath`."""

    def _set_shards(self, rows: list[int]) -> None:
        self._offsets = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)]).astype(np.int64)
        self._offs = self._offsets.tolist()
        self._starts = self._offsets[:-1]  # each shard's first row, as the native gather takes them
        self.shard_rows = [int(r) for r in rows]  # the shuffle="shard" order's units

    share_views = True  # contiguous batches of read-only data are returned zero-copy

    def get_batch(
        self, indices: Any, out: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """See :meth:`BaseDataset.get_batch`; a ``range`` (the sequential loader's batches) goes
        to :meth:`_views` before any planning (~2 us a batch less than the general path)."""
        if (
            out is None
            and type(indices) is range
            and indices.step == 1
            and 0 <= indices.start < indices.stop <= self._n
        ):
            got = self._views(indices.start, indices.stop)
            if got is not None:
                self.stats.batches, self.stats.rows = (
                    self.stats.batches + 1,
                    self.stats.rows + len(indices),
                )
                return got
        return super().get_batch(indices, out)

    def _views(self, lo: int, hi: int) -> dict[str, torch.Tensor] | None:
        """Rows ``[lo, hi)`` inside one shard of read-only arrays sliced straight to tensors;
        None where they need a copy, a cast or a CSR, or cross shards."""
        offs = self._offs
        s = bisect_right(offs, lo) - 1
        if hi > offs[s + 1] or not self.share_views:
            return None
        out, base, plain = {}, offs[s], self._uncast()
        for name, v in self._shard(s).items():
            if (
                v.__class__ is not np.ndarray
                or v.flags.writeable
                or plain.get(name) != v.dtype
                or not v.dtype.isnative
            ):
                return None
            out[name] = shared_tensor(v[lo - base : hi - base])
        self._count(1)
        return out

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
        if _gather.native is not None:
            out = self._read_native(plan, [s])
            if out is not None:
                return out
        local = plan.idx - base if base else plan.idx
        breaks = run_breaks(local)  # once for every column
        return {c.name: _take(arrays[c.name], local, breaks) for c in self._cols}

    _idle_advice = 0  # will_need calls left to skip

    def _mapped(self, s: int) -> dict[str, Array] | None:
        """Shard ``s``'s arrays where they are local mappings that read-ahead advice can reach
        without reading anything now; None (the default): no advice."""
        return None

    def will_need(self, starts: np.ndarray, lengths: np.ndarray) -> int:
        """Ask the kernel to read these runs of rows ahead, without waiting (the sampler's next
        window in block and shard order: a cold epoch then reads ahead as a sequential one
        does); returns the bytes asked for, at most ``WILL_NEED_BYTES`` a call. Dense columns.
        Where a call finds every run resident, the next 7 return 0 at once (warm data: looking
        cost ~1 us a batch)."""
        if self._idle_advice > 0:
            self._idle_advice -= 1
            return 0
        asked, offs = 0, self._offs
        for r0, r1 in zip(starts.tolist(), (starts + lengths).tolist()):
            s = bisect_right(offs, r0) - 1
            while r0 < r1 and asked < WILL_NEED_BYTES:
                end, arrays = min(r1, offs[s + 1]), self._mapped(s)
                for v in (arrays or {}).values():
                    if isinstance(v, np.ndarray):
                        asked += will_need(v, r0 - offs[s], end - offs[s])
                r0, s = end, s + 1
        self._idle_advice = 0 if asked else 7
        return asked

    def _shard_span(self, plan: Plan) -> tuple[int, int]:
        """The first and last shard the batch's rows lie in."""
        return bisect_right(self._offs, plan.lo) - 1, bisect_right(self._offs, plan.hi) - 1

    def _spans(self, idx: np.ndarray, s0: int, s1: int) -> list[tuple[int, int, int]]:
        """``(shard, a, b)`` for each shard that ascending ``idx`` touches: ``idx[a:b]`` lie in
        it."""
        cuts = [0, *np.searchsorted(idx, self._offsets[s0 + 1 : s1 + 1]).tolist(), idx.size]
        return [
            (s, cuts[j], cuts[j + 1])
            for j, s in enumerate(range(s0, s1 + 1))
            if cuts[j + 1] > cuts[j]
        ]

    def _read_across(self, plan: Plan, s0: int, s1: int) -> dict[str, Array]:
        """Several shards: one native call per column, or, with numpy, sorted rows gathered
        shard by shard into one array, then put back in the order asked."""
        if _gather.native is not None:
            if self._native_sources() is not None:
                touched = None  # the kernel finds each row's shard: count the span's shards
            elif plan.ascending:
                touched = [s for s, _, _ in self._spans(plan.idx, s0, s1)]
            else:
                sid = np.searchsorted(self._offsets, plan.idx, side="right") - 1
                touched = (np.flatnonzero(np.bincount(sid - s0)) + s0).tolist()
            got = self._read_native(plan, touched)
            if got is not None:
                self._count(s1 - s0 + 1 if touched is None else len(touched))
                return got
        order = None if plan.ascending else np.argsort(plan.idx, kind="stable")
        idx = plan.idx if order is None else plan.idx[order]
        spans = self._spans(idx, s0, s1)
        self._count(len(spans))
        shards = {s: self._shard(s) for s, _, _ in spans}  # each fetched once, whatever the columns
        breaks = run_breaks(idx)
        # each shard's local rows and runs, found once for every column
        local = [
            (
                s,
                a,
                b,
                idx[a:b] - self._offs[s],
                None if breaks is None else breaks[(breaks > a) & (breaks < b)] - a,
            )
            for s, a, b in spans
        ]
        out: dict[str, Array] = {}
        for c in self._cols:
            if c.sparse:
                parts = [shards[s][c.name].take(rows) for s, _, _, rows, _ in local]
                csr = concat(parts)
                if order is not None:
                    inv = np.empty_like(order)
                    inv[order] = np.arange(order.size)
                    csr = csr.take(inv)
                out[c.name] = csr
                continue
            first = shards[spans[0][0]][c.name]
            buf = np.empty((idx.size, *first.shape[1:]), first.dtype)
            for s, a, b, rows, runs in local:
                gather(shards[s][c.name], rows, buf[a:b], breaks=runs)
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


def _take(v: Array, local: np.ndarray, breaks: np.ndarray | None) -> Array:
    if isinstance(v, CSR):
        return v.take(local)
    return gather(v, local, np.empty((local.size, *v.shape[1:]), v.dtype), breaks=breaks)
