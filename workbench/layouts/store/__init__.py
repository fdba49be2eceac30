"""The "store" layout: one standard ``.npy`` per column per shard (``np.load(mmap_mode="r")`` opens
each without workbench); sparse columns as CSR ``indptr/indices/values`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...format.manifest import Column, Manifest
from .check import check_shard as check_shard
from .lazyfile import dask_source as dask_source
from .writer import StoreWriter as Writer  # noqa: F401  (the room's furniture)

__all__: list[str] = []

# open_dataset(url) streams this layout: its reader opens one shard's files at a time, so a
# shard cache can fetch each on first use (datasets.remote)
STREAMS = True


def open_reader(version: Path, manifest: Manifest, columns: tuple[Column, ...], **kw: Any) -> Any:
    """The torch Dataset over a committed dataset of this layout (loads torch on first use)."""
    from .reader import open_reader as open_

    return open_(version, manifest, columns, **kw)


def writer_options(*, shard_rows: int, row_bytes: int, **asked: Any) -> dict[str, Any]:
    """This layout's writer options for a conversion (the store has none beyond shard rows)."""
    return {}
