"""Python iterables and generators of rows or of batches, grouped into chunks.

Auto-detection (``iterable=None``) looks at the FIRST item only, and treats every later item the
same:

- a dict whose values are all arrays (NumPy, torch, ``CSR``, scipy.sparse) with ``ndim >= 1`` and
  one common length -> batches (keys are columns);
- a NumPy array / torch tensor with ``ndim >= 2``, a ``CSR`` or a scipy.sparse matrix -> a batch of
  column ``"x"``;
- anything else -> one row: a dict maps column -> value, any other value (scalar, tuple, list, 1-D
  array) is the row of column ``"x"``.

Pass ``iterable="rows"`` for rows that are themselves 2-D arrays or dicts of equal-length vectors.

>>> from workbench.inputs import open_source
>>> src = open_source(({"x": np.ones(3), "y": i % 2} for i in range(100)))
>>> first, chunk = next(src.chunks(64)); first, chunk["x"].shape, chunk["y"].shape
(0, (64, 3), (64,))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.chunks import Chunk, rebatch
from ..format.schema import select
from ..format.sparse import CSR
from .arraylike import torch_to_numpy
from .base import Source, check_numeric
from .kinds import is_scipy_sparse, is_torch
from .rowstack import WHERE, dense_column, sparse_column

__all__: list[str] = []


def _is_batch_value(v: Any) -> bool:
    if isinstance(v, CSR) or is_scipy_sparse(v):
        return True
    return (isinstance(v, np.ndarray) or is_torch(v)) and v.ndim >= 1


def _length(v: Any) -> int:
    return int(v.shape[0]) if hasattr(v, "shape") else len(v)


def detect(item: Any) -> str:
    """``"rows"`` or ``"batches"`` for an iterable's first item (the rule in the module doc)."""
    if isinstance(item, dict):
        vals = list(item.values())
        if vals and all(_is_batch_value(v) for v in vals) and len({_length(v) for v in vals}) == 1:
            return "batches"
        return "rows"
    if isinstance(item, CSR) or is_scipy_sparse(item):
        return "batches"
    if (isinstance(item, np.ndarray) or is_torch(item)) and item.ndim >= 2:
        return "batches"
    return "rows"


def iterable_source(obj: Any, *, iterable: str | None = None, **opts: Any) -> IterableSource:
    """``open_source`` of a Python iterable: ``iterable=`` is its ``"rows"``/``"batches"`` mode."""
    return IterableSource(obj, mode=iterable, **opts)


