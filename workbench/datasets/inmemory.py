"""In-memory arrays and memmaps as a dataset: one shard of :class:`~.arrays.ArraysDataset`.

>>> ds = MemoryDataset({"x": np.arange(10.0)}, (Column("x", "float64"),), where="demo")
>>> ds.get_batch(range(2, 4))["x"].tolist()
[2.0, 3.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..format.manifest import Column
from ..inputs.memmaps import memmap_ref, reopen
from .arrays import Array, ArraysDataset
from .base import pow2_block_rows, sparse_row_nbytes

__all__: list[str] = []


class MemoryDataset(ArraysDataset):
    """In-memory or memory-mapped arrays (one shard). Memmaps pickle as a file reference.

    Other in-memory arrays necessarily pickle their data (spawned DataLoader workers get a copy).
    """

    kind = "arrays"
    _sources = None

    def __init__(
        self, arrays: dict[str, Array], cols: tuple[Column, ...], *, where: str, **kw: Any
    ) -> None:
        n = len(next(iter(arrays.values())))
        super().__init__(cols, n, where=where, **kw)
        self._arrays = {c.name: arrays[c.name] for c in cols}
        self._set_shards([n])
        for c in cols:
            if c.sparse:
                self.row_nbytes += sparse_row_nbytes(c, arrays[c.name].nnz, n)
        self.block_rows = pow2_block_rows(self.row_nbytes)

    @property
    def arrays(self) -> dict[str, Array]:
        """Column -> the array given (in memory or a memmap), as read."""
        return self._arrays

    def _shard(self, s: int) -> dict[str, Array]:
        return self._arrays

    _mapped = _shard  # memmaps get the advice; for arrays in RAM it is a no-op

    def __getstate__(self) -> dict[str, Any]:
        refs = {
            k: (memmap_ref(v) if isinstance(v, np.ndarray) else None) or v
            for k, v in self._arrays.items()
        }
        state = {**self.__dict__, "_arrays": refs}
        state.pop("_sources", None)  # rebuilt from the reopened arrays
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_arrays"] = {
            k: reopen(v) if isinstance(v, tuple) else v for k, v in state["_arrays"].items()
        }
        self.__dict__.update(state)
