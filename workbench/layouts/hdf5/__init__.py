"""The "hdf5" layout: one chunked HDF5 file per shard, fletcher32 on every dataset. Its reader
also reads foreign HDF5 files (see ``workbench.inputs.hdf5`` for how their columns are found)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...format.manifest import Column, Manifest
from ..base import ColumnStorage
from .check import check_shard as check_shard
from .lazyfile import dask_source as dask_source
from .writer import HDF5Writer as Writer  # noqa: F401  (the room's furniture)

__all__: list[str] = []


def open_reader(version: Path, manifest: Manifest, columns: tuple[Column, ...], **kw: Any) -> Any:
    """The torch Dataset over a committed dataset of this layout (loads torch on first use)."""
    from .reader import open_reader as open_

    return open_(version, manifest, columns, **kw)


def writer_options(
    *, shard_rows: int, row_bytes: int, hdf5_chunk_bytes: int | None = None, **asked: Any
) -> dict[str, Any]:
    """HDF5 chunks of about ``hdf5_chunk_bytes`` (default 1 MiB)."""
    from .writer import DEFAULT_HDF5_CHUNK_BYTES

    return {"chunk_bytes": hdf5_chunk_bytes or DEFAULT_HDF5_CHUNK_BYTES}


def storage_facts(
    version: Path, manifest: Manifest, readers: Mapping[str, Callable[..., list[Any]]]
) -> Callable[[Column], ColumnStorage | None]:
    """Each column as shard 0's file stores it: HDF5 chunking, compression, fletcher32, read by
    ``readers["hdf5"](path, key)`` (``wb.inspect``'s facts of an HDF5 file's datasets)."""
    first = next((version / f.path for s in manifest.shards for f in s.files), None)

    def of(col: Column) -> ColumnStorage | None:
        if first is None:
            return None
        parts = readers["hdf5"](str(first), col.name)  # a CSR column is a group of datasets
        if col.sparse:  # its parts' bytes, scaled from shard 0; its reads are rows, not chunks
            stored = sum(p.disk_bytes or 0 for p in parts)
            disk = int(stored * manifest.num_rows / max(1, manifest.shards[0].rows))
            return ColumnStorage(parts[0], {}, disk_bytes=disk, units=False)
        shown = {k: parts[0].storage[k] for k in ("chunks", "compression", "fletcher32")}
        return ColumnStorage(parts[0], shown)

    return of
