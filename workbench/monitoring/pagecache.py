"""Which bytes of a dataset's files sit in the page cache right now.

``residency`` maps each file read-only and asks the kernel with ``mincore(2)`` (no data is read);
``will_need`` asks for rows of a memory-mapped array ahead. A workbench dataset folder means its
committed shard files. Linux only (mincore). Moving files in and out: ``warming``.

>>> r = residency("demo_data/raw/features.npy")
>>> 0 <= r.fraction <= 1 and r.total_bytes == os.path.getsize("demo_data/raw/features.npy")
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError

__all__ = ["Residency", "residency"]

PAGE = mmap.PAGESIZE


@dataclass(frozen=True)
class Residency:
    """Resident bytes per file (and, with ``pages=True``, the per-page map as a bool array).

    Parameters
    ----------
    files : dict of str to (int, int)
        ``{path: (resident bytes, file bytes)}``.
    pages : dict of str to numpy.ndarray
        ``{path: one bool a page, True where resident}`` (empty without ``pages=True``).
    """

    files: dict[str, tuple[int, int]]  # path -> (resident bytes, file bytes)
    pages: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def resident_bytes(self) -> int:
        return sum(r for r, _ in self.files.values())

    @property
    def total_bytes(self) -> int:
        return sum(t for _, t in self.files.values())

    @property
    def fraction(self) -> float:
        return self.resident_bytes / self.total_bytes if self.total_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "resident_bytes": self.resident_bytes,
            "total_bytes": self.total_bytes,
            "fraction": self.fraction,
            "files": {
                p: {"resident_bytes": r, "total_bytes": t} for p, (r, t) in self.files.items()
            },
        }


def residency(
    path: str | os.PathLike[str] | list[str | os.PathLike[str]], *, pages: bool = False
) -> Residency:
    """How much of ``path`` (a file, a folder, a workbench dataset, or a list) is in the page cache.

    Parameters
    ----------
    path : str, PathLike or list of them
        A file, a folder (every file under it), a workbench dataset (its committed shard files),
        or a list of those.
    pages : bool, default False
        Also keep each file's per-page map.

    Returns
    -------
    Residency

    Raises
    ------
    SourceNotFoundError
        A path that does not exist.
    InvalidInputError
        An empty folder, or ``mincore`` failed (not Linux).

    Examples
    --------
    >>> residency("x.npy").files["x.npy"][1]
    32128
    """
    files = files_of(path)
    out, maps = {}, {}
    for f in files:
        size = os.path.getsize(f)
        vec = _mincore(f, size)
        resident = int(np.count_nonzero(vec)) * PAGE
        out[f] = (min(resident, size), size)
        if pages:
            maps[f] = vec.astype(bool)
    return Residency(out, maps)


def files_of(path: Any) -> list[str]:
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in files_of(p)]
    p = Path(path)
    if not p.exists():
        raise SourceNotFoundError(f"{p}: no such file or folder; check the path")
    if p.is_file():
        return [str(p)]
    from ..format.catalog import is_dataset_dir, read_manifest

    if is_dataset_dir(p):
        version, m = read_manifest(p)
        return [str(version / f.path) for s in m.shards for f in s.files]
    found = sorted(str(f) for f in p.rglob("*") if f.is_file())
    if not found:
        raise InvalidInputError(f"{p}: the folder holds no files; point at a file or a dataset")
    return found


def will_need(a: np.ndarray, lo: int, hi: int) -> int:
    """Ask the kernel to read rows ``[lo, hi)`` of a memory-mapped array ahead, without waiting
    (``madvise(MADV_WILLNEED)`` on their pages); returns the bytes asked for, 0 where their
    first and last pages are cached already, the array is not row-contiguous or the call failed
    (advice only: nothing is lost without it).

    >>> from workbench.monitoring.warming import evict
    >>> a = np.load("x.npy", mmap_mode="r"); _ = evict("x.npy")
    >>> will_need(a, 0, 10) > 0, will_need(a, 990, 1000) >= 0
    (True, True)
    """
    if hi <= lo or a.ndim == 0 or not a.flags.c_contiguous or not hasattr(mmap, "MADV_WILLNEED"):
        return 0
    step = a.strides[0]
    start = a.ctypes.data + lo * step
    first = start - start % PAGE  # madvise takes page-aligned addresses
    size = start + (hi - lo) * step - first
    libc, last = _c(), first + (size - 1) // PAGE * PAGE
    # its first and last pages resident: the warm case, where asking costs ~3.5 us a MiB
    if (
        libc.mincore(first, PAGE, _PAGE_BYTE) == 0
        and _PAGE_BYTE[0] & 1
        and libc.mincore(last, PAGE, _PAGE_BYTE) == 0
        and _PAGE_BYTE[0] & 1
    ):
        return 0
    return size if libc.madvise(first, size, mmap.MADV_WILLNEED) == 0 else 0


_PAGE_BYTE = (ctypes.c_ubyte * 1)()  # mincore's answer for one page (a race only mis-advises)


_libc: Any = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        _libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return _libc


def _mincore(path: str, size: int) -> np.ndarray:
    """One byte per page of ``path`` (``size`` bytes); bit 0 set where the page is resident."""
    if size == 0:
        return np.zeros(0, np.uint8)
    vec = np.zeros((size + PAGE - 1) // PAGE, np.uint8)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as mm:
        view = np.frombuffer(mm, np.uint8)  # an address for the mapping, without reading it
        try:
            if _c().mincore(view.ctypes.data, size, vec.ctypes.data) != 0:
                err = ctypes.get_errno()
                raise InvalidInputError(
                    f"{path}: mincore failed ({os.strerror(err)}); page-cache residency needs Linux"
                )
        finally:
            del view
    return vec & 1
