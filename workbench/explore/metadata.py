"""The storage facts of each kind ``wb.inspect`` takes, read from metadata only (no data): NumPy
``.npy`` headers and memmaps, HDF5 dataset properties, Parquet footers, Dask chunks, and a
workbench dataset's manifest plus its layout's own files.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .facts import ArrayFacts, regular_chunks

__all__: list[str] = []

PAGE = mmap.PAGESIZE


def _page_units(row_bytes: int) -> tuple[str, float, int]:
    return "page", (PAGE / row_bytes if row_bytes else 0.0), PAGE


def npy_facts(path: str, name: str | None = None) -> ArrayFacts:
    from ..inputs.memmaps import load_npy

    arr = load_npy(path)
    return array_facts(arr, name or Path(path).stem, path=path)


def array_facts(a: Any, name: str, path: str | None = None) -> ArrayFacts:
    """An ndarray (in memory) or a memmap (paged from its file)."""
    shape, dtype = tuple(int(s) for s in a.shape), str(a.dtype)
    row_bytes = int(a.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    filename = path or getattr(a, "filename", None)
    if filename is None:
        return ArrayFacts(
            name, shape, dtype, storage={"in memory": True, "C order": bool(a.flags.c_contiguous)}
        )
    unit, unit_rows, unit_bytes = _page_units(row_bytes)
    storage = {"offset": int(getattr(a, "offset", 0) or 0), "C order": bool(a.flags.c_contiguous)}
    return ArrayFacts(
        name,
        shape,
        dtype,
        disk_bytes=os.path.getsize(filename),
        unit=unit,
        unit_rows=unit_rows,
        unit_bytes=unit_bytes,
        storage=storage,
        files=(str(filename),),
    )


def h5_dataset_facts(ds: Any, name: str, filename: str) -> ArrayFacts:
    """One ``h5py.Dataset``: its chunk shape and filters, bytes stored."""
    shape, dtype = tuple(int(s) for s in ds.shape), str(ds.dtype)
    row_bytes = int(ds.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    storage: dict[str, Any] = {
        "key": ds.name,
        "chunks": ds.chunks,
        "compression": ds.compression,
        "compression_opts": ds.compression_opts,
        "shuffle": bool(ds.shuffle),
        "fletcher32": bool(ds.fletcher32),
        "scaleoffset": ds.scaleoffset,
    }
    stored = int(ds.id.get_storage_size())
    if ds.chunks:
        chunk_rows = min(int(ds.chunks[0]), max(1, shape[0]))  # a chunk past the end holds only it
        # a row read decodes every chunk across the row's width
        unit_bytes = chunk_rows * row_bytes
        unit, unit_rows = "hdf5 chunk", float(chunk_rows)
        rows_cut = regular_chunks(shape[0], chunk_rows) if shape else ()
        cols_cut = regular_chunks(shape[1], ds.chunks[1]) if len(shape) > 1 else ()
    else:
        unit, unit_rows, unit_bytes = _page_units(row_bytes)
        rows_cut, cols_cut = (), ()
        storage["chunks"] = "contiguous"
    return ArrayFacts(
        name,
        shape,
        dtype,
        disk_bytes=stored,
        unit=unit,
        unit_rows=unit_rows,
        unit_bytes=unit_bytes,
        row_chunks=rows_cut,
        col_chunks=cols_cut,
        storage=storage,
        files=(filename,),
    )


def hdf5_facts(path: str, key: str | None = None) -> list[ArrayFacts]:
    """Every dataset under ``key`` (default: the whole file) of the HDF5 file ``path``."""
    import h5py

    from ..inputs.hdf5 import open_h5

    with open_h5(path) as f:
        node = f if key is None else f.get(key)
        if node is None:
            names: list[str] = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            raise InvalidInputError(
                f"{path}: no {key!r} in the file; its datasets are {names}; "
                'pass one of them ("file.h5:key")'
            )
        if isinstance(node, h5py.Dataset):
            return [h5_dataset_facts(node, node.name.rsplit("/", 1)[-1], path)]
        found: list[ArrayFacts] = []
        node.visititems(
            lambda n, o: (
                found.append(h5_dataset_facts(o, o.name.lstrip("/"), path))
                if isinstance(o, h5py.Dataset) and o.ndim > 0
                else None
            )
        )
        return found


def parquet_facts(path: str) -> list[ArrayFacts]:
    """Each top-level column of a Parquet file or folder: row groups with codec and sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..inputs.parquet import parquet_files

    files = parquet_files(path)
    metas = []
    for f in files:
        try:
            metas.append(pq.ParquetFile(f).metadata)
        except (OSError, pa.ArrowException) as e:
            raise InvalidInputError(
                f"{f}: not a readable Parquet file ({e}); write it again"
            ) from None
    schema = pq.read_schema(files[0])
    groups = [(m, g) for m in metas for g in range(m.num_row_groups)]
    rows = tuple(int(m.row_group(g).num_rows) for m, g in groups)
    out = []
    for i, name in enumerate(schema.names):
        t = schema.field(name).type
        width = t.list_size if pa.types.is_fixed_size_list(t) else None
        value_t = t.value_type if width or pa.types.is_list(t) else t
        try:
            dtype = str(np.dtype(value_t.to_pandas_dtype()))
        except (NotImplementedError, TypeError):
            dtype = "object"
        chunks = [m.row_group(g).column(i) for m, g in groups]
        codecs = sorted({c.compression for c in chunks})
        stored = sum(int(c.total_compressed_size) for c in chunks)
        decoded = sum(int(c.total_uncompressed_size) for c in chunks)
        shape = (sum(rows),) + ((width,) if width else ())
        storage = {
            "row groups": len(rows),
            "codec": ", ".join(codecs),
            "arrow type": str(t),
            "decoded bytes": decoded,
        }
        ragged = pa.types.is_list(t) or dtype == "object"
        if ragged:
            storage["variable-length rows"] = True
        out.append(
            ArrayFacts(
                name,
                shape,
                dtype,
                disk_bytes=stored,
                unit="row group",
                unit_rows=sum(rows) / max(1, len(rows)),
                unit_bytes=decoded // max(1, len(rows)),
                row_chunks=rows,
                storage=storage,
                files=tuple(files),
                stored_row_bytes=decoded / max(1, sum(rows)) if ragged else 0.0,
            )
        )
    return out


