"""The seed articles' Dataset classes, kept faithful (flaws included): the baselines to beat.

Seed 000 ("How to efficiently load datasets larger than RAM using PyTorch DataLoader?") gives
Example 1 :class:`HDF5Dataset`, Example 2 :class:`MemoryMappedDataset`, Example 3
:class:`ParquetDaskDataset`. Seed 001 ("Datasets that fit in memory" / "... on your hard drive" /
"Sparse vectors") gives :class:`SimpleDataset`, :class:`DaskMemmapDataset` and the sparse
collate (:func:`make_seed_collate`). :class:`MemmapPerItemDataset` and
:class:`SparseIndexDataset` are the per-item memmap pattern the seeds describe, pointed at our
``.npy`` files. Each class changes only what is needed to run on ``workbench.demo`` files; every
change is listed in its docstring.

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

from .seed001 import (
    DaskMemmapDataset, MemmapPerItemDataset, SimpleDataset, SparseIndexDataset, make_seed_collate,
)

__all__ = [
    "DaskMemmapDataset", "HDF5Dataset", "MemmapPerItemDataset", "MemoryMappedDataset",
    "ParquetDaskDataset", "SimpleDataset", "SparseIndexDataset", "make_seed_collate",
]

class HDF5Dataset(Dataset):
    """Seed 000, Example 1: one ``torch.tensor(self.data[idx])`` h5py read per item.

    Faithful (``lazy_open=False``): the file is opened in ``__init__`` as in the seed. That
    breaks with DataLoader workers: spawn and forkserver (the default from Python 3.14) fail with
    "h5py objects cannot be pickled"; forked workers inherit the parent's HDF5 state and open
    handle, which h5py does not support (a read-only file happened to read fine in our test, but
    it can return wrong data or crash). ``lazy_open=True`` (what the baseline measurement ran
    with ``num_workers=2``) opens the file on first use in each process and pickles no handles.

    >>> ds = HDF5Dataset("demo_data/demo.h5", "features", "label", lazy_open=True)
    >>> DataLoader(ds, batch_size=256, num_workers=2)
    """

    def __init__(self, hdf5_path: str | os.PathLike[str], data_key: str, target_key: str,
                 lazy_open: bool = False) -> None:
        import h5py
        self.hdf5_path, self.data_key, self.target_key = str(hdf5_path), data_key, target_key
        self.lazy_open = lazy_open
        self.file = self.data = self.targets = None
        self._pid = -1
        if lazy_open:
            with h5py.File(self.hdf5_path, "r") as f:
                self._len = len(f[data_key])
        else:
            self._open()
            self._len = len(self.data)

    def _open(self) -> None:
        import h5py
        self.file = h5py.File(self.hdf5_path, "r")
        self.data = self.file[self.data_key]
        self.targets = self.file[self.target_key]
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lazy_open and self._pid != os.getpid():
            self._open()
        data = torch.tensor(self.data[idx])
        target = torch.tensor(self.targets[idx])
        return data, target

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.lazy_open:
            state.update(file=None, data=None, targets=None, _pid=-1)
        return state

    def __del__(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()


class MemoryMappedDataset(Dataset):
    """Seed 000, Example 2: item ``idx`` is the fixed batch ``[idx*bs, (idx+1)*bs)`` of a memmap.

    Kept flaws: the batches are the same every epoch (shuffle only reorders whole batches), the
    last ``len % batch_size`` rows are never seen, and ``torch.from_numpy`` of a read-only
    memmap slice (PyTorch warns once). Use it as the seed does, ``DataLoader(ds, batch_size=1)``
    (the batches then come out as ``(1, bs, ...)``), or with ``batch_size=None``.

    Changes: a ``.npy`` path is opened with ``np.load(mmap_mode="r")``; any other path is a raw
    file read with ``np.memmap(dtype, offset)`` as in the seed, reshaped to ``(-1, *row_shape)``
    when ``row_shape`` is given (the seed's 1-D memmap batches scalars, not rows).

    >>> ds = MemoryMappedDataset("demo_data/features.npy", "demo_data/labels.npy", 256)
    >>> DataLoader(ds, batch_size=None, shuffle=True)
    """

    def __init__(self, data_path: str | os.PathLike[str], target_path: str | os.PathLike[str],
                 batch_size: int, row_shape: Sequence[int] | None = None, dtype: str = "float32",
                 target_dtype: str = "int64", offset: int = 0, target_offset: int = 0) -> None:
        self.data = _memmap(data_path, dtype, offset, row_shape)
        self.targets = _memmap(target_path, target_dtype, target_offset, None)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.data) // self.batch_size

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = idx * self.batch_size
        end = (idx + 1) * self.batch_size
        data = torch.from_numpy(self.data[start:end])
        target = torch.from_numpy(self.targets[start:end])
        return data, target


def _memmap(path: str | os.PathLike[str], dtype: str, offset: int,
            row_shape: Sequence[int] | None) -> np.ndarray:
    if str(path).endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    m = np.memmap(path, dtype=dtype, mode="r", offset=offset)
    return m if row_shape is None else m.reshape(-1, *row_shape)


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

    def __init__(self, parquet_path: str | os.PathLike[str], batch_size: int,
                 feature_cols: Sequence[str], target_col: str, scheduler: str | None = None,
                 **read_parquet_kwargs: Any) -> None:
        import dask.dataframe as dd
        self.feature_cols, self.target_col = list(feature_cols), target_col
        ddf = dd.read_parquet(str(parquet_path), columns=[*self.feature_cols, target_col],
                              **read_parquet_kwargs)
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
