"""The file primitives every writer shares: xxh3 digests, fsync, atomic small-file writes."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, Any

import xxhash

__all__: list[str] = []

_BLOCK = 8 << 20


def file_digest(path: str | os.PathLike[str]) -> tuple[int, str]:
    """``(size, hex xxh3-64)`` of a whole file, read in 8 MiB blocks (as fast as the disk)."""
    h = xxhash.xxh3_64()
    size = 0
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return size, h.hexdigest()


def fsync_path(path: str | os.PathLike[str] | IO[Any]) -> None:
    """Flush a file's (or a folder's entries') data to stable storage: a path, or a file open
    for writing (its buffer flushed first). The one place every writer fsyncs."""
    if not isinstance(path, (str, os.PathLike)):
        path.flush()
        os.fsync(path.fileno())
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, durable: bool) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over ``path`` in one step."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            fsync_path(f)
    os.replace(tmp, path)