def dask_facts(arr: Any, name: str = "array") -> ArrayFacts:
    shape, dtype = tuple(int(s) for s in arr.shape), str(arr.dtype)
    if any(np.isnan(c) for axis in arr.chunks for c in axis):
        raise InvalidInputError(
            f"the Dask array {name!r} has unknown chunk sizes; call arr.compute_chunk_sizes() first"
        )
    rows = tuple(int(c) for c in arr.chunks[0]) if arr.ndim else ()
    row_bytes = int(arr.dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    mean_rows = shape[0] / max(1, len(rows)) if rows else 0.0
    return ArrayFacts(
        name,
        shape,
        dtype,
        disk_bytes=None,
        unit="dask chunk",
        unit_rows=mean_rows,
        unit_bytes=int(mean_rows * row_bytes),
        row_chunks=rows,
        col_chunks=tuple(int(c) for c in arr.chunks[1]) if arr.ndim > 1 else (),
        storage={
            "chunks": len(rows) * (len(arr.chunks[1]) if arr.ndim > 1 else 1),
            "graph layers": len(arr.dask.layers) if hasattr(arr.dask, "layers") else None,
        },
    )


def dataset_facts(path: str) -> tuple[Any, Any, list[ArrayFacts]]:
    """A workbench dataset folder: ``(version folder, manifest, facts per column)``."""
    from ..format.catalog import read_manifest
    from ..layouts import capability

    version, m = read_manifest(path)
    shard_rows = tuple(s.rows for s in m.shards)
    out = []
    # a room whose shard is one file of every column says what its files show (HDF5 chunking,
    # Parquet row groups), read here from shard 0 by the readers of foreign files
    storage_facts = capability(m.layout, "storage_facts")
    readers = {"hdf5": hdf5_facts, "parquet": parquet_facts}
    stored_as = storage_facts(version, m, readers) if storage_facts is not None else None
    for col in m.columns:
        files = [
            (version / f.path, f) for s in m.shards for f in s.files if f.column in (col.name, None)
        ]
        own = sum(f.bytes for _, f in files if f.column == col.name)
        shape = (m.num_rows, *col.shape)
        storage: dict[str, Any] = {"layout": m.layout, "shards": len(m.shards)}
        if col.sparse:
            storage["sparse"] = "CSR (indptr, indices" + (", values)" if col.has_values else ")")
        disk: int | None = own or None
        got = stored_as(col) if stored_as is not None else None
        layout_facts = None if got is None else got.facts
        if got is not None:
            storage.update(got.storage)
            if got.disk_bytes is not None:
                disk = got.disk_bytes
        if disk is None and layout_facts is not None and m.shards[0].rows:
            # one file per shard holds every column: this column's share, from shard 0
            disk = int(layout_facts.disk_bytes * m.num_rows / m.shards[0].rows)
            storage["on disk"] = "estimated from shard 0" if len(m.shards) > 1 else "from the file"
        stored_row = (disk / m.num_rows) if (col.sparse and disk and m.num_rows) else 0.0
        unit, unit_rows, unit_bytes = _page_units(int(stored_row) or col.row_bytes)
        if got is not None and got.units:
            unit, unit_rows = layout_facts.unit, layout_facts.unit_rows
            unit_bytes = layout_facts.unit_bytes
        out.append(
            ArrayFacts(
                col.name,
                shape,
                col.dtype,
                disk_bytes=disk,
                unit=unit,
                unit_rows=unit_rows,
                unit_bytes=unit_bytes,
                row_chunks=shard_rows,
                storage=storage,
                files=tuple(sorted({str(p) for p, _ in files})),
                stored_row_bytes=stored_row,
            )
        )
    return version, m, out
