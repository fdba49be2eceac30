"""The "hdf5" layout: one chunked HDF5 file per shard, fletcher32 on every dataset. Its reader
also reads foreign HDF5 files (see ``workbench.inputs.hdf5`` for how their columns are found)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...format.manifest import Column, Manifest
from .check import check_shard as check_shard
from .writer import HDF5Writer as Writer  # noqa: F401  (the room's furniture)

__all__: list[str] = []


def open_reader(version: Path, manifest: Manifest, columns: tuple[Column, ...], **kw: Any) -> Any:
    """The torch Dataset over a committed dataset of this layout (loads torch on first use)."""
    from .reader import open_reader as open_

    return open_(version, manifest, columns, **kw)


def writer_options(*, shard_rows: int, row_bytes: int, hdf5_chunk_bytes: int | None = None,
                   **asked: Any) -> dict[str, Any]:
    """HDF5 chunks of about ``hdf5_chunk_bytes`` (default 1 MiB)."""
    from .writer import DEFAULT_HDF5_CHUNK_BYTES

    return {"chunk_bytes": hdf5_chunk_bytes or DEFAULT_HDF5_CHUNK_BYTES}
