"""A dense column of a dataset as a lazy Dask array: the shards, virtually concatenated.

Each shard becomes dask chunks of about ``chunk_bytes`` over its file (a memmapped ``.npy`` for the
"store" layout, an h5py dataset for "hdf5"). Chunk tasks hold a small picklable file reference,
never the data, so graphs ship cheaply to distributed workers.

>>> x = as_dask("demo_data/demo.store", "features")
>>> x.shape, x.dtype, x.mean(axis=0).compute().shape
((2000, 16), dtype('float32'), (16,))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.catalog import read_manifest

__all__ = ["as_dask"]

DEFAULT_DASK_CHUNK_BYTES = 96 << 20  # dask's own guidance: chunks of ~100 MiB


class _NpyFile:
    """Array-like over one ``.npy``: opens its memmap lazily in whichever process slices it."""

    def __init__(self, path: str, dtype: str, shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.shape, self.ndim = path, np.dtype(dtype), shape, len(shape)
        self._a: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_a": None}

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._a is None:
            self._a = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return np.asarray(self._a[key])


class _H5Column:
    """Array-like over one HDF5 dataset; the file opens lazily per process (reopened after fork)."""

    def __init__(self, path: str, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        self.path, self.name, self.dtype, self.shape, self.ndim = path, name, np.dtype(dtype), shape, len(shape)
        self._f: Any = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_f": None, "_pid": None}

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._pid != os.getpid():
            import h5py

            self._f, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._f[self.name][key]


def as_dask(store: Any, column: str, *, chunk_bytes: int = DEFAULT_DASK_CHUNK_BYTES) -> Any:
    """Column ``column`` of a "store" or "hdf5" dataset as a ``dask.array.Array`` (no data read).

    Parameters
    ----------
    store : str, PathLike or dataset
        A dataset folder, or a workbench dataset returned by ``open_dataset``.
    column : str
        A dense column.
    chunk_bytes : int, default 96 MiB
        About the bytes of a dask chunk; each shard is cut into chunks of whole rows.

    Returns
    -------
    dask.array.Array
        The shards concatenated; each chunk task reads its own rows from its shard's file.

    Raises
    ------
    InvalidInputError
        A foreign (not converted) dataset, an unknown or sparse column, or the "parquet" layout
        (use ``dask.dataframe.read_parquet``).

    Examples
    --------
    >>> y = as_dask("demo_data/demo.store", "label")
    >>> np.array_equal(y[:1000].compute(), np.load("demo_data/raw/labels.npy")[:1000])
    True
    """
    import dask.array as da

    from .base import BaseDataset

    if isinstance(store, BaseDataset):
        if store.version_dir is None:
            raise InvalidInputError(f"{store.where}: as_dask reads workbench datasets; this one is "
                                    "a foreign input: convert it first, or use dask's own readers")
        store = store.version_dir
    version, manifest = read_manifest(store)
    try:
        col = manifest.column(column)
    except KeyError:
        raise InvalidInputError(f"{version}: no column {column!r}; columns are "
                                f"{[c.name for c in manifest.columns]}") from None
    if col.sparse:
        raise InvalidInputError(f"{version}: column {column!r} is sparse; as_dask serves dense columns "
                                "only (read sparse rows with open_dataset)")
    if manifest.layout not in ("store", "hdf5"):
        raise InvalidInputError(f"{version}: as_dask reads the 'store' and 'hdf5' layouts, this one is "
                                f"{manifest.layout!r}; use dask.dataframe.read_parquet on its files")
    rows_per_chunk = max(1, chunk_bytes // max(1, col.row_bytes))
    parts = []
    for i, shard in enumerate(manifest.shards):
        if shard.rows == 0:
            continue
        shape = (shard.rows, *col.shape)
        if manifest.layout == "store":
            rel = next(f.path for f in shard.files if f.column == column and f.part == "data")
            src: Any = _NpyFile(str(Path(version) / rel), col.dtype, shape)
            lock = False
        else:
            rel = next(f.path for f in shard.files if f.part == "shard")
            src, lock = _H5Column(str(Path(version) / rel), column, col.dtype, shape), True
        chunks = (min(rows_per_chunk, shard.rows), *col.shape)
        parts.append(da.from_array(src, chunks=chunks, lock=lock, asarray=False, fancy=False,
                                   name=f"workbench-{version.name}-{column}-{i}"))
    if not parts:
        return da.zeros((0, *col.shape), dtype=col.dtype)
    return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
