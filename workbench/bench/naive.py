"""The seeds' naive Dataset classes, our baselines: one copy, measured by the demo and benchmarks.

Seed 000 ("How to efficiently load datasets larger than RAM using PyTorch DataLoader?") gives
:class:`SeedHDF5Dataset` (its Example 1) and :class:`MemoryMappedDataset` (Example 2); seed 001's
"Datasets that fit on your hard drive" gives the per-item memmap pattern,
:class:`MemmapPerItemDataset`. They are kept faithful, flaws included: they are what workbench is
compared against (``workbench.bench.limits.compare_orders``, ``benchmarks/loaders.py``), not
something to use. Each changes only what is needed to run on our ``.npy`` and HDF5 files; every
change is listed in its docstring. The other seed classes (Parquet + Dask, in-RAM tensors, the
sparse collate) live in ``benchmarks/baselines``, which re-exports these.

>>> from torch.utils.data import DataLoader
>>> ds = MemmapPerItemDataset("demo_data/raw/features.npy", "demo_data/raw/labels.npy")
>>> x, y = next(iter(DataLoader(ds, batch_size=256, shuffle=True)))
>>> tuple(x.shape), tuple(y.shape)
((256, 16), (256,))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__: list[str] = []  # baselines, not workbench's API: import them from workbench.bench.naive


class MemmapPerItemDataset(Dataset):
    """The per-item memmap Dataset: ``torch.from_numpy(np.array(X[i]))`` for one row at a time.

    Seed 001's ``MemmapDataset`` ("Datasets that fit on your hard drive") without its dask
    concatenation (``benchmarks/baselines``' ``DaskMemmapDataset`` has that), which is also the
    "per-item memmap" row of the baseline measurement. Use with ``DataLoader(ds, batch_size=B)``:
    default_collate then stacks B separate row tensors per batch.

    >>> ds = MemmapPerItemDataset("demo_data/raw/features.npy", "demo_data/raw/labels.npy")
    >>> len(ds), tuple(ds[7][0].shape)
    (2000, (16,))
    """

    def __init__(
        self, npy_path: str | os.PathLike[str], target_path: str | os.PathLike[str]
    ) -> None:
        self.features = np.load(npy_path, mmap_mode="r", allow_pickle=False)
        self.targets = np.load(target_path, mmap_mode="r", allow_pickle=False)

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.features[idx])), torch.tensor(self.targets[idx])


class SeedHDF5Dataset(Dataset):
    """Seed 000, Example 1: one ``torch.tensor(self.data[idx])`` h5py read per item.

    Faithful (``lazy_open=False``): the file is opened in ``__init__`` as in the seed. That
    breaks with DataLoader workers: spawn and forkserver (the default from Python 3.14) fail with
    "h5py objects cannot be pickled"; forked workers inherit the parent's HDF5 state and open
    handle, which h5py does not support (a read-only file happened to read fine in our test, but
    it can return wrong data or crash). ``lazy_open=True`` (what the baseline measurement ran
    with ``num_workers=2``) opens the file on first use in each process and pickles no handles.

    >>> ds = SeedHDF5Dataset("demo_data/raw/demo.h5", "features", "label", lazy_open=True)
    >>> len(ds), ds[3][0].dtype
    (2000, torch.float32)
    """

    def __init__(
        self,
        hdf5_path: str | os.PathLike[str],
        data_key: str,
        target_key: str,
        lazy_open: bool = False,
    ) -> None:
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

    >>> ds = MemoryMappedDataset("demo_data/raw/features.npy", "demo_data/raw/labels.npy", 256)
    >>> len(ds), tuple(ds[6][0].shape)   # 2,000 rows: 7 whole batches; rows 1,792+ never served
    (7, (256, 16))
    """

    def __init__(
        self,
        data_path: str | os.PathLike[str],
        target_path: str | os.PathLike[str],
        batch_size: int,
        row_shape: Sequence[int] | None = None,
        dtype: str = "float32",
        target_dtype: str = "int64",
        offset: int = 0,
        target_offset: int = 0,
    ) -> None:
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


def _memmap(
    path: str | os.PathLike[str], dtype: str, offset: int, row_shape: Sequence[int] | None
) -> np.ndarray:
    if str(path).endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    m = np.memmap(path, dtype=dtype, mode="r", offset=offset)
    return m if row_shape is None else m.reshape(-1, *row_shape)
