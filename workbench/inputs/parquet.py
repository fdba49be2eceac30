"""Parquet files and folders of them, read by row group (random access through the metadata).

>>> from workbench.inputs import open_source
>>> src = open_source("data/", target="label", sparse={"tokens": 1000})  # every .parquet, sorted
>>> src.description, src.num_rows, src.read(500, 1500)["features"].shape   # rows from both files
('Parquet folder (2 files) data/', 2000, (1000, 16))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInputError, SourceNotFoundError
from ..format.chunks import Chunk, concat_chunks, rebatch
from ..format.manifest import Column
from ..format.schema import check_columns
from .base import Source, file_fingerprint
from .tabular import TablePacker

__all__: list[str] = []


def parquet_files(path: str) -> list[str]:
    """A Parquet file, or every ``.parquet`` file below a folder (partitioned layouts too),
    sorted."""
    if os.path.isfile(path):
        return [path]
    files = sorted(str(p) for p in Path(path).rglob("*.parquet") if p.is_file())
    if not files:
        raise SourceNotFoundError(
            f"{path}: the folder holds no .parquet files; point at a file or "
            "a folder of .parquet files"
        )
    return files


class ParquetSource(Source):
    """A Parquet file or folder of them, read row group by row group (random access via the
    metadata)."""

    splittable = True

    def __init__(
        self,
        path: str,
        *,
        columns=None,
        drop=None,
        target=None,
        sparse=None,
        nan="error",
        dtype=None,
    ):
        super().__init__()
        self.path = self.where = path
        self.nan = nan
        self.files = parquet_files(path)
        rows, schema = [], None
        for i, f in enumerate(self.files):
            with self._errors(f):
                pf = pq.ParquetFile(f)
                s = pf.schema_arrow
                rows += [
                    (i, g, pf.metadata.row_group(g).num_rows) for g in range(pf.num_row_groups)
                ]
            if schema is None:
                schema = s
            elif not s.equals(schema):
                raise InvalidInputError(
                    f"{f}: its schema differs from {self.files[0]} ({s} vs {schema}); give every "
                    "file of the folder the same columns and types"
                )
        self._groups = [(i, g) for i, g, _ in rows]
        self._offsets = np.concatenate([[0], np.cumsum([r for _, _, r in rows])]).astype(np.int64)
        self.num_rows = int(self._offsets[-1])
        self.block_offsets = self._offsets
        if self.num_rows == 0:
            raise InvalidInputError(f"{path}: the Parquet data has no rows; give it data")
        kind = (
            "file"
            if len(self.files) == 1 and self.files[0] == path
            else f"folder ({len(self.files)} files)"
        )
        self.description = f"Parquet {kind} {path}"
        self._packer = TablePacker(path, schema, columns, drop, target, sparse, dtype)  # type: ignore[arg-type]
        self.feature_names = self._packer.feature_names

    @staticmethod
    @contextmanager
    def _errors(f: str) -> Iterator[None]:
        try:
            yield
        except InvalidInputError:
            raise
        except (OSError, pa.ArrowException) as e:
            raise InvalidInputError(
                f"{f}: cannot read Parquet data ({type(e).__name__}: {e}); the file is damaged or "
                "not Parquet: re-create it"
            ) from None

    def _open(self, i: int) -> pq.ParquetFile:
        return pq.ParquetFile(self.files[i], page_checksum_verification=True)

    def fingerprint(self) -> str | None:
        return file_fingerprint(self.files)

    def _group_at(self, row: int) -> int:
        return int(np.searchsorted(self._offsets, row, side="right")) - 1

    def _read(self, start: int, stop: int) -> Chunk:
        parts = []
        for gi in range(self._group_at(start), self._group_at(max(start, stop - 1)) + 1):
            i, g = self._groups[gi]
            lo = int(self._offsets[gi])
            a, b = max(start, lo), min(stop, int(self._offsets[gi + 1]))
            with self._errors(self.files[i]):
                table = self._open(i).read_row_group(g, columns=self._packer.inputs)
            parts.append(self._packer.pack(table.slice(a - lo, b - a), a))
        return concat_chunks(parts)

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        def pieces() -> Iterator[Chunk]:
            if start >= self.num_rows:
                return
            g0 = self._group_at(start)
            row = int(self._offsets[g0])
            for i in range(self._groups[g0][0], len(self.files)):
                groups = [g for fi, g in self._groups[g0:] if fi == i]
                if not groups:
                    continue
                with self._errors(self.files[i]):
                    it = self._open(i).iter_batches(
                        batch_size=chunk_rows, row_groups=groups, columns=self._packer.inputs
                    )
                    for batch in it:
                        n = batch.num_rows
                        if row + n > start:
                            skip = max(0, start - row)
                            yield self._packer.pack(batch.slice(skip), row + skip)
                        row += n

        return rebatch(pieces(), chunk_rows, start)


def dataset_columns(
    path: str, columns: Any, sparse_dims: dict[str, int] | None
) -> tuple[list[str], tuple[Column, ...]]:
    """``open_dataset``'s view of a foreign Parquet file or folder: its files and each selected
    column as stored (no packing): scalars, ``fixed_size_list`` as shaped, list columns named in
    ``sparse_dims`` as sparse indices (``<col>.values`` as their values)."""
    files = parquet_files(path)
    try:
        schema = pq.read_schema(files[0])
    except (OSError, pa.ArrowException) as e:
        raise InvalidInputError(
            f"{files[0]}: not a readable Parquet file ({e}); check the path"
        ) from None
    sparse_dims = dict(sparse_dims or {})
    names = list(schema.names)
    companions = {n + ".values" for n in sparse_dims if n + ".values" in names}
    avail = tuple(
        Column(n, "float32") for n in names if n not in companions
    )  # names only, for selection
    picked = [c.name for c in check_columns(avail, columns, path)]
    cols = tuple(_column(schema, n, sparse_dims, f"{files[0]}") for n in picked)
    want = {n: schema.field(n).type for n in picked}
    for f in files[1:]:
        s = pq.read_schema(f)
        bad = [n for n in picked if n not in s.names or s.field(n).type != want[n]]
        if bad:
            raise InvalidInputError(
                f"{f}: column(s) {bad} missing or typed differently from {files[0]}; "
                "all files of a folder need the same schema"
            )
    return files, cols


def parquet_dataset(
    source: Any, where: str, columns: Any, *, sparse_dims: dict[str, int] | None, **kw: Any
) -> Any:
    """``open_dataset`` of a foreign Parquet file or folder: the parquet layout's reader."""
    from ..layouts.parquet.reader import ParquetDataset

    files, cols = dataset_columns(where, columns, sparse_dims)
    return ParquetDataset(files, cols, where=where, **kw)  # type: ignore[arg-type]


