"""A store shard's ``.npy`` as a small picklable array-like: what ``as_dask``'s chunk tasks hold.

>>> from workbench.format.catalog import read_manifest
>>> version, m = read_manifest("demo_data/demo.store")
>>> x, lock = dask_source(version, m.shards[0], m.column("label"))
>>> x.shape == (m.shards[0].rows,), lock
(True, False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...format.manifest import Column, Shard

__all__: list[str] = []


class NpyFile:
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


def dask_source(version: Path, shard: Shard, column: Column) -> tuple[NpyFile, bool]:
    """The rows of dense ``column`` in ``shard``, and False: memmap reads need no lock."""
    rel = next(f.path for f in shard.files if f.column == column.name and f.part == "data")
    return NpyFile(str(Path(version) / rel), column.dtype, (shard.rows, *column.shape)), False
