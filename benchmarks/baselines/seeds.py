"""The seed articles' Dataset classes, kept faithful (flaws included): the baselines to beat.

Seed 000 ("How to efficiently load datasets larger than RAM using PyTorch DataLoader?") gives
Example 1 :class:`SeedHDF5Dataset`, Example 2 :class:`MemoryMappedDataset`, Example 3
:class:`ParquetDaskDataset`. Seed 001 ("Datasets that fit in memory" / "... on your hard drive" /
"Sparse vectors") gives :class:`SimpleDataset`, :class:`DaskMemmapDataset` and the sparse
collate (:func:`make_seed_collate`). :class:`MemmapPerItemDataset` and
:class:`SparseIndexDataset` are the per-item memmap pattern the seeds describe, pointed at our
``.npy`` files. Each class changes only what is needed to run on ``workbench.demo.data`` files;
every change is listed in its docstring. :class:`SeedHDF5Dataset`, :class:`MemoryMappedDataset` and
:class:`MemmapPerItemDataset` live in the package, ``workbench.bench.naive`` (the demo measures them
too); they are re-exported here, one copy.

>>> ds = MemmapPerItemDataset("demo_data/features.npy", "demo_data/labels.npy")
>>> loader = DataLoader(ds, batch_size=256, shuffle=True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.bench.naive import MemmapPerItemDataset, MemoryMappedDataset, SeedHDF5Dataset

from .seed001 import DaskMemmapDataset, SimpleDataset, SparseIndexDataset, make_seed_collate

__all__ = [
    "DaskMemmapDataset",
    "SeedHDF5Dataset",
    "MemmapPerItemDataset",
    "MemoryMappedDataset",
    "ParquetDaskDataset",
    "SimpleDataset",
    "SparseIndexDataset",
    "make_seed_collate",
]


class ParquetDaskDataset(Dataset):
    """Seed 000, Example 3: ``ddf.loc[start:end].compute()`` of a ``dd.read_parquet`` per batch.

    Kept flaws: ``.loc`` is inclusive, so every batch holds ``batch_size + 1`` rows (the next
    batch's first row repeats); ``__len__`` runs ``len(ddf)``, a Dask computation, on every call;
    and the fixed batches of :class:`MemoryMappedDataset`. Use with ``DataLoader(batch_size=1)``
    or ``batch_size=None`` as the seed does; with ``num_workers > 0`` pass
    ``scheduler="synchronous"`` (Dask's threaded scheduler hangs in forked workers).

    Changes: the seed's ``batch['data']`` / ``batch['targets']`` become ``feature_cols`` /
    ``target_col``, and only those columns are read. When Dask splits the file into several
    partitions, each one gets its own 0-based index, so the seed's ``.loc`` would return rows
    from every partition; we number the rows globally instead (known divisions, which also lets
    ``.loc`` read only the partitions it needs). ``read_parquet_kwargs`` go to ``dd.read_parquet``.

    >>> ds = ParquetDaskDataset("demo_data/demo.parquet", 256, ["f0", "f1"], "label")
    >>> DataLoader(ds, batch_size=None)
    """

    def __init__(
        self,
        parquet_path: str | os.PathLike[str],
        batch_size: int,
        feature_cols: Sequence[str],
        target_col: str,
        scheduler: str | None = None,
        **read_parquet_kwargs: Any,
    ) -> None:
        import dask.dataframe as dd

        self.feature_cols, self.target_col = list(feature_cols), target_col
        ddf = dd.read_parquet(
            str(parquet_path), columns=[*self.feature_cols, target_col], **read_parquet_kwargs
        )
        self.ddf = ddf if ddf.npartitions == 1 else _number_rows(ddf)
        self.batch_size = batch_size
        self.scheduler = scheduler

    def __len__(self) -> int:
        return len(self.ddf) // self.batch_size

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = idx * self.batch_size
        end = (idx + 1) * self.batch_size
        batch = self.ddf.loc[start:end].compute(scheduler=self.scheduler)
        data = torch.tensor(batch[self.feature_cols].values)
        target = torch.tensor(batch[self.target_col].values)
        return data, target


def _number_rows(ddf: Any) -> Any:
    """``ddf`` indexed by global row number 0..n-1, with known divisions."""
    offsets = np.concatenate([[0], np.cumsum(ddf.map_partitions(len).compute())]).tolist()

    def number(df: Any, partition_info: dict[str, Any] | None = None) -> Any:
        start = offsets[partition_info["number"]]
        return df.assign(_row=np.arange(start, start + len(df), dtype=np.int64))

    numbered = ddf.map_partitions(number, meta=ddf._meta.assign(_row=np.int64(0)))
    divisions = tuple(offsets[:-1]) + (offsets[-1] - 1,)
    return numbered.set_index("_row", sorted=True, divisions=divisions)
