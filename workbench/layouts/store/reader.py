"""The store layout's reader: one memmapped ``.npy`` per column per shard, opened lazily.

A batch is one gather per touched shard: a contiguous ascending batch inside one shard is a
zero-copy view of the memmap; anything else is one gather into a preallocated array.

>>> version_dir, manifest = wb.read_manifest("demo_data/demo.store")
>>> ds = open_reader(version_dir, manifest, manifest.columns)
>>> ds.get_batch(range(0, 256))["features"].shape   # zero-copy, read-only view of the page cache
torch.Size([256, 16])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...datasets.arrays import Array, ArraysDataset
from ...datasets.base import pow2_block_rows
from ...errors import CorruptDatasetError
from ...format.manifest import Column, Manifest
from ...format.sparse import CSR

__all__: list[str] = []


class StoreDataset(ArraysDataset):
    """A committed "store" dataset: one memmapped ``.npy`` per column per shard, opened lazily."""

    kind = "store"
    _sources = None  # memmaps: every shard may stay open for the native gather

    def __init__(
        self, version: Path, manifest: Manifest, cols: tuple[Column, ...], **kw: Any
    ) -> None:
        super().__init__(
            cols,
            manifest.num_rows,
            where=str(version),
            manifest=manifest,
            version_dir=Path(version),
            **kw,
        )
        self._version = Path(version)
        self._set_shards([s.rows for s in manifest.shards])
        self._open: dict[int, dict[str, Array]] = {}
        n = max(1, manifest.num_rows)
        for c in cols:
            if c.sparse:
                stored = sum(
                    f.bytes for s in manifest.shards for f in s.files if f.column == c.name
                )
                self.row_nbytes += int(round(stored / n))
        self.block_rows = pow2_block_rows(self.row_nbytes)

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_open": {}}  # memmaps are reopened lazily where unpickled
        state.pop("_sources", None)
        return state

    def _shard(self, s: int) -> dict[str, Array]:
        got = self._open.get(s)
        if got is None:
            got = self._open[s] = self._open_shard(s)
        return got

    _fetches = False  # opening a shard maps it, reading nothing (a remote store's fetches it)

    def _mapped(self, s: int) -> dict[str, Array] | None:
        return self._open.get(s) if self._fetches else self._shard(s)

    def _open_shard(self, s: int) -> dict[str, Array]:
        shard = self.manifest.shards[s]  # type: ignore[union-attr]
        files = {(f.column, f.part): self._version / f.path for f in shard.files}
        out: dict[str, Array] = {}
        for c in self._cols:
            if not c.sparse:
                out[c.name] = open_npy(files[(c.name, "data")], c.dtype, (shard.rows, *c.shape))
                continue
            indptr = open_npy(files[(c.name, "indptr")], "int64", (shard.rows + 1,))
            nnz = int(indptr[-1])
            indices = open_npy(files[(c.name, "indices")], c.index_dtype, (nnz,))
            values = open_npy(files[(c.name, "values")], c.dtype, (nnz,)) if c.has_values else None
            out[c.name] = CSR(indptr, indices, values, c.shape[0])
        return out

    def describe_source(self) -> str:
        return f"{self._version} ({len(self._offs) - 1} shard(s))"


def open_npy(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map a shard's ``.npy`` read-only and check it matches the manifest."""
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        if "empty file" in str(e) and 0 in shape:
            return np.empty(shape, dtype)
        raise CorruptDatasetError(
            f"{path}: unreadable .npy ({e}); run `workbench verify`, then convert again"
        ) from None
    if a.dtype != np.dtype(dtype) or a.shape != tuple(shape):
        raise CorruptDatasetError(
            f"{path}: holds {a.dtype}{a.shape}, manifest says {dtype}{tuple(shape)}; "
            "run `workbench verify`, then convert again"
        )
    return a.view(np.ndarray)  # plain ndarray: slicing an np.memmap runs Python code per slice


def open_reader(
    version: Path, manifest: Manifest, cols: tuple[Column, ...], **kw: Any
) -> StoreDataset:
    return StoreDataset(version, manifest, cols, **kw)
