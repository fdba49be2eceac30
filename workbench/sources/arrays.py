"""Array-like sources: NumPy arrays and memmaps, ``.npy`` files, torch tensors, dask arrays,
sparse matrices and dicts of those; every column is read by row range.

>>> src = open_source({"x": np.load("x.npy", mmap_mode="r"), "y": labels})
>>> src.read(0, 100)["y"].shape        # (100,)
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError, UnsafeInputError
from ..sparse import CSR
from .base import Chunk, Source, array_fingerprint, check_numeric, file_fingerprint, rebatch, select


class Col:
    """One column read by row range. ``small``: pickles small (file-backed), so it can be split."""

    small = False
    n: int = 0
    kind = "array"

    def read(self, a: int, b: int) -> np.ndarray | CSR:
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def boundaries(self) -> np.ndarray | None:
        """Row offsets of storage blocks to align reads to (dask), or None."""
        return None


class ArrayCol(Col):
    def __init__(self, a: np.ndarray, name: str, where: str):
        if a.ndim == 0:
            raise InvalidInputError(f"{where}: column {name!r} is a 0-d array; give an array of rows")
        check_numeric(where, name, a.dtype)
        self.a, self.n = a, len(a)
        self.kind = f"array {a.shape} {a.dtype}"

    def read(self, a: int, b: int) -> np.ndarray:
        return np.asarray(self.a[a:b])

    def fingerprint(self) -> str:
        return array_fingerprint([("", self.a)])


class MemmapCol(Col):
    """A C-contiguous array inside a file: pickles as (path, dtype, offset, shape) and reopens lazily."""

    small = True

    def __init__(self, path: str, dtype: np.dtype, offset: int, shape: tuple[int, ...], kind: str,
                 order: str = "C"):
        self.path, self.dtype, self.offset, self.shape, self.order = path, dtype, offset, shape, order
        self.n, self.kind, self._a = shape[0], kind, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_a": None}

    @property
    def a(self) -> np.ndarray:
        if self._a is None:
            self._a = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                                shape=self.shape, order=self.order)
        return self._a

    def read(self, a: int, b: int) -> np.ndarray:
        return np.array(self.a[a:b])

    def fingerprint(self) -> str:
        return file_fingerprint([self.path]) + f"{self.dtype}{self.offset}{self.shape}"


def memmap_col(a: np.memmap, name: str, where: str) -> Col:
    """Reopenable description of a read-only/shared memmap (or a view of one), else an ArrayCol."""
    mm, fn = getattr(a, "_mmap", None), getattr(a, "filename", None)
    if mm is None or fn is None or a.mode == "c" or not a.flags.c_contiguous or a.ndim == 0:
        return ArrayCol(np.asarray(a), name, where)
    check_numeric(where, name, a.dtype)
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    offset = a.offset - a.offset % mmap.ALLOCATIONGRANULARITY + (a.ctypes.data - base)
    col = MemmapCol(fn, a.dtype, offset, a.shape, f"memmap {a.shape} {a.dtype} of {fn}")
    if len(a) and not (np.array_equal(col.a[:1], a[:1]) and np.array_equal(col.a[-1:], a[-1:])):
        return ArrayCol(np.asarray(a), name, where)  # could not locate it in the file: keep in memory
    return col


def npy_col(path: str, name: str) -> Col:
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
    check_numeric(path, name, a.dtype)
    order = "C" if a.flags.c_contiguous else "F"  # Fortran order works, but row reads are strided
    return MemmapCol(path, a.dtype, int(a.offset), a.shape, f"NumPy file {path} {a.shape} {a.dtype}", order)


class CsrCol(Col):
    def __init__(self, m: CSR, name: str, where: str):
        self.m, self.n = m, len(m)
        self.kind = f"sparse ({len(m)}, {m.dim}) nnz={m.nnz}"
        check_numeric(where, name, m.indices.dtype)
        if m.values is not None:
            check_numeric(where, name, m.values.dtype)

    def read(self, a: int, b: int) -> CSR:
        return self.m.slice(a, b).compact()

    def fingerprint(self) -> str:
        return array_fingerprint([("", self.m)])


class DaskCol(Col):
    """A dask array: each read computes one row slice (only the blocks it touches)."""

    def __init__(self, arr: Any, name: str, where: str):
        if any(np.isnan(c) for c in arr.chunks[0]):
            raise InvalidInputError(
                f"{where}: dask array {name!r} has unknown chunk sizes; call "
                "arr.compute_chunk_sizes() first"
            )
        if arr.ndim == 0:
            raise InvalidInputError(f"{where}: dask array {name!r} is 0-d; give an array of rows")
        check_numeric(where, name, arr.dtype)
        self.arr, self.n, self.name, self.where = arr, int(arr.shape[0]), name, where
        self.kind = f"dask array {arr.shape} {arr.dtype}"

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.asarray(self.arr[a:b].compute())
        want = (b - a, *self.arr.shape[1:])
        if out.shape != want or out.dtype != self.arr.dtype:
            raise InvalidInputError(
                f"{self.where}: row {a}, column {self.name!r}: the dask blocks for rows [{a}, {b}) "
                f"computed to shape {out.shape} {out.dtype}, expected {want} {self.arr.dtype}; make "
                "every block match the array's declared shape and dtype"
            )
        return out

    def fingerprint(self) -> str:
        return f"dask:{self.arr.name}:{self.arr.shape}:{self.arr.dtype}"

    def boundaries(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.arr.chunks[0])]).astype(np.int64)


def _is_dask(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask") and hasattr(obj, "chunks") and hasattr(obj, "compute")


def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def _is_scipy_sparse(obj: Any) -> bool:
    return type(obj).__module__.startswith("scipy.sparse") and hasattr(obj, "tocsr")


def torch_to_numpy(t: Any, where: str, name: str) -> np.ndarray:
    try:
        return t.detach().cpu().numpy()
    except TypeError as e:
        raise InvalidInputError(
            f"{where}: column {name!r}: torch tensor of dtype {t.dtype} has no NumPy form ({e}); "
            "convert it first, e.g. t.float()"
        ) from None


def make_col(v: Any, name: str, where: str, dim: int | None = None) -> Col:
    """Wrap one column value of any supported in-memory kind (or a path to a .npy file)."""
    if isinstance(v, (str, os.PathLike)):
        path = os.fspath(v)
        if not path.endswith(".npy"):
            raise InvalidInputError(f"{where}: column {name!r} is a path {path!r}; only .npy paths work here")
        return npy_col(path, name)
    if _is_scipy_sparse(v):
        v = CSR.from_scipy(v)
    elif dim is not None and not isinstance(v, (CSR, np.ndarray)) and not _is_torch(v) and not _is_dask(v):
        v = CSR.from_lists(list(v), dim)  # a list of nonzero-index lists
    if isinstance(v, CSR):
        if dim is not None and v.dim != dim:
            raise InvalidInputError(f"{where}: column {name!r} has width {v.dim} but sparse= says {dim}")
        return CsrCol(v, name, where)
    if _is_dask(v):
        return DaskCol(v, name, where)
    if _is_torch(v):
        v = torch_to_numpy(v, where, name)
    if isinstance(v, np.memmap):
        return memmap_col(v, name, where)
    if not isinstance(v, np.ndarray):
        try:
            v = np.asarray(v)
        except ValueError as e:
            raise InvalidInputError(f"{where}: column {name!r} is ragged ({e}); give equal-length rows") from None
    return ArrayCol(v, name, where)


class ColumnsSource(Source):
    """Named columns of equal length read by row range."""

    def __init__(self, cols: dict[str, Col], *, where: str, description: str, nan: str = "error",
                 dtype: Any = None, target: str | None = None):
        super().__init__()
        self.where, self.description, self.nan = where, description, nan
        self.cols = cols
        self._dtype = None if dtype is None else np.dtype(dtype)
        if target is not None and target not in cols:
            raise InvalidInputError(
                f"{where}: target={target!r} is not a column; the columns are {list(cols)}"
            )
        lengths = {k: c.n for k, c in cols.items()}
        n = next(iter(lengths.values()))
        for k, m in lengths.items():
            if m != n:
                first = next(iter(lengths))
                raise InvalidInputError(
                    f"{where}: column {k!r} has {m} rows but {first!r} has {n}; give every column "
                    "the same number of rows"
                )
        if n == 0:
            raise InvalidInputError(f"{where}: the input has zero rows; give it data")
        self.num_rows = n
        self.splittable = all(c.small for c in cols.values())
        self.block_offsets = next((c.boundaries() for c in cols.values() if c.boundaries() is not None), None)

    def fingerprint(self) -> str | None:
        return array_fingerprint([(k, np.frombuffer(c.fingerprint().encode(), np.uint8))
                                  for k, c in self.cols.items()])

    def _read(self, start: int, stop: int) -> Chunk:
        out: Chunk = {}
        for k, c in self.cols.items():
            v = c.read(start, stop)
            if self._dtype is not None:
                if isinstance(v, CSR) and v.values is not None and v.values.dtype.kind == "f":
                    v = CSR(v.indptr, v.indices, v.values.astype(self._dtype), v.dim)
                elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    v = v.astype(self._dtype, copy=False)
            out[k] = v
        return out

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        n = self.num_rows or 0
        blocks = self.block_offsets
        if blocks is None:
            yield from super()._chunks(chunk_rows, start)
            return
        # Read block-aligned spans of >= chunk_rows rows so no dask block is computed twice.
        def spans() -> Iterator[Chunk]:
            a = start
            while a < n:
                want = a + chunk_rows
                b = int(blocks[np.searchsorted(blocks, want)]) if want < n else n
                yield self._read(a, b)
                a = b

        yield from rebatch(spans(), chunk_rows, start)


def dict_source(d: dict, *, columns=None, drop=None, target=None, sparse=None, nan="error",
                dtype=None) -> ColumnsSource:
    where = "in-memory array"
    names = select(where, [str(k) for k in d], columns, drop,
                   [*([target] if target in d else []), *(sparse or {})])
    cols = {k: make_col(d[k], k, where, (sparse or {}).get(k)) for k in names}
    desc = "dict of " + ", ".join(f"{k}: {c.kind}" for k, c in cols.items())
    return ColumnsSource(cols, where=where, description=desc, nan=nan, dtype=dtype, target=target)


def single_source(obj: Any, *, nan="error", dtype=None, path: str | None = None,
                  target: str | None = None) -> ColumnsSource:
    where = path or "in-memory array"
    col = npy_col(path, "x") if path else make_col(obj, "x", where)
    src = ColumnsSource({"x": col}, where=where, description=_describe(obj, col), nan=nan,
                        dtype=dtype, target=target)
    src.path = path
    return src


def _describe(obj: Any, col: Col) -> str:
    if isinstance(col, ArrayCol) and isinstance(obj, np.ndarray):
        return f"NumPy array {obj.shape} {obj.dtype}"
    if _is_torch(obj):
        return f"torch tensor {tuple(obj.shape)} {obj.dtype}"
    return col.kind[0].upper() + col.kind[1:] if col.kind.startswith("sparse") else col.kind
