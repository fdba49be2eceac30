"""On-disk formats. Each module furnishes the same room: a ``ShardWriter`` and ``check_shard``.

A writer receives validated chunks for one shard and returns its :class:`FileEntry` list on
``close()``; it knows nothing about commits, sources or progress.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..manifest import Column, FileEntry, Shard
from ..sparse import CSR

Chunk = dict[str, Any]


class ShardWriter(Protocol):
    def __init__(self, version_dir: Path, index: int, columns: tuple[Column, ...],
                 options: dict[str, Any]) -> None: ...

    def write(self, chunk: Chunk) -> None: ...

    def close(self) -> tuple[FileEntry, ...]: ...


def writer_class(layout: str) -> type[ShardWriter]:
    from . import hdf5, parquet, store

    return {"store": store.StoreWriter, "hdf5": hdf5.HDF5Writer,
            "parquet": parquet.ParquetWriter}[layout]  # type: ignore[return-value]


def check_shard(layout: str, version_dir: Path, shard: Shard, columns: tuple[Column, ...]) -> list[str]:
    """Format-level checks beyond size and digest (headers, HDF5 fletcher32, Parquet page CRCs)."""
    from . import hdf5, parquet, store

    mod = {"store": store, "hdf5": hdf5, "parquet": parquet}[layout]
    return mod.check_shard(version_dir, shard, columns)


def shard_file_entry(version_dir: Path, rel: str, durable: bool) -> FileEntry:
    """The entry of a whole-shard file (hdf5, parquet), fsynced first when ``durable``."""
    if durable:
        import os

        fd = os.open(version_dir / rel, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return entry(version_dir, rel, None, "shard")


def entry(version_dir: Path, rel: str, column: str | None, part: str) -> FileEntry:
    from .._hashing import file_digest

    size, digest = file_digest(version_dir / rel)
    return FileEntry(path=rel, bytes=size, xxh3=digest, column=column, part=part)


def csr_parts(c: Column, value: CSR, offset: int) -> dict[str, Any]:
    """A chunk's CSR as arrays ready to append: indptr shifted by ``offset`` (rows already written)."""
    comp = value.compact()
    parts = {"indptr": comp.indptr[1:] + offset, "indices": comp.indices.astype(c.index_dtype, copy=False)}
    if c.has_values:
        parts["values"] = comp.values.astype(c.dtype, copy=False)  # type: ignore[union-attr]
    return parts
