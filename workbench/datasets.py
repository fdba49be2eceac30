"""``open_dataset``: any supported source as a fast map-style torch Dataset.

Sources: a workbench dataset directory (layouts store / hdf5 / parquet), a foreign HDF5 file, a
Parquet file or folder, a ``.npy`` file (memory-mapped), a NumPy array or memmap, a dict of
arrays (dense, ``CSR`` or scipy.sparse), a Dask array. Every result implements the Dataset
protocol of ``docs/CONTRACTS.md``: ``__getitems__`` reads a whole batch in one pass.

>>> ds = open_dataset("demo_data/demo.store", columns=["x", "y"])
>>> batch = ds.__getitems__(list(range(256)))      # {"x": (256, ...), "y": (256,)}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .catalog import is_dataset_dir, read_manifest, resolve
from .errors import DatasetNotFoundError, InvalidInputError, UnsafeInputError
from .readers.arrays import MemoryDataset, StoreDataset, columns_of
from .readers.base import BaseDataset, check_columns
from .readers.blocks import DaskDataset
from .readers.hdf5 import open_hdf5_file, open_hdf5_layout
from .readers.parquet import open_parquet_files, open_parquet_layout
from .sparse import CSR

__all__ = ["BaseDataset", "open_dataset"]

SUPPORTED = ("a workbench dataset folder, an HDF5 file (.h5/.hdf5), a Parquet file or folder, a .npy "
             "file, a NumPy array or memmap, a dict of arrays, a CSR / scipy.sparse matrix, a torch "
             "tensor or a Dask array")
_HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".he5", ".nc"}


def open_dataset(source: Any, *, columns: str | list[str] | None = None, sparse: str = "dense",
                 key: str | None = None, dtype: Any = None,
                 sparse_dims: dict[str, int] | None = None) -> BaseDataset:
    """Open ``source`` for reading batches of rows as torch tensors.

    Args:
        source: see the module docstring for the supported kinds.
        columns: names to read (default: all); a single name is allowed.
        sparse: how ``__getitems__`` returns sparse columns: ``"dense"`` (float tensor),
            ``"coo"`` or ``"csr"`` (torch sparse tensors of shape ``(batch, dim)``).
        key: HDF5 only: the group (its datasets become columns) or the one dataset to read.
        dtype: cast floating columns and sparse expansions to this float dtype (default: as stored;
            sparse expansions float32).
        sparse_dims: foreign Parquet only: ``{list column: row width}`` to read list columns as
            sparse indices (with ``<col>.values`` as values when present).

    Contiguous batches of memory-mapped data (store layout, ``.npy``, read-only memmaps) are
    zero-copy tensors over the page cache and are read-only: clone before editing in place.

    >>> ds = open_dataset(np.load("x.npy", mmap_mode="r"))
    >>> ds.__getitems__([0, 1])["x"].shape
    """
    kw: dict[str, Any] = {"sparse": sparse, "dtype": dtype}
    if isinstance(source, (str, os.PathLike)):
        return _open_path(Path(source), columns, key, sparse_dims, kw)
    _only(key is None, "key=", "HDF5 files")
    _only(sparse_dims is None, "sparse_dims=", "foreign Parquet files")
    if _is_dask(source):
        ds = DaskDataset(source, where="dask array", **kw)
        check_columns(ds._cols, columns, "dask array")
        return ds
    if isinstance(source, dict):
        arrays, cols = columns_of(source, "dict of arrays")
        return MemoryDataset(arrays, check_columns(cols, columns, "dict of arrays"), where="dict of arrays", **kw)
    if isinstance(source, (np.ndarray, CSR)) or hasattr(source, "tocsr") or _is_tensor(source):
        where = f"memmap {source.filename}" if isinstance(source, np.memmap) else type(source).__name__
        arrays, cols = columns_of({"x": source}, where)
        return MemoryDataset(arrays, check_columns(cols, columns, where), where=where, **kw)
    raise InvalidInputError(f"cannot open a {type(source).__name__}; open_dataset reads {SUPPORTED}")


def _open_path(p: Path, columns: Any, key: str | None, sparse_dims: dict[str, int] | None,
               kw: dict[str, Any]) -> BaseDataset:
    if not p.exists():
        raise DatasetNotFoundError(f"{p}: no such file or folder; check the path, or create a dataset "
                                   "with workbench.convert(...)")
    if p.is_dir() and is_dataset_dir(p):
        _only(key is None, "key=", "HDF5 files")
        _only(sparse_dims is None, "sparse_dims=", "foreign Parquet files")
        version, manifest = read_manifest(p)  # checks every file's size
        cols = check_columns(manifest.columns, columns, str(version))
        opener = {"store": StoreDataset, "hdf5": open_hdf5_layout, "parquet": open_parquet_layout}
        return opener[manifest.layout](version, manifest, cols, **kw)
    if p.is_dir():
        if any(p.glob("*.parquet")):
            _only(key is None, "key=", "HDF5 files")
            return open_parquet_files(p, columns, sparse_dims, **kw)
        resolve(p)  # raises DatasetNotFoundError explaining what the folder lacks
    head = _head(p)
    if p.suffix == ".npy" or head.startswith(b"\x93NUMPY"):
        _only(key is None, "key=", "HDF5 files")
        _only(sparse_dims is None, "sparse_dims=", "foreign Parquet files")
        return _open_npy(p, columns, kw)
    if p.suffix.lower() in _HDF5_SUFFIXES or head.startswith(b"\x89HDF\r\n\x1a\n"):
        _only(sparse_dims is None, "sparse_dims=", "foreign Parquet files")
        return open_hdf5_file(p, key, columns, **kw)
    if p.suffix.lower() in (".parquet", ".pq") or head.startswith(b"PAR1"):
        _only(key is None, "key=", "HDF5 files")
        return open_parquet_files(p, columns, sparse_dims, **kw)
    raise InvalidInputError(f"{p}: unknown file type {p.suffix or '(no suffix)'!r}; open_dataset reads {SUPPORTED}")


def _open_npy(p: Path, columns: Any, kw: dict[str, Any]) -> BaseDataset:
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise UnsafeInputError(f"{p}: holds Python objects, which need pickle to read; save a "
                                   "numeric array instead") from None
        raise InvalidInputError(f"{p}: unreadable .npy ({e}); check the file") from None
    arrays, cols = columns_of({"x": arr}, str(p))
    return MemoryDataset(arrays, check_columns(cols, columns, str(p)), where=str(p), **kw)


def _head(p: Path) -> bytes:
    with open(p, "rb") as f:
        return f.read(8)


def _only(ok: bool, what: str, where: str) -> None:
    if not ok:
        raise InvalidInputError(f"{what} applies to {where} only; drop it for this source")


def _is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "compute")


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")