def _column(schema: pa.Schema, name: str, sparse_dims: dict[str, int], where: str) -> Column:
    t = schema.field(name).type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if name not in sparse_dims:
            raise InvalidInputError(
                f"{where}: column {name!r} is a list column ({t}); pass "
                f"sparse_dims={{{name!r}: <row width>}} to read it as sparse "
                "indices, or leave it out with columns=[...]"
            )
        idx_t = t.value_type
        if not pa.types.is_integer(idx_t):
            raise InvalidInputError(
                f"{where}: list column {name!r} holds {idx_t}, sparse indices must "
                "be integers; cast the column or leave it out with columns=[...]"
            )
        has_values = name + ".values" in schema.names
        vdt = (
            _numpy_dtype(schema.field(name + ".values").type.value_type, name, where)
            if has_values
            else "float32"
        )
        return Column(
            name,
            vdt,
            (int(sparse_dims[name]),),
            sparse=True,
            index_dtype=str(np.dtype(idx_t.to_pandas_dtype())),
            has_values=has_values,
        )
    shape = []
    while pa.types.is_fixed_size_list(t):
        shape.append(t.list_size)
        t = t.value_type
    return Column(name, _numpy_dtype(t, name, where), tuple(shape))


def _numpy_dtype(t: pa.DataType, name: str, where: str) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return str(np.dtype(t.to_pandas_dtype()))
    raise InvalidInputError(
        f"{where}: column {name!r} has type {t}, which is not numeric; leave it "
        "out with columns=[...]"
    )
