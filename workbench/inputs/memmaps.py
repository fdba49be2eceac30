"""``.npy`` files and memory maps: opened read-only, located in their file, reopened elsewhere.

One copy for both ``convert`` (which reads them by row range) and ``open_dataset`` (which gathers
batches from them): a memmap travels to another process as ``(file, offset, dtype, shape)``.

>>> a = load_npy("x.npy", "x")               # a read-only np.memmap, never unpickled
>>> b = reopen(memmap_ref(a[10:20]))         # the same rows, mapped again
>>> type(a).__name__, a.flags.writeable, b.shape, np.array_equal(b, a[10:20])
('memmap', False, (10, 8), True)
"""

from __future__ import annotations

import mmap
import os
import warnings
from typing import Any

import numpy as np

from ..errors import InvalidInputError, PerformanceWarning, SourceNotFoundError, UnsafeInputError
from .base import check_numeric

__all__: list[str] = []

MemmapRef = tuple[str, int, str, tuple[int, ...], str]  # file, byte offset, dtype, shape, order


def load_npy(path: str | os.PathLike[str], name: str = "x") -> np.ndarray:
    """Memory-map a ``.npy`` read-only; pickled, truncated or non-numeric files raise, naming
    ``path``."""
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file; check the path") from None
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise UnsafeInputError(
                f"{path}: the .npy holds Python objects (pickled data); workbench refuses to "
                "unpickle: save a numeric array instead"
            ) from None
        raise InvalidInputError(
            f"{path}: not a readable .npy file ({e}); it may be truncated: write it again"
        ) from None
    if not isinstance(a, np.ndarray):
        raise InvalidInputError(f"{path}: not a single .npy array; use np.save for one array")
    if a.ndim == 0:
        raise InvalidInputError(f"{path}: the .npy holds a single value, not rows; save an array")
    check_numeric(str(path), name, a.dtype)
    if a.ndim > 1 and not a.flags.c_contiguous:
        warnings.warn(
            f"{path}: the array is stored in Fortran order, so every row read gathers "
            f"{a.shape[1]} strided pieces; save it C-ordered "
            "(np.save(path, np.ascontiguousarray(a))) or convert it once (wb.convert)",
            PerformanceWarning,
            stacklevel=3,
        )
    return a


def memmap_ref(a: np.ndarray) -> MemmapRef | None:
    """Where a contiguous view of a file-backed, non-copy-on-write memmap lies in its file, or
    None."""
    m: Any = a
    while m is not None and not isinstance(m, np.memmap):
        m = getattr(m, "base", None)
    mapping = m
    while isinstance(mapping, np.ndarray):  # a memmap's chain of bases ends in its mmap.mmap
        mapping = mapping.base
    if not isinstance(mapping, mmap.mmap) or not m.filename or m.mode == "c" or a.ndim == 0:
        return None
    order = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous and a.ndim > 1 else None
    if order is None:
        return None
    start = m.offset - m.offset % mmap.ALLOCATIONGRANULARITY
    base = np.frombuffer(mapping, np.uint8).ctypes.data
    ref = (str(m.filename), a.ctypes.data - base + start, a.dtype.str, tuple(a.shape), order)
    if a.size and not _same_ends(reopen(ref), a):
        return None  # could not locate it in the file: keep it in memory
    return ref


def reopen(ref: MemmapRef) -> np.ndarray:
    """Map ``ref`` read-only again (in this process), as a plain ndarray view."""
    name, offset, dtype, shape, order = ref
    if 0 in shape:
        return np.empty(shape, dtype)
    return np.memmap(name, dtype=dtype, mode="r", offset=offset, shape=shape, order=order).view(
        np.ndarray
    )  # type: ignore[call-overload]


def _same_ends(b: np.ndarray, a: np.ndarray) -> bool:
    return bool(np.array_equal(b[:1], a[:1]) and np.array_equal(b[-1:], a[-1:]))
