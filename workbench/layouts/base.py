"""The furniture every layout room shares: the writer protocol and the file entries it returns.

A writer receives validated chunks for one shard and returns its :class:`FileEntry` list on
``close()``; it knows nothing about commits, sources or progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..format.chunks import Chunk
from ..format.files import file_digest, fsync_path
from ..format.manifest import Column, FileEntry, Shard
from ..format.sparse import CSR

__all__: list[str] = []


class ShardWriter(Protocol):
    def __init__(
        self, version_dir: Path, index: int, columns: tuple[Column, ...], options: dict[str, Any]
    ) -> None: ...

    def write(self, chunk: Chunk) -> None: ...

    def close(self) -> tuple[FileEntry, ...]: ...


@dataclass(frozen=True)
class ColumnStorage:
    """What a room's ``storage_facts`` says of one column, for ``wb.inspect``.

    ``facts``: the column as read from shard 0's file (an ``explore.facts.ArrayFacts``);
    ``storage``: entries to show; ``disk_bytes``: the column's bytes where the room estimates
    them itself (else shard 0's share is scaled); ``units``: whether reads come in the file's
    units (HDF5 chunks, row groups) rather than pages.
    """

    facts: Any
    storage: dict[str, Any]
    disk_bytes: int | None = None
    units: bool = True


def check_files(
    version_dir: Path,
    shard: Shard,
    check: Callable[[Path, list[str]], None],
    errors: tuple[type[BaseException], ...],
) -> list[str]:
    """``check(path, problems)`` for each file of ``shard``; a read that raises one of ``errors``
    adds a problem naming the file (after those found before it), so verify reports every bad file
    instead of stopping at the first."""
    problems: list[str] = []
    for f in shard.files:
        path = version_dir / f.path
        try:
            check(path, problems)
        except errors as e:
            problems.append(f"{path}: {type(e).__name__}: {e}")
    return problems


def shard_file_entry(version_dir: Path, rel: str, durable: bool) -> FileEntry:
    """The entry of a whole-shard file (hdf5, parquet), fsynced first when ``durable``."""
    if durable:
        fsync_path(version_dir / rel)
    return entry(version_dir, rel, None, "shard")


def entry(version_dir: Path, rel: str, column: str | None, part: str) -> FileEntry:
    size, digest = file_digest(version_dir / rel)
    return FileEntry(path=rel, bytes=size, xxh3=digest, column=column, part=part)


def shard_paths(version: Path, manifest: Any) -> list[Path]:
    """The one file of each shard (layouts that keep a shard in one file)."""
    return [version / next(f.path for f in s.files if f.part == "shard") for s in manifest.shards]


def csr_parts(c: Column, value: CSR, offset: int) -> dict[str, Any]:
    """A chunk's CSR as arrays ready to append: indptr shifted by ``offset`` (rows already
    written)."""
    comp = value.compact()
    parts = {
        "indptr": comp.indptr[1:] + offset,
        "indices": comp.indices.astype(c.index_dtype, copy=False),
    }
    if c.has_values:
        parts["values"] = comp.values.astype(c.dtype, copy=False)  # type: ignore[union-attr]
    return parts
