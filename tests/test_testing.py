"""workbench.testing: the contract checks we ship pass on our datasets and a plain torch Dataset,
and fail, naming the property, on datasets that break it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import workbench as wb
from workbench.testing import check_dataset, check_layout


class Rows(Dataset):
    """A plain map-style Dataset of dict rows, as a user writes one."""

    def __init__(self, n: int = 200) -> None:
        self.x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return {"x": torch.from_numpy(self.x[i])}


class NoIndexError(Rows):
    def __getitem__(self, i: int) -> dict:
        return {"x": torch.from_numpy(self.x[i % len(self)])}


class WrongBatches(Dataset):
    """Rows by index are right, batches by index list are not."""

    def __init__(self) -> None:
        self.inner = wb.open_dataset({"x": np.arange(300, dtype="float32")})

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        return self.inner[i]

    def get_batch(self, idx):
        return self.inner.get_batch(sorted(np.asarray(idx).tolist()))


@pytest.mark.parametrize("layout", ["store", "hdf5", "parquet"])
def test_check_layout_passes_on_each_of_our_layouts(layout, tmp_path):
    check_layout(layout, tmp_path)


def test_check_dataset_passes_on_ours_and_on_a_plain_dataset(tmp_path):
    check_dataset(wb.open_dataset({"x": np.zeros((90, 3), "float32"), "y": np.arange(90)}))
    check_dataset(Rows(), batch_size=16)


def test_check_dataset_names_what_is_broken():
    with pytest.raises(AssertionError, match="IndexError"):
        check_dataset(NoIndexError(), workers=False)
    with pytest.raises(AssertionError, match="get_batch"):
        check_dataset(WrongBatches(), workers=False)
