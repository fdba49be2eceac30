"""Array-like sources: NumPy arrays and memmaps, ``.npy`` files, torch tensors, dask arrays,
sparse matrices and dicts of those; every column is read by row range.

>>> from workbench.inputs import open_source
>>> src = open_source({"x": np.load("x.npy", mmap_mode="r"), "y": np.arange(1000) % 2})
>>> src.num_rows, src.read(0, 100)["x"].shape, src.read(0, 100)["y"].shape
(1000, (100, 8), (100,))
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.manifest import Column
from ..format.sparse import CSR
from .base import array_fingerprint, check_numeric, file_fingerprint
from .kinds import is_dask_array, is_scipy_sparse, is_torch
from .memmaps import MemmapRef, load_npy, memmap_ref, reopen

__all__: list[str] = []


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
            raise InvalidInputError(
                f"{where}: column {name!r} is a 0-d array; give an array of rows"
            )
        check_numeric(where, name, a.dtype)
        self.a, self.n = a, len(a)
        self.kind = f"array {a.shape} {a.dtype}"

    def read(self, a: int, b: int) -> np.ndarray:
        return np.asarray(self.a[a:b])

    def fingerprint(self) -> str:
        return array_fingerprint([("", self.a)])


class MemmapCol(Col):
    """An array inside a file: pickles as its :data:`MemmapRef` and maps the file lazily."""

    small = True

    def __init__(self, ref: MemmapRef, kind: str):
        self.ref, self.n, self.kind, self._a = ref, ref[3][0], kind, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_a": None}

    @property
    def a(self) -> np.ndarray:
        if self._a is None:
            self._a = reopen(self.ref)
        return self._a

    def read(self, a: int, b: int) -> np.ndarray:
        return np.array(self.a[a:b])

    def fingerprint(self) -> str:
        path, offset, dtype, shape, order = self.ref
        return file_fingerprint([path]) + f"{dtype}{offset}{shape}{order}"


def memmap_col(a: np.ndarray, name: str, where: str) -> Col:
    """A reopenable :class:`MemmapCol` for a file-backed memmap (or a view of one), else an
    :class:`ArrayCol`."""
    check_numeric(where, name, a.dtype)
    ref = memmap_ref(a)
    if ref is None:
        return ArrayCol(np.asarray(a), name, where)
    return MemmapCol(ref, f"memmap {a.shape} {a.dtype} of {ref[0]}")


def npy_col(path: str, name: str, a: np.ndarray | None = None) -> Col:
    """A ``.npy`` file as a column (``a``: the file already loaded with :func:`load_npy`)."""
    a = load_npy(path, name) if a is None else a
    ref = memmap_ref(a)
    assert ref is not None  # np.load(mmap_mode="r") always maps the file
    return MemmapCol(ref, f"NumPy file {path} {a.shape} {a.dtype}")


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
                f"{self.where}: row {a}, column {self.name!r}: the dask blocks for rows "
                f"[{a}, {b}) computed to shape {out.shape} {out.dtype}, expected {want} "
                f"{self.arr.dtype}; make every block match the array's declared shape and dtype"
            )
        return out

    def fingerprint(self) -> str:
        return f"dask:{self.arr.name}:{self.arr.shape}:{self.arr.dtype}"

    def boundaries(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.arr.chunks[0])]).astype(np.int64)


def torch_to_numpy(t: Any, where: str, name: str) -> np.ndarray:
    try:
        return t.detach().cpu().numpy()
    except TypeError as e:
        raise InvalidInputError(
            f"{where}: column {name!r}: torch tensor of dtype {t.dtype} has no NumPy form ({e}); "
            "convert it first, e.g. t.float()"
        ) from None


def column_array(v: Any, name: str, where: str, dim: int | None = None) -> Any:
    """One column value of any in-memory kind (or a ``.npy`` path) as an ndarray, a CSR or a
    dask array, checked: numeric, with a row axis, sparse widths as declared."""
    if isinstance(v, (str, os.PathLike)):
        path = os.fspath(v)
        if not path.endswith(".npy"):
            raise InvalidInputError(
                f"{where}: column {name!r} is a path {path!r}; only .npy paths work here"
            )
        return load_npy(path, name)
    if is_scipy_sparse(v):
        v = CSR.from_scipy(v)
    elif (
        dim is not None
        and not isinstance(v, (CSR, np.ndarray))
        and not is_torch(v)
        and not is_dask_array(v)
    ):
        v = CSR.from_lists(list(v), dim)  # a list of nonzero-index lists
    if isinstance(v, CSR):
        if dim is not None and v.dim != dim:
            raise InvalidInputError(
                f"{where}: column {name!r} has width {v.dim} but sparse= says {dim}; "
                "make them agree"
            )
        check_numeric(where, name, v.indices.dtype)
        if v.values is not None:
            check_numeric(where, name, v.values.dtype)
        return v
    if is_dask_array(v):
        return v
    if is_torch(v):
        v = torch_to_numpy(v, where, name)
    if not isinstance(v, np.ndarray):
        try:
            v = np.asarray(v)
        except ValueError as e:
            raise InvalidInputError(
                f"{where}: column {name!r} is ragged ({e}); give equal-length rows"
            ) from None
    check_numeric(where, name, v.dtype)
    if v.ndim == 0:
        raise InvalidInputError(f"{where}: column {name!r} is a 0-d array; give an array of rows")
    return v


def make_col(v: Any, name: str, where: str, dim: int | None = None) -> Col:
    """Wrap one column value of any supported in-memory kind (or a path to a .npy file)."""
    if isinstance(v, (str, os.PathLike)):
        return npy_col(os.fspath(v), name, column_array(v, name, where))
    v = column_array(v, name, where, dim)
    if isinstance(v, CSR):
        return CsrCol(v, name, where)
    if is_dask_array(v):
        return DaskCol(v, name, where)
    return memmap_col(v, name, where)


def columns_of(arrays: dict[str, Any], where: str) -> tuple[dict[str, Any], tuple[Column, ...]]:
    """A dict of columns (arrays, memmaps, ``.npy`` paths, tensors, CSR / scipy.sparse) checked as
    equal-length columns, with their :class:`Column` descriptions (``open_dataset``'s view)."""
    if not arrays:
        raise InvalidInputError(f"{where}: no arrays given; pass e.g. {{'x': X, 'y': y}}")
    out: dict[str, Any] = {}
    cols = []
    for name, v in arrays.items():
        if not isinstance(name, str):
            raise InvalidInputError(
                f"{where}: column names must be strings, got {name!r}; rename it"
            )
        v = column_array(v, name, where)
        if is_dask_array(v):
            raise InvalidInputError(
                f"{where}: column {name!r} is a Dask array; open a Dask array on its "
                "own (open_dataset(arr)), or convert the dict first"
            )
        if isinstance(v, CSR):
            vdt = "float32" if v.values is None else str(v.values.dtype)
            cols.append(
                Column(
                    name,
                    vdt,
                    (v.dim,),
                    sparse=True,
                    index_dtype=str(v.indices.dtype),
                    has_values=v.values is not None,
                )
            )
        else:
            cols.append(Column(name, str(v.dtype.newbyteorder("=")), tuple(v.shape[1:])))
        out[name] = v
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(
            f"{where}: columns differ in length {lengths}; every column needs one entry per row"
        )
    return out, tuple(cols)
