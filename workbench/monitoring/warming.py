"""Moving a dataset's files into the page cache and out of it, and saying what actually moved.

``warm`` asks the kernel to read ahead (``POSIX_FADV_WILLNEED``) window by window, then reads
whatever is still not resident: one WILLNEED over a whole file is capped by the read-ahead window
(an 18 MiB ``.npy`` on ext4 was left 45 % resident). ``evict`` writes dirty pages back
(``fdatasync``) and drops them (``POSIX_FADV_DONTNEED``). On tmpfs or ramfs a file's pages are
its storage: eviction cannot drop them, and both say so.

>>> warm("x.npy").after_bytes == os.path.getsize("x.npy")
True
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import WorkbenchWarning
from ..units import human_bytes
from .pagecache import PAGE, files_of, residency

__all__ = ["CacheChange", "evict", "warm"]

WINDOW = 32 << 20  # bytes a WILLNEED asks for at once: well past any read-ahead cap
READ = 1 << 20  # the scratch buffer warm reads missing pages through


@dataclass(frozen=True)
class CacheChange:
    """What :func:`warm` or :func:`evict` did to the files' cached pages.

    Parameters
    ----------
    action : str
        ``"warm"`` or ``"evict"``.
    files : int
        How many files.
    total_bytes : int
        Their size.
    before_bytes, after_bytes : int
        Bytes resident before and after.
    read_bytes : int
        Bytes ``warm`` read itself because the kernel's read-ahead had not brought them in.
    seconds : float
        How long it took.
    note : str
        Why it could not do what was asked ("" when it could), e.g. on tmpfs.
    """

    action: str
    files: int
    total_bytes: int
    before_bytes: int
    after_bytes: int
    read_bytes: int
    seconds: float
    note: str = ""

    @property
    def fraction(self) -> float:
        """Resident after, as a fraction of the files' bytes."""
        return self.after_bytes / self.total_bytes if self.total_bytes else 0.0

    def __str__(self) -> str:
        text = (
            f"{self.action}: {human_bytes(self.after_bytes)} of {human_bytes(self.total_bytes)} "
            f"resident in {self.files} file(s) (was {human_bytes(self.before_bytes)}), "
            f"{self.seconds:.2f} s"
        )
        return f"{text}; {self.note}" if self.note else text


def memory_backed(path: str) -> str:
    """``"tmpfs"`` or ``"ramfs"`` where ``path`` lives on one (its pages are its storage), else
    ``""``: the longest mount point in ``/proc/mounts`` that holds it decides."""
    best, fstype = "", ""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if (
                    len(parts) > 2
                    and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/"))
                    and len(parts[1]) > len(best)
                ):
                    best, fstype = parts[1], parts[2]
    except OSError:
        return ""
    return fstype if fstype in ("tmpfs", "ramfs") else ""


def warm(path: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> CacheChange:
    """Bring ``path``'s files into the page cache, all of them, and say what it did.

    Parameters
    ----------
    path : str, PathLike or list of them
        A file, a folder, a workbench dataset (its committed shard files), or a list of those.

    Returns
    -------
    CacheChange
        Resident bytes before and after, and how many bytes it had to read itself. Memory stays
        bounded: the pages are the kernel's cache, read through a 1 MiB buffer.

    Raises
    ------
    SourceNotFoundError
        A path that does not exist.

    Examples
    --------
    >>> str(warm("x.npy")).startswith("warm: 31.4 KiB of 31.4 KiB resident")
    True
    """
    t0, files = time.perf_counter(), files_of(path)
    before = residency(files).resident_bytes
    for f in files:
        _each_window(f, os.POSIX_FADV_WILLNEED)
    read, buf = 0, bytearray(READ)
    now = residency(files, pages=True)
    for f in files:
        read += _read_missing(f, now.pages[f], buf)
    after = residency(files).resident_bytes
    total = sum(os.path.getsize(f) for f in files)
    return CacheChange("warm", len(files), total, before, after, read, time.perf_counter() - t0)


def evict(path: str | os.PathLike[str] | list[str | os.PathLike[str]]) -> CacheChange:
    """Drop the cached pages of ``path``'s files, so the next read is a cold one.

    Dirty pages are written back first (``fdatasync``), then dropped (``POSIX_FADV_DONTNEED``).
    On tmpfs or ramfs nothing can be dropped: a :class:`~workbench.errors.WorkbenchWarning` and
    the result's ``note`` say so.

    Parameters
    ----------
    path : str, PathLike or list of them
        As :func:`warm` takes it.

    Returns
    -------
    CacheChange
        Resident bytes before and after.

    Examples
    --------
    >>> _ = open("x.npy", "rb").read(); evict("x.npy").after_bytes < os.path.getsize("x.npy")
    True
    """
    t0, files = time.perf_counter(), files_of(path)
    before = residency(files).resident_bytes
    held = sorted({kind for f in files if (kind := memory_backed(f))})
    note = ""
    if held:
        note = (
            f"on {'/'.join(held)} a file's pages are its storage: eviction cannot drop them, so "
            "cold reads cannot be measured here; put the data on a disk to measure them"
        )
        warnings.warn(f"evict({path!s}): {note}", WorkbenchWarning, stacklevel=2)
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # dirty pages cannot be dropped: write them back first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    after = residency(files).resident_bytes
    total = sum(os.path.getsize(f) for f in files)
    return CacheChange("evict", len(files), total, before, after, 0, time.perf_counter() - t0, note)


def _each_window(path: str, advice: int) -> None:
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in range(0, size, WINDOW):
            os.posix_fadvise(fd, off, min(WINDOW, size - off), advice)
    finally:
        os.close(fd)


def _read_missing(path: str, pages: np.ndarray, buf: bytearray) -> int:
    """Read the runs of pages not resident yet (what read-ahead left), through ``buf``."""
    missing = np.flatnonzero(~pages)
    if missing.size == 0:
        return 0
    edges = np.flatnonzero(np.diff(missing) != 1)  # where a run of missing pages ends
    starts = np.r_[missing[0], missing[edges + 1]]
    ends = np.r_[missing[edges] + 1, missing[-1] + 1]
    done, view = 0, memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        for a, b in zip(starts.tolist(), ends.tolist()):
            off, end = a * PAGE, b * PAGE
            while off < end:
                n = f.readinto(view[: min(READ, end - off)]) if f.seek(off) == off else 0
                if not n:
                    break
                off, done = off + n, done + n
    return done
