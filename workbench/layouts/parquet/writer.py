"""The "parquet" layout: one Parquet file per shard, uniform row groups, page checksums on.

Shaped dense columns are ``fixed_size_list`` (read back zero-copy); sparse columns are
``list<int>`` indices plus ``list<float>`` ``<col>.values`` when values are stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...format.chunks import Chunk
from ...format.manifest import Column, FileEntry
from ..base import shard_file_entry

__all__: list[str] = []

DEFAULT_ROW_GROUP_BYTES = 4 << 20  # one row group: one block-shuffle block


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    fields = []
    for c in columns:
        t = pa.from_numpy_dtype(np.dtype(c.dtype))
        if c.sparse:
            fields.append(
                pa.field(c.name, pa.large_list(pa.from_numpy_dtype(np.dtype(c.index_dtype))))
            )
            if c.has_values:
                fields.append(pa.field(c.name + ".values", pa.large_list(t)))
        elif c.shape:
            fields.append(pa.field(c.name, pa.list_(t, int(np.prod(c.shape)))))
        else:
            fields.append(pa.field(c.name, t))
    return pa.schema(fields)


def to_table(columns: tuple[Column, ...], chunk: Chunk, schema: pa.Schema) -> pa.Table:
    arrays = []
    for c in columns:
        v = chunk[c.name]
        if c.sparse:
            comp = v.compact()
            offsets = pa.array(comp.indptr.astype(np.int64))
            arrays.append(
                pa.LargeListArray.from_arrays(offsets, pa.array(comp.indices.astype(c.index_dtype)))
            )
            if c.has_values:
                arrays.append(
                    pa.LargeListArray.from_arrays(offsets, pa.array(comp.values.astype(c.dtype)))
                )
        elif c.shape:
            flat = np.ascontiguousarray(v, dtype=c.dtype).reshape(-1)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat), int(np.prod(c.shape))))
        else:
            arrays.append(pa.array(np.ascontiguousarray(v, dtype=c.dtype)))
    return pa.Table.from_arrays(arrays, schema=schema)


class ParquetWriter:
    def __init__(
        self, version_dir: Path, index: int, columns: tuple[Column, ...], options: dict[str, Any]
    ) -> None:
        self.root, self.columns = version_dir, columns
        self.rel = f"{index:05d}.parquet"
        self.row_group_rows = int(options["row_group_rows"])
        self.durable = bool(options.get("durable"))
        self.schema = arrow_schema(columns)
        self.w = pq.ParquetWriter(
            version_dir / self.rel,
            self.schema,
            compression=options.get("compression") or "none",
            use_dictionary=False,
            write_page_checksum=True,
            write_statistics=False,
        )
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def write(self, chunk: Chunk) -> None:
        # Arrow's default allocator (mimalloc) keeps freed buffers cached; without this its
        # cache, and so the peak RSS, creeps up with the input size.
        pa.default_memory_pool().release_unused()
        t = to_table(self.columns, chunk, self.schema)
        self.pending.append(t)
        self.pending_rows += t.num_rows
        if self.pending_rows >= self.row_group_rows:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        table = pa.concat_tables(self.pending)
        cut = table.num_rows if final else table.num_rows - table.num_rows % self.row_group_rows
        if cut:
            self.w.write_table(table.slice(0, cut), row_group_size=self.row_group_rows)
        rest = table.slice(cut)
        self.pending, self.pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
        del table

    def discard(self) -> None:
        """Close the file after a failure (a full disk): its footer may not fit; errors ignored."""
        self.pending, self.pending_rows = [], 0
        try:
            self.w.close()
        except OSError:
            pass
        handle = getattr(self.w, "file_handle", None)
        if handle is not None and not handle.closed:
            try:
                handle.close()
            except OSError:
                pass

    def close(self) -> tuple[FileEntry, ...]:
        if self.pending:
            self._flush(final=True)
        self.w.close()
        return (shard_file_entry(self.root, self.rel, self.durable),)