class IterableSource(Source):
    """Rows or batches from any Python iterable; one-shot iterators can be read only once."""

    where = WHERE

    def __init__(
        self,
        obj: Any,
        *,
        mode: str | None = None,
        columns=None,
        drop=None,
        target=None,
        sparse=None,
        nan="error",
        dtype=None,
    ):
        super().__init__()
        if mode not in (None, "rows", "batches"):
            raise InvalidInputError(f"iterable={mode!r}: use 'rows', 'batches' or None (auto)")
        self._obj, self.mode, self.nan = obj, mode, nan
        self._one_shot = iter(obj) is obj
        self._used = False
        self._opts = (columns, drop, target, dict(sparse or {}))
        self._dtype = None if dtype is None else np.dtype(dtype)
        self._names: list[str] | None = None  # output columns, fixed by the first row/batch
        self._keys: set[str] = set()
        self._dict_rows = False
        self._row_specs: dict[str, tuple[np.dtype, tuple]] = {}
        if isinstance(obj, Sequence) and len(obj) and (mode or detect(obj[0])) == "rows":
            self.num_rows = len(obj)
        kind = "generator" if self._one_shot else type(obj).__name__
        self.description = f"iterable of {mode or 'rows/batches (auto)'} ({kind})"

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        if self._one_shot and self._used:
            raise InvalidInputError(
                "iterable: this iterator was already read to its end; pass a list, or create the "
                "generator again and open a new source"
            )
        self._used = True
        it = iter(self._obj)
        try:
            head = next(it)
        except StopIteration:
            raise InvalidInputError(
                "iterable: it yielded nothing; give it at least one row"
            ) from None
        mode = self.mode or detect(head)

        def items() -> Iterator[Any]:
            yield head
            yield from it

        total = 0
        gen = (
            self._from_rows(items(), chunk_rows, start)
            if mode == "rows"
            else rebatch(self._from_batches(items(), start), chunk_rows, start)
        )
        for first, chunk in gen:
            total += 1
            yield first, chunk
        if total == 0 and start == 0:
            raise InvalidInputError("iterable: it yielded no rows; give it at least one row")

    # ---- rows -----------------------------------------------------------------------------------

    def _from_rows(
        self, items: Iterator[Any], chunk_rows: int, start: int
    ) -> Iterator[tuple[int, Chunk]]:
        buf: list[Any] = []
        row = 0
        for item in items:
            if row >= start:
                buf.append(item)
                if len(buf) == chunk_rows:
                    yield row - len(buf) + 1, self._assemble(buf, row - len(buf) + 1)
                    buf = []
            row += 1
        if buf:
            yield row - len(buf), self._assemble(buf, row - len(buf))

    def _assemble(self, rows: list[Any], first: int) -> Chunk:
        columns, drop, target, sparse = self._opts
        if self._names is None:
            names = [str(k) for k in rows[0]] if isinstance(rows[0], dict) else ["x"]
            keep = [*([target] if target else []), *sparse]
            if target is not None and target not in names:
                raise InvalidInputError(
                    f"iterable: target={target!r} is not a column; the columns are {names}"
                )
            self._keys = set(names)
            self._dict_rows = isinstance(rows[0], dict)
            self._names = select(WHERE, names, columns, drop, keep)
        if self._dict_rows:
            for i, r in enumerate(rows):
                if not isinstance(r, dict) or r.keys() != self._keys:
                    got = sorted(r) if isinstance(r, dict) else type(r).__name__
                    raise InvalidInputError(
                        f"iterable: row {first + i} has columns {got}, expected "
                        f"{sorted(self._keys)}; give every row the same keys"
                    )
            table = {k: [r[k] for r in rows] for k in self._names}
        else:
            table = {"x": rows}
        out: Chunk = {}
        for k, vals in table.items():
            out[k] = (
                sparse_column(k, vals, first, sparse[k], self._dtype)
                if k in sparse
                else dense_column(k, vals, first, self._row_specs, self._dtype)
            )
        return out

    # ---- batches --------------------------------------------------------------------------------

    def _from_batches(self, items: Iterator[Any], start: int) -> Iterator[Chunk]:
        columns, drop, target, sparse = self._opts
        row = 0
        for item in items:
            chunk = self._batch(item, row)
            if self._names is None:
                keep = [*([target] if target else []), *sparse]
                if target is not None and target not in chunk:
                    raise InvalidInputError(
                        f"iterable: target={target!r} is not a column; the columns are "
                        f"{list(chunk)}"
                    )
                self._names = select(WHERE, list(chunk), columns, drop, keep)
            missing = [k for k in self._names if k not in chunk]
            if missing:
                raise InvalidInputError(
                    f"iterable: the batch at row {row} lacks columns {missing}; give every batch "
                    "the same columns"
                )
            chunk = {k: chunk[k] for k in self._names}
            n = len(next(iter(chunk.values())))
            if row + n > start:
                skip = max(0, start - row)
                yield {
                    k: (v.slice(skip, n).compact() if isinstance(v, CSR) else v[skip:])
                    for k, v in chunk.items()
                }
            row += n

    def _batch(self, item: Any, row: int) -> Chunk:
        sparse = self._opts[3]
        if not isinstance(item, dict):
            if not (
                isinstance(item, CSR)
                or is_scipy_sparse(item)
                or ((isinstance(item, np.ndarray) or is_torch(item)) and item.ndim >= 1)
            ):
                raise InvalidInputError(
                    f"iterable: the item at row {row} is a {type(item).__name__}, not a batch; "
                    "yield dicts of arrays or arrays, or pass iterable='rows'"
                )
            item = {"x": item}
        out: Chunk = {}
        for k, v in item.items():
            if is_scipy_sparse(v):
                v = CSR.from_scipy(v)
            elif is_torch(v):
                v = torch_to_numpy(v, WHERE, k)
            elif k in sparse and not isinstance(v, (CSR, np.ndarray)):
                v = CSR.from_lists([list(r) for r in v], sparse[k])
            if not isinstance(v, CSR):
                v = np.asarray(v)
                check_numeric(WHERE, str(k), v.dtype, row)
                if v.ndim == 0:
                    raise InvalidInputError(
                        f"iterable: batch at row {row}, column {k!r} is 0-d; give arrays of rows"
                    )
                if self._dtype is not None and v.dtype.kind == "f":
                    v = v.astype(self._dtype)
            elif k in sparse and v.dim != sparse[k]:
                raise InvalidInputError(
                    f"iterable: column {k!r} has width {v.dim}, sparse= says {sparse[k]}; "
                    "make them agree"
                )
            out[str(k)] = v
        return out
