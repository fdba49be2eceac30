"""Seed 001's Dataset classes and sparse collate, plus the per-item memmap pattern.

Seed 001 is the article "Datasets that fit in memory" / "Datasets that fit on your hard drive" /
"Sparse vectors". Re-exported by :mod:`seeds`; see there for the rules these baselines follow.
:class:`MemmapPerItemDataset` is defined in ``workbench.bench.naive`` (re-exported here).

>>> ds = MemmapPerItemDataset("demo_data/features.npy", "demo_data/labels.npy")
>>> loader = DataLoader(ds, batch_size=256, shuffle=True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from workbench.bench.naive import MemmapPerItemDataset

__all__ = [
    "DaskMemmapDataset",
    "MemmapPerItemDataset",
    "SimpleDataset",
    "SparseIndexDataset",
    "make_seed_collate",
]


class DaskMemmapDataset(Dataset):
    """Seed 001, ``MemmapDataset``: ``da.concatenate`` of memmap files, ``.compute()`` per item.

    Changes: the files are ``.npy`` shards opened with ``np.load(mmap_mode="r")`` (the seed
    writes raw ``np.memmap`` files); the seed's truncated ``__getitem__`` is completed as
    ``.compute()`` of the row and target, as the baseline measurement did. Dask's default
    threaded scheduler hangs inside forked DataLoader workers (baselines finding 6): pass
    ``scheduler="synchronous"`` when ``num_workers > 0``.

    >>> ds = DaskMemmapDataset(["demo_data/features.npy"], ["demo_data/labels.npy"])
    >>> DataLoader(ds, batch_size=256)
    """

    def __init__(
        self,
        feature_files: Sequence[str | os.PathLike[str]],
        target_files: Sequence[str | os.PathLike[str]],
        chunk_rows: int = 16_384,
        scheduler: str | None = None,
    ) -> None:
        import dask.array as da

        self.features = []
        self.targets = []
        for file in feature_files:
            self.features.append(da.from_array(np.load(file, mmap_mode="r"), chunks=chunk_rows))
        for file in target_files:
            self.targets.append(da.from_array(np.load(file, mmap_mode="r"), chunks=chunk_rows))
        self.features = da.concatenate(self.features, axis=0)
        self.targets = da.concatenate(self.targets, axis=0)
        self.scheduler = scheduler

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.tensor(self.features[idx].compute(scheduler=self.scheduler)),
            torch.tensor(self.targets[idx].compute(scheduler=self.scheduler)),
        )


class SimpleDataset(Dataset):
    """Seed 001, "Datasets that fit in memory": every row kept in RAM as its own tensor.

    Kept flaws: building it costs one Python tensor object per row (≈2.4× the data in memory,
    minutes for millions of rows), and forked workers touching those objects copy their pages
    (copy-on-read). ``transform`` is the seed's optional ``_feature_transform``, applied once per
    row at build time; its result is turned into a tensor when it is not one.

    >>> ds = SimpleDataset(np.load("demo_data/features.npy"), np.load("demo_data/labels.npy"))
    >>> DataLoader(ds, batch_size=256, shuffle=True)
    """

    def __init__(
        self, features: Any, targets: Any, transform: Callable[[Any], Any] | None = None
    ) -> None:
        self.transform = transform
        self.features = []
        for feature in features:
            self.features.append(self._feature_transform(feature))
        self.targets = targets

    def _feature_transform(self, feature: Any) -> torch.Tensor:
        out = feature if self.transform is None else self.transform(feature)
        return out if isinstance(out, torch.Tensor) else torch.tensor(np.asarray(out))

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, Any]:
        return self.features[idx], self.targets[idx]


class SparseIndexDataset(Dataset):
    """Per-item rows of a sparse column as their nonzero indices, the input of the seed collate.

    Seed 001 ("Sparse vectors") stores each row's nonzero indices and expands them in the
    collate; this reads row ``i`` from our CSR ``.npy`` files (``tokens.indptr.npy``,
    ``tokens.indices.npy``) one item at a time.

    >>> ds = SparseIndexDataset("d/tokens.indptr.npy", "d/tokens.indices.npy", "d/labels.npy")
    >>> DataLoader(ds, batch_size=256, collate_fn=make_seed_collate(1000))
    """

    def __init__(
        self,
        indptr_path: str | os.PathLike[str],
        indices_path: str | os.PathLike[str],
        target_path: str | os.PathLike[str],
    ) -> None:
        self.indptr = np.load(indptr_path, mmap_mode="r", allow_pickle=False)
        self.indices = np.load(indices_path, mmap_mode="r", allow_pickle=False)
        self.targets = np.load(target_path, mmap_mode="r", allow_pickle=False)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = int(self.indptr[idx]), int(self.indptr[idx + 1])
        return torch.from_numpy(np.array(self.indices[lo:hi])), torch.tensor(self.targets[idx])


def make_seed_collate(dim: int) -> Callable[[list[tuple[Any, Any]]], tuple[torch.Tensor, Any]]:
    """Seed 001's sparse ``collate_fn``: zeros ``(bs * dim)``, then a Python loop sets the ones.

    The seed writes ``features[feature_idxs] = 1.0`` for the whole batch, which only works for
    one row (and reads an undefined ``features`` for ``bs``); this keeps its shape, a flat zero
    tensor filled row by row in Python, with the row offset that makes it correct. The seed
    returns the targets as a tuple; we stack them so a model can use them.

    >>> collate = make_seed_collate(1000)
    >>> x, y = collate([(torch.tensor([3, 7]), torch.tensor(1))])   # x.shape == (1, 1000)
    """

    def collate_fn(data: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        feature_idxs, targets = zip(*data)
        bs = len(feature_idxs)
        features = torch.zeros((bs * dim))
        for row, idxs in enumerate(feature_idxs):
            features[torch.as_tensor(idxs, dtype=torch.long) + row * dim] = 1.0
        return features.view((bs, dim)), torch.stack([torch.as_tensor(t) for t in targets])

    return collate_fn
