"""The compiled gather's path over row-sharded arrays: every shard's array of a column opened
once, so that a batch is one native call per column whatever shards its rows lie in; batches
begun on the gather's helper threads while the caller works (``start_batch``/``finish_batch``);
and reads straight into a caller's ``out=`` tensors.

:class:`NativePath` is mixed into :class:`~.arrays.ArraysDataset`, whose shard bookkeeping
(``_offs``, ``_offsets``, ``_starts``, ``_shard``, ``_shard_span``, ``_count``) it reads.

>>> ds = wb.open_dataset("demo_data/demo.store", columns=["features", "label"])
>>> isinstance(ds, NativePath), ds.get_batch([7, 3])["label"].shape
(True, torch.Size([2]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import gather as _gather
from .gather import sharded_ok, take_into
from .plan import Plan, plan_for

__all__: list[str] = []

MAX_NATIVE_SHARDS = 4096  # the native path keeps every shard's memmaps open (2 columns: 8,192 fds)


class NativePath:
    """Reads of row-sharded arrays that take one compiled call per column (see the module)."""

    # column -> every shard's array, for the native path: None = not built yet; False = never
    # (the default: only readers whose shards stay open cheaply, memmaps, opt in with None)
    _sources: Any = False

    def _native_sources(self) -> dict[str, list[np.ndarray]] | None:
        """Every shard's array of each column, opened once, so that a batch is one native call
        per column with no Python splitting it by shard; None where a column cannot go that way
        (sparse, a strided user array, too many shards to keep open)."""
        if self._sources is None:
            self._sources = False  # first: an open that raises leaves the path off
            n = len(self._offs) - 1
            if n <= MAX_NATIVE_SHARDS:
                self._sources = self._column_sources(range(n)) or False
        return self._sources or None

    def _column_sources(self, shards: Any) -> dict[str, list[np.ndarray]] | None:
        """Column -> the arrays of ``shards``, where the native gather can read every column."""
        if any(c.sparse for c in self._cols):
            return None
        opened = [self._shard(s) for s in shards]
        srcs = {c.name: [sh[c.name] for sh in opened] for c in self._cols}
        return srcs if all(sharded_ok(v) for v in srcs.values()) else None

    def _read_native(self, plan: Plan, touched: list[int] | None) -> dict[str, np.ndarray] | None:
        """Every column in one native call each, rows in the order asked (no sort, no un-sort),
        over every shard, or over the ``touched`` ones where not all are open; None where a
        column cannot go that way."""
        srcs, starts = self._native_sources(), self._starts
        if srcs is None:
            srcs = self._column_sources(touched) if touched is not None else None
            if srcs is None:
                return None
            starts = self._offsets[touched]
        out = {}
        for name, arrays in srcs.items():
            out[name] = take_into(
                arrays, starts, plan.idx, np.empty((plan.k, *arrays[0].shape[1:]), arrays[0].dtype)
            )
        return out

    @property
    def reads_ahead(self) -> bool:  # type: ignore[override]
        """Whether an in-process loader can gather the next batch on the compiled gather's
        helper threads (every shard open, the extension built, more than one core)."""
        return (
            _gather.native is not None
            and _gather.native_threads() > 1
            and self._native_sources() is not None
        )

    def start_batch(self, indices: Any) -> Any:
        """Begin gathering the batch's widest column on the helper threads (:meth:`finish_batch`
        returns the batch); None where it cannot (contiguous, not every shard open, no helpers)."""
        n = len(indices)
        srcs = self._native_sources() if _gather.native is not None and n else None
        if (
            srcs is None
            or not isinstance(indices, np.ndarray)
            or int(indices[-1]) - int(indices[0]) == n - 1
        ):
            return None  # a sampler's sorted batch spanning n rows is one run: its read is a view
        plan = plan_for(indices, self._n, self.where)  # not contiguous: the check above
        # not Column.row_bytes: its np.prod per call cost ~10 us a batch, the background's gain
        name = max(srcs, key=lambda k: srcs[k][0][:1].nbytes)
        out = {k: np.empty((plan.k, *v[0].shape[1:]), v[0].dtype) for k, v in srcs.items()}
        if not _gather.start_into(srcs[name], self._starts, plan.idx, out[name]):
            return None
        for k, arrays in srcs.items():  # the narrower columns here, while the helpers copy
            if k != name:
                take_into(arrays, self._starts, plan.idx, out[k])
        return plan, out

    def finish_batch(self, started: Any) -> dict[str, Any]:
        """The batch :meth:`start_batch` began, once the helper threads are done with it."""
        plan, out = started
        _gather.finish_into()
        self.stats.batches += 1
        self.stats.rows += plan.k
        s0, s1 = self._shard_span(plan)
        self._count(s1 - s0 + 1)
        return self._to_torch({c.name: out[c.name] for c in self._cols}, self.sparse)

    def _read_to_out(self, plan: Plan, out: dict[str, np.ndarray]) -> bool:
        """One native gather per column into ``out``, or a plain copy of a contiguous run in
        one shard; False where the dtypes differ (a conversion) or a column cannot go that way."""
        s0, s1 = self._shard_span(plan)
        if plan.contiguous and s0 == s1:
            arrays, a = self._shard(s0), plan.lo - self._offs[s0]
            if any(c.sparse or arrays[c.name].dtype != out[c.name].dtype for c in self._cols):
                return False
            for c in self._cols:
                np.copyto(out[c.name], arrays[c.name][a : a + plan.k], casting="no")
            self._count(1)
            return True
        srcs = self._native_sources() if _gather.native is not None else None
        if srcs is None or any(v[0].dtype != out[k].dtype for k, v in srcs.items()):
            return False
        for name, arrays in srcs.items():
            take_into(arrays, self._starts, plan.idx, out[name])
        self._count(s1 - s0 + 1)
        return True
