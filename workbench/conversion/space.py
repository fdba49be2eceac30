"""Room on disk for a conversion: refused up front when the output's size is known and cannot
fit, and a full disk met while writing (ENOSPC) turned into a :class:`DiskFullError` that says
how much the conversion needed, how much was free, where, and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DiskFullError
from ..format.files import free_bytes, sized
from ..format.manifest import Column, Shard

__all__: list[str] = []

PAGE = 4096  # a file's last block: each shard file rounds up to one


def folder_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (0 if it is gone)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def expected_bytes(
    rows: int | None,
    row_bytes: int,
    shard_rows: int,
    cols: tuple[Column, ...],
    compression: str | None,
) -> int | None:
    """The output's size when it is predictable (rows known, dense columns, no codec), else None:
    the rows' bytes plus a block per file for headers and rounding."""
    if rows is None or compression or any(c.sparse for c in cols):
        return None
    shards = -(-rows // max(1, shard_rows))
    return rows * row_bytes + shards * len(cols) * PAGE + 16 * PAGE


def _advice(dest: Path, old: int) -> str:
    keep = (
        f"; the current version at {dest}, {sized(old)}, stays until the new one is "
        "committed, so both must fit at once"
        if old
        else ""
    )
    return (
        f"Free space there, or convert to a folder on a bigger disk (dest=), or pass "
        f"format='parquet', compression='zstd' to write less{keep}. Nothing was committed"
        + (": the current version is unchanged" if old else "")
    )


def check_room(dest: Path, need: int | None) -> None:
    """Raise :class:`DiskFullError` before writing anything when ``need`` bytes cannot fit."""
    if need is None:
        return
    free = free_bytes(dest)
    if need > free:
        old = folder_bytes(dest)
        raise DiskFullError(
            f"{dest}: converting needs about {sized(need)} but the file system holding it has "
            f"{sized(free)} free; nothing was written. " + _advice(dest, old)
        )


def disk_full(
    dest: Path,
    written: int,
    done: dict[int, Shard],
    rows_left: int | None,
    row_bytes: int,
    cause: BaseException,
) -> DiskFullError:
    """The error for a disk that filled up mid-conversion (after the staging folder is gone):
    ``written`` bytes were on disk then; the need is the finished shards plus the rows left."""
    free = free_bytes(dest)
    kept = sum(f.bytes for s in done.values() for f in s.files)
    if rows_left is not None:
        need = kept + rows_left * row_bytes
        size = (
            f"needs about {sized(need)}: {sized(kept)} of finished shards and about "
            f"{sized(rows_left * row_bytes)} still to write"
        )
    else:
        size = f"needs more than the {sized(written)} it had written"
    return DiskFullError(
        f"{dest}: the disk filled up while converting ({type(cause).__name__}: {cause}); the "
        f"conversion {size}, and {sized(free)} are free there now that "
        f"its partial files are removed. " + _advice(dest, folder_bytes(dest))
    )
