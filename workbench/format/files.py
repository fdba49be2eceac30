"""The file primitives every writer shares: xxh3 digests, fsync, atomic small-file writes, and
telling a full disk (ENOSPC, a quota) from other OS errors."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import IO, Any

import xxhash

from ..errors import DiskFullError
from ..units import human_bytes

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
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                fsync_path(f)
        os.replace(tmp, path)
    except BaseException:  # a full disk, a kill's KeyboardInterrupt: no temp file stays
        tmp.unlink(missing_ok=True)
        raise


_FULL = (errno.ENOSPC, errno.EDQUOT)


def no_space(e: BaseException) -> bool:
    """Whether ``e`` (or what it was raised from) says the disk or the quota is full: the builtin
    ``OSError`` with ENOSPC/EDQUOT, or pyarrow's and HDF5's, which say so only in their text."""
    seen: BaseException | None = e
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, DiskFullError):
            return True
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        text = str(seen)
        if any(
            m in text for m in ("No space left", "Disk quota exceeded", "errno 28", "errno = 28")
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer may still use on the file system holding ``path`` (or the
    nearest folder above it that exists)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.statvfs(p)
    return st.f_bavail * st.f_frsize


def sized(n: int) -> str:
    """``n`` bytes as a disk-full message writes them: ``"4,194,304 bytes (4.0 MiB)"``."""
    return f"{n:,} bytes ({human_bytes(n)})"
