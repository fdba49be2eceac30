"""Parquet files and folders of them, read by row group (random access through the metadata).

>>> src = open_source("data/", target="label")      # every .parquet below data/, sorted
>>> src.read(1000, 2000)["features"].shape
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInputError, SourceNotFoundError
from .base import Chunk, Source, concat_chunks, file_fingerprint, rebatch
from .tabular import TablePacker

def _parquet_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    files = sorted(str(p) for p in Path(path).rglob("*.parquet") if p.is_file())
    if not files:
        raise SourceNotFoundError(f"{path}: the folder holds no .parquet files; point at a file or "
                                  "a folder of .parquet files")
    return files


class ParquetSource(Source):
    """A Parquet file or folder of them, read row group by row group (random access via metadata)."""

    splittable = True

    def __init__(self, path: str, *, columns=None, drop=None, target=None, sparse=None,
                 nan="error", dtype=None):
        super().__init__()
        self.path = self.where = path
        self.nan = nan
        self.files = _parquet_files(path)
        rows, schema = [], None
        for i, f in enumerate(self.files):
            with self._errors(f):
                pf = pq.ParquetFile(f)
                s = pf.schema_arrow
                rows += [(i, g, pf.metadata.row_group(g).num_rows) for g in range(pf.num_row_groups)]
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
        kind = "file" if len(self.files) == 1 and self.files[0] == path else f"folder ({len(self.files)} files)"
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
                    it = self._open(i).iter_batches(batch_size=chunk_rows, row_groups=groups,
                                                    columns=self._packer.inputs)
                    for batch in it:
                        n = batch.num_rows
                        if row + n > start:
                            skip = max(0, start - row)
                            yield self._packer.pack(batch.slice(skip), row + skip)
                        row += n

        return rebatch(pieces(), chunk_rows, start)
