"""The "parquet" layout: one Parquet file per shard, uniform row groups, page checksums on. Its
reader also reads foreign Parquet files and folders (columns from ``workbench.inputs.parquet``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...format.manifest import Column, Manifest
from ..base import ColumnStorage
from .check import check_shard as check_shard
from .writer import ParquetWriter as Writer  # noqa: F401  (the room's furniture)

__all__: list[str] = []

DASK_HINT = "use dask.dataframe.read_parquet on its files"  # as_dask has no dask_source here


def open_reader(version: Path, manifest: Manifest, columns: tuple[Column, ...], **kw: Any) -> Any:
    """The torch Dataset over a committed dataset of this layout (loads torch on first use)."""
    from .reader import open_reader as open_

    return open_(version, manifest, columns, **kw)


def writer_options(
    *,
    shard_rows: int,
    row_bytes: int,
    row_group_bytes: int | None = None,
    compression: str | None = None,
    **asked: Any,
) -> dict[str, Any]:
    """Row groups of about ``row_group_bytes`` (default 4 MiB), never longer than a shard."""
    from .writer import DEFAULT_ROW_GROUP_BYTES

    group_bytes = row_group_bytes or DEFAULT_ROW_GROUP_BYTES
    return {
        "row_group_rows": max(1, min(shard_rows, group_bytes // row_bytes)),
        "compression": compression,
    }


def storage_facts(
    version: Path, manifest: Manifest, readers: Mapping[str, Callable[..., list[Any]]]
) -> Callable[[Column], ColumnStorage | None]:
    """Each column's row groups and codec in shard 0's file, whose footer
    ``readers["parquet"](path)`` reads once for every column (``wb.inspect``'s Parquet facts)."""
    files = manifest.shards[0].files if manifest.shards else ()
    facts = {c.name: c for c in readers["parquet"](str(version / files[0].path))} if files else {}

    def of(col: Column) -> ColumnStorage | None:
        got = facts.get(col.name)
        return None if got is None else ColumnStorage(got, {"codec": got.storage["codec"]})

    return of
