"""In-memory Arrow tables and pandas DataFrames: packed like CSV/Parquet for ``convert``
(:class:`ArrowTableSource`), or read column by column as stored for ``open_dataset``.

>>> import pandas as pd
>>> df = pd.DataFrame({"age": [31, 45, 27], "height": [1.8, 1.6, 1.7], "label": [0, 1, 0]})
>>> src = ArrowTableSource(as_arrow(df), description="pandas DataFrame", target="label")
>>> src.num_rows, src.feature_names     # numeric columns packed into "features"
(3, {'features': ('age', 'height')})
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from ..errors import InvalidInputError
from ..format.chunks import Chunk
from .base import Source
from .tabular import TablePacker, as_numbers, column_of, is_number

__all__: list[str] = []


class ArrowTableSource(Source):
    """An in-memory ``pyarrow.Table`` or pandas DataFrame (the same packing as CSV/Parquet)."""

    def __init__(
        self,
        table: pa.Table,
        *,
        description: str,
        columns=None,
        drop=None,
        target=None,
        sparse=None,
        nan="error",
        dtype=None,
    ):
        super().__init__()
        self.where, self.nan, self.description = "in-memory table", nan, description
        self._table = table
        self.num_rows = table.num_rows
        if self.num_rows == 0:
            raise InvalidInputError("in-memory table: it has no rows; give it data")
        self._packer = TablePacker(self.where, table.schema, columns, drop, target, sparse, dtype)
        self.feature_names = self._packer.feature_names

    def fingerprint(self) -> str | None:
        h = xxhash.xxh3_64(str(self._table.schema).encode())
        for col in self._table.columns:
            for arr in col.chunks:
                h.update(f"{arr.offset}|{len(arr)}".encode())
                for buf in arr.buffers():
                    if buf is not None:
                        h.update(memoryview(buf))
        return h.hexdigest()

    def _read(self, start: int, stop: int) -> Chunk:
        return self._packer.pack(self._table.slice(start, stop - start), start)


def table_source(obj: Any, **opts: Any) -> ArrowTableSource:
    """A pyarrow Table or RecordBatch, or a pandas DataFrame, as a :class:`Source`."""
    table = as_arrow(obj)
    what = "pandas DataFrame" if type(obj).__module__.startswith("pandas") else "Arrow table"
    return ArrowTableSource(table, description=f"{what} ({table.num_rows} rows)", **opts)


def as_arrow(obj: Any) -> pa.Table:
    """A pyarrow Table from an Arrow table or record batch, or a pandas DataFrame."""
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if isinstance(obj, pa.Table):
        return obj
    try:
        return pa.Table.from_pandas(obj, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InvalidInputError(
            f"in-memory table: a column mixes types ({e}); give each column one type"
        ) from None


def stored_columns(table: pa.Table, where: str) -> dict[str, np.ndarray]:
    """``open_dataset``'s view of an in-memory table: each numeric or ``fixed_size_list`` column as
    it is stored (no packing into ``"features"``); anything else is refused by name."""
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = column_of(table, name)
        t, shape = col.type, []
        while pa.types.is_fixed_size_list(t):
            shape.append(t.list_size)
            t = t.value_type
        if not (is_number(t) and not pa.types.is_null(t) and not pa.types.is_decimal(t)):
            raise InvalidInputError(
                f"{where}: column {name!r} has type {col.type}; open_dataset reads numeric and "
                "fixed-size list columns as stored: drop it, or convert the table first "
                "(wb.convert(table, 'data.store', sparse=...)), which packs and encodes columns"
            )
        if col.null_count:
            raise InvalidInputError(
                f"{where}: column {name!r} has {col.null_count} missing values; fill them first"
            )
        flat = col
        for _ in shape:
            flat = flat.flatten()
        out[name] = as_numbers(flat).reshape(len(col), *shape)
    return out
