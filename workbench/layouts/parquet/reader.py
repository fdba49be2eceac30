"""The parquet layout's reader, also used for foreign Parquet files and folders (columns found by
``inputs.parquet``).

Rows map to row groups; a batch reads only the row groups it touches (only the selected columns),
converts them to numpy once (``fixed_size_list`` zero-copy via its flattened child), and keeps the
two most recent per process so block-ordered batches reuse them.

>>> ds = wb.open_dataset("demo_data/raw/demo.parquet", sparse_dims={"tokens": 1000})
>>> ds.get_batch([3, 1])["tokens"].shape        # the list column, expanded to dense rows
torch.Size([2, 1000])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ...datasets.arrays import Array
from ...datasets.base import sparse_row_nbytes
from ...datasets.blocks import BlockDataset
from ...errors import CorruptDatasetError, InvalidInputError
from ...format.manifest import Column, Manifest
from ...format.sparse import CSR
from ..base import shard_paths

__all__: list[str] = []


class ParquetDataset(BlockDataset):
    kind = "parquet"

    def __init__(
        self, files: list[Path], cols: tuple[Column, ...], *, where: str, **kw: Any
    ) -> None:
        self._files = [str(f) for f in files]
        self._pf: dict[int, pq.ParquetFile] = {}
        self._pf_pid = os.getpid()
        blocks, rows, nnz = [], [], {c.name: 0 for c in cols if c.sparse}
        for fi in range(len(files)):
            md = self._file(fi).metadata
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                blocks.append((fi, g))
                rows.append(rg.num_rows)
                for j in range(rg.num_columns):
                    path = rg.column(j).path_in_schema
                    for name in nnz:
                        if path.startswith(name + ".list."):
                            nnz[name] += rg.column(j).num_values
        super().__init__(cols, sum(rows), where=where, **kw)
        self._blocks = blocks
        self._set_blocks(rows)
        for c in cols:
            if c.sparse:
                self.row_nbytes += sparse_row_nbytes(c, nnz[c.name], self._n)
        self.block_rows = max(rows) if rows else 64
        self._arrow_names = [
            n
            for c in cols
            for n in ([c.name, c.name + ".values"] if c.sparse and c.has_values else [c.name])
        ]

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_pf": {}, "_pf_pid": None}

    def _file(self, fi: int) -> pq.ParquetFile:
        if self._pf_pid != os.getpid():
            self._pf, self._pf_pid = {}, os.getpid()
        pf = self._pf.get(fi)
        if pf is None:
            try:
                pf = self._pf[fi] = pq.ParquetFile(self._files[fi])
            except (OSError, pa.ArrowException) as e:
                raise CorruptDatasetError(
                    f"{self._files[fi]}: unreadable Parquet ({e}); check the file or convert again"
                ) from None
        return pf

    def _load_block(self, b: int) -> dict[str, Array]:
        fi, g = self._blocks[b]
        try:
            t = self._file(fi).read_row_group(g, columns=self._arrow_names)
        except (OSError, pa.ArrowException) as e:
            raise CorruptDatasetError(
                f"{self._files[fi]}: row group {g}: {e}; run `workbench verify` or check the file"
            ) from None
        out: dict[str, Array] = {}
        for c in self._cols:
            where = f"{self._files[fi]} row group {g} column {c.name!r}"
            if c.sparse:
                out[c.name] = _csr(t, c, where)
            else:
                out[c.name] = _dense(_one_chunk(t.column(c.name)), c, where)
        return out

    def describe_source(self) -> str:
        files = (
            f"{len(self._files)} file(s)"
            if len(self._files) > 1
            else self._files[0]
            if self._files
            else "-"
        )
        return f"{self.where} ({files}, {len(self._blocks)} row group(s))"


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _dense(arr: pa.Array, c: Column, where: str) -> np.ndarray:
    if arr.null_count:
        raise InvalidInputError(
            f"{where}: {arr.null_count} null value(s); fill them before loading"
        )
    n = len(arr)
    while pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()  # respects slicing; zero-copy
    try:
        a = arr.to_numpy(zero_copy_only=True)  # no nulls: a view of the Arrow buffer
    except pa.ArrowInvalid:
        a = arr.to_numpy(zero_copy_only=False)  # bit-packed booleans
    if a.dtype != np.dtype(c.dtype):
        a = a.astype(c.dtype)
    return a.reshape(n, *c.shape)


def _csr(t: pa.Table, c: Column, where: str) -> CSR:
    arr = _one_chunk(t.column(c.name))
    indptr = np.asarray(arr.offsets.to_numpy(), np.int64)
    indices = arr.values.to_numpy(zero_copy_only=False)
    values = None
    if c.has_values:
        varr = _one_chunk(t.column(c.name + ".values"))
        if not np.array_equal(np.asarray(varr.offsets.to_numpy(), np.int64), indptr):
            raise CorruptDatasetError(
                f"{where}: '{c.name}.values' lists differ in length from "
                f"'{c.name}'; every index needs one value"
            )
        values = varr.values.to_numpy(zero_copy_only=False).astype(c.dtype, copy=False)
    return CSR(indptr, indices, values, c.shape[0])


def open_reader(
    version: Path, manifest: Manifest, cols: tuple[Column, ...], **kw: Any
) -> ParquetDataset:
    return ParquetDataset(
        shard_paths(version, manifest),
        cols,
        where=str(version),
        manifest=manifest,
        version_dir=version,
        **kw,
    )
