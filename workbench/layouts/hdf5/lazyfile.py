"""An hdf5 shard's dataset as a small picklable array-like: what ``as_dask``'s chunk tasks hold.

>>> m = wb.convert(np.arange(8.0).reshape(4, 2), "x.h5ds", format="hdf5", progress=False)
>>> version, m = wb.read_manifest("x.h5ds")
>>> x, lock = dask_source(version, m.shards[0], m.column("x"))
>>> x[1:3].tolist(), lock
([[2.0, 3.0], [4.0, 5.0]], True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...format.manifest import Column, Shard

__all__: list[str] = []


class H5Column:
    """Array-like over one HDF5 dataset; the file opens lazily per process (reopened after fork)."""

    def __init__(self, path: str, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        self.path, self.name, self.dtype = path, name, np.dtype(dtype)
        self.shape, self.ndim = shape, len(shape)
        self._f: Any = None
        self._pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_f": None, "_pid": None}

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._pid != os.getpid():
            import h5py

            self._f, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._f[self.name][key]  # type: ignore[no-any-return]


def dask_source(version: Path, shard: Shard, column: Column) -> tuple[H5Column, bool]:
    """The rows of dense ``column`` in ``shard``, and True: dask locks around h5py's reads."""
    rel = next(f.path for f in shard.files if f.part == "shard")
    path = str(Path(version) / rel)
    return H5Column(path, column.name, column.dtype, (shard.rows, *column.shape)), True
