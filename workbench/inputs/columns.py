"""Named columns of equal length read by row range: how arrays, dicts of them and HDF5 datasets
become one :class:`Source`.

>>> src = dict_source({"x": np.zeros((10, 3)), "y": np.arange(10)}, target="y")
>>> src.read(2, 5)["x"].shape
(3, 3)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.chunks import Chunk, rebatch
from ..format.schema import select
from ..format.sparse import CSR
from .arraylike import ArrayCol, Col, make_col, npy_col
from .base import Source, array_fingerprint
from .kinds import is_torch

__all__: list[str] = []


class ColumnsSource(Source):
    """Named columns of equal length read by row range."""

    def __init__(
        self,
        cols: dict[str, Col],
        *,
        where: str,
        description: str,
        nan: str = "error",
        dtype: Any = None,
        target: str | None = None,
    ):
        super().__init__()
        self.where, self.description, self.nan = where, description, nan
        self.cols = cols
        self._dtype = None if dtype is None else np.dtype(dtype)
        if target is not None and target not in cols:
            raise InvalidInputError(
                f"{where}: target={target!r} is not a column; the columns are {list(cols)}"
            )
        lengths = {k: c.n for k, c in cols.items()}
        n = next(iter(lengths.values()))
        for k, m in lengths.items():
            if m != n:
                first = next(iter(lengths))
                raise InvalidInputError(
                    f"{where}: column {k!r} has {m} rows but {first!r} has {n}; give every column "
                    "the same number of rows"
                )
        if n == 0:
            raise InvalidInputError(f"{where}: the input has zero rows; give it data")
        self.num_rows = n
        self.splittable = all(c.small for c in cols.values())
        self.block_offsets = next(
            (c.boundaries() for c in cols.values() if c.boundaries() is not None), None
        )

    def fingerprint(self) -> str | None:
        return array_fingerprint(
            [(k, np.frombuffer(c.fingerprint().encode(), np.uint8)) for k, c in self.cols.items()]
        )

    def _read(self, start: int, stop: int) -> Chunk:
        out: Chunk = {}
        for k, c in self.cols.items():
            v = c.read(start, stop)
            if self._dtype is not None:
                if isinstance(v, CSR) and v.values is not None and v.values.dtype.kind == "f":
                    v = CSR(v.indptr, v.indices, v.values.astype(self._dtype), v.dim)
                elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    v = v.astype(self._dtype, copy=False)
            out[k] = v
        return out

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        n = self.num_rows or 0
        blocks = self.block_offsets
        if blocks is None:
            yield from super()._chunks(chunk_rows, start)
            return

        # Read block-aligned spans of >= chunk_rows rows so no dask block is computed twice.
        def spans() -> Iterator[Chunk]:
            a = start
            while a < n:
                want = a + chunk_rows
                b = int(blocks[np.searchsorted(blocks, want)]) if want < n else n
                yield self._read(a, b)
                a = b

        yield from rebatch(spans(), chunk_rows, start)


def dict_source(
    d: dict, *, columns=None, drop=None, target=None, sparse=None, nan="error", dtype=None
) -> ColumnsSource:
    if not d:
        raise InvalidInputError("in-memory array: the dict has no columns; give it some")
    where = "in-memory array"
    names = select(
        where,
        [str(k) for k in d],
        columns,
        drop,
        [*([target] if target in d else []), *(sparse or {})],
    )
    cols = {k: make_col(d[k], k, where, (sparse or {}).get(k)) for k in names}
    desc = "dict of " + ", ".join(f"{k}: {c.kind}" for k, c in cols.items())
    return ColumnsSource(cols, where=where, description=desc, nan=nan, dtype=dtype, target=target)


def single_source(
    obj: Any, *, columns=None, drop=None, target=None, sparse=None, nan="error", dtype=None
) -> ColumnsSource:
    # One array, or a .npy path, as column "x": columns=, drop= and sparse= pick among named
    # columns, and a single array has none to pick.
    path = obj if isinstance(obj, str) else None
    where = path or "in-memory array"
    col = npy_col(path, "x") if path else make_col(obj, "x", where)
    src = ColumnsSource(
        {"x": col},
        where=where,
        description=_describe(obj, col),
        nan=nan,
        dtype=dtype,
        target=target,
    )
    src.path = path
    return src


def _describe(obj: Any, col: Col) -> str:
    if isinstance(col, ArrayCol) and isinstance(obj, np.ndarray):
        return f"NumPy array {obj.shape} {obj.dtype}"
    if is_torch(obj):
        return f"torch tensor {tuple(obj.shape)} {obj.dtype}"
    return col.kind[0].upper() + col.kind[1:] if col.kind.startswith("sparse") else col.kind
